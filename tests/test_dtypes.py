"""Number formats, checked against numpy's own float info and the format specifications."""

import json

import numpy as np
import pytest

from llmplan.dtypes import DTYPES, get


def by_name():
    return {d.name: d for d in DTYPES}


@pytest.mark.parametrize("name, exponent, fraction", [("fp32", 8, 23), ("fp16", 5, 10), ("bf16", 8, 7), ("tf32", 8, 10), ("fp8-e4m3", 4, 3), ("fp8-e5m2", 5, 2)])
def test_layouts(name, exponent, fraction):
    d = by_name()[name]
    assert (d.exponent_bits, d.fraction_bits) == (exponent, fraction)
    assert d.sign_bits + d.exponent_bits + d.fraction_bits == d.bits


@pytest.mark.parametrize("name, np_type", [("fp32", np.float32), ("fp16", np.float16)])
def test_ieee_limits_match_numpy(name, np_type):
    d, info = by_name()[name], np.finfo(np_type)
    assert d.max == float(info.max)
    assert d.min_normal == float(info.smallest_normal)
    assert d.epsilon == float(info.eps)


def test_bf16_and_fp8_limits():
    # bfloat16 keeps fp32's 8 exponent bits: max (2 - 2^-7) * 2^127, min normal 2^-126, epsilon 2^-7.
    bf16 = by_name()["bf16"]
    assert bf16.max == pytest.approx(3.3895313892515355e38, rel=1e-15)
    assert bf16.min_normal == float(np.finfo(np.float32).smallest_normal)
    assert bf16.epsilon == 0.0078125
    # OCP 8-bit floating point spec v1.0, Table 1: E4M3 max 448, E5M2 max 57344.
    assert by_name()["fp8-e4m3"].max == 448
    assert by_name()["fp8-e5m2"].max == 57344


def test_lookup_by_alias_and_unknown():
    assert get("bfloat16").name == "bf16"
    from llmplan.errors import InputError

    with pytest.raises(InputError, match="did you mean bf16"):
        get("bf61")


def test_cli_json_and_params(cli):
    result = cli(["dtypes", "--format", "json", "--params", "7B"])
    assert result.code == 0, result.stderr
    rows = {r["dtype"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"fp32", "tf32", "fp16", "bf16", "fp8-e4m3", "fp8-e5m2", "int8", "int4", "nf4"}
    assert rows["bf16"]["weights_bytes"] == 14_000_000_000
    assert rows["int4"]["weights_bytes"] == 3_500_000_000
    assert rows["int8"]["epsilon"] is None
