"""The options every command shares without declaring them (--wide, --quiet/-q, -h), warnings said
once per kind, and the table's marks for extrapolated rows and left-out columns."""

from __future__ import annotations

import json

import pytest

from llmplan.io.render import EXTRAPOLATED_NOTE, to_table


def test_h_is_help(cli):
    for args in (["-h"], ["optimal", "-h"], ["presets", "list", "-h"]):
        result = cli(args)
        assert result.code == 0 and "Usage:" in result.stdout, args


@pytest.mark.parametrize("args", [["optimal", "--budget", "1e23", "--law", "all"], ["compare"], ["loss", "--params", "70B", "--tokens", "1.4T"]])
def test_quiet_keeps_stderr_empty_and_stdout_the_same(cli, args):
    loud = cli([*args, "-f", "json"])
    assert loud.code == 0 and "warning:" in loud.stderr  # these all extrapolate a law
    for flag in ("--quiet", "-q"):
        quiet = cli([*args, "-f", "json", flag])
        assert quiet.code == 0 and quiet.stderr == "" and quiet.stdout == loud.stdout


def test_quiet_from_the_environment(cli, monkeypatch):
    monkeypatch.setenv("LLMPLAN_QUIET", "1")
    assert cli(["compare", "-f", "json"]).stderr == ""


def test_quiet_keeps_errors(cli):
    result = cli(["optimal", "--budget", "lots", "-q"])
    assert result.code == 2 and result.stderr.startswith("llmplan: error:")


def test_one_warning_line_for_many_laws(cli):
    result = cli(["optimal", "--budget", "1e23", "--law", "all", "-f", "json"])
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    from llmplan.scaling.laws import all_laws
    from llmplan.presets import catalog

    laws = len(all_laws(catalog(None)))
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: 7 of {laws} laws are used beyond the range")


def test_isoflop_warnings_once_per_kind(cli, tmp_path):
    # 4 budgets of 5 runs on a parabola, 6 budgets of 2 runs (too few for a parabola)
    lines = ["params,flops,loss"]
    for k, C in enumerate((1e18, 1e19, 1e20, 1e21)):
        for i, n in enumerate((1e7, 3e7, 1e8, 3e8, 1e9)):
            lines.append(f"{n * 10 ** k:g},{C:g},{3.0 - 0.1 * k + 0.05 * (i - 2) ** 2}")
    for C in (3e18, 3e19, 3e20, 3e21, 3e22, 3e23):
        lines += [f"1e8,{C:g},2.5", f"2e8,{C:g},2.4"]
    path = tmp_path / "runs.csv"
    path.write_text("\n".join(lines) + "\n")
    result = cli(["fit", str(path), "--method", "isoflop", "-f", "json"])
    assert result.code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: 6 of 10 budgets (3e+18 FLOPs ... 3e+23 FLOPs): fewer than 3 runs (a parabola needs 3): skipped"]


def test_extrapolated_rows_carry_a_star_and_a_footnote():
    rows = [{"law": "a", "loss": 2.0, "extrapolated": False}, {"law": "b", "loss": 1.9, "extrapolated": True}]
    lines = [line.rstrip() for line in to_table(rows, width=80, columns=["law", "loss"]).splitlines()]
    assert lines[3:5] == [" a     2.000", " b*    1.900"]
    assert lines[-1] == EXTRAPOLATED_NOTE


ROW = {"model": "llama-2-70b", "layers": 80, "d_model": 8192, "params": 68_976_648_192, "tokens": 2_000_000_000_000,
       "kv_cache_bytes_per_token": 327_680, "flops_per_token": 413_859_889_152, "matmul_vs_6n": 1.074}


def test_narrow_table_leaves_out_the_least_important_columns():
    rows = [dict(ROW, model=f"model-number-{i}") for i in range(3)]
    text = to_table(rows, width=60, priority=["model", "params", "tokens"])
    lines = [line.rstrip() for line in text.splitlines()]
    assert lines[:2] == ["", " model            layers   d_model   params   tokens"]
    assert lines[3] == " model-number-0       80      8192    69.0B    2.00T"
    assert "left out at 60 columns: kv_cache_bytes_per_token, flops_per_token, matmul_vs_6n (--wide or -f json" in " ".join(lines)
    wide = to_table(rows, width=60, wide=True)
    assert "matmul_vs_6n" in wide and "left out" not in wide


def test_one_row_that_does_not_fit_is_a_list():
    lines = [line.rstrip() for line in to_table([ROW], width=60, labels={"d_model": "width"}).splitlines()]
    assert lines[:4] == ["", " model                      llama-2-70b", " layers                     80", " width                      8192"]


@pytest.mark.parametrize("width", [80, 100, 120])
def test_identifiers_and_numbers_are_never_split(width):
    rows = [{"model": "a-very-long-model-identifier-of-40-chars", "params": 7e9 * i, "note": "some words that may wrap when they must"} for i in range(1, 4)]
    text = to_table(rows, width=width, columns=["model", "params", "note"] + [])
    assert "a-very-long-model-identifier-of-40-chars" in text
    assert all(len(line.rstrip()) <= width for line in text.splitlines())


def test_counts_and_bytes_are_integers_in_every_format(cli):
    rows = json.loads(cli(["optimal", "--budget", "1e21:1e23:3", "-f", "json"]).stdout)
    assert all(isinstance(r["params"], int) and isinstance(r["tokens"], int) for r in rows)
    mem = json.loads(cli(["memory", "--params", "7B", "--dtype", "int4", "-f", "json"]).stdout)[0]
    assert all(isinstance(v, int) for k, v in mem.items() if k.endswith("_bytes") and v is not None)


# ------------------------------------------------------------------ names people type


@pytest.mark.parametrize("typed, short", [("fp8-e4m3", "fp8"), ("fp8-e5m2", "fp8"), ("bfloat16", "bf16"), ("float16", "fp16"),
                                          ("float32", "fp32"), ("torch.bfloat16", "bf16"), ("BF16", "bf16"), ("half", "fp16")])
def test_pytorch_and_listed_dtype_names_are_accepted(cli, typed, short):
    mem = cli(["memory", "--params", "7B", "--dtype", typed, "-f", "json"])
    assert mem.code == 0, mem.stderr
    assert json.loads(mem.stdout)[0]["dtype"] == short
    comp = cli(["compute", "--params", "7B", "--tokens", "1T", "--gpu", "h100", "--dtype", typed, "-f", "json"])
    assert comp.code == 0, comp.stderr
    assert json.loads(comp.stdout)[0]["dtype"] == short


def test_fp8_weights_take_one_byte_and_the_fp8_peak(cli):
    mem = json.loads(cli(["memory", "--params", "7B", "--dtype", "fp8-e4m3", "--group-size", "128", "-f", "json"]).stdout)[0]
    # 1 byte per weight plus one fp32 scale per 128 weights (4/128 bytes): 7e9 * 1.03125
    assert mem["weights_bytes"] == 7_218_750_000
    comp = json.loads(cli(["compute", "--params", "7B", "--tokens", "1T", "--gpu", "h100", "--dtype", "fp8-e4m3", "-f", "json"]).stdout)[0]
    assert comp["peak_flops_per_second"] == 1979e12  # NVIDIA H100 SXM datasheet, dense FP8


def test_memory_gpu_given_as_a_size(cli):
    rows = json.loads(cli(["memory", "--preset", "llama-2-7b", "--gpu", "24GB", "--gpu", "rtx-4090", "-f", "json"]).stdout)
    anonymous, catalog = rows
    assert anonymous["gpu"] == "24GB" and anonymous["gpu_memory_bytes"] == 24_000_000_000
    # the RTX 4090's catalog memory is 24 GB too, so every answer is the same
    for key in ("fits", "headroom_bytes", "max_batch", "max_context"):
        assert anonymous[key] == catalog[key], key
    bad = cli(["memory", "--preset", "llama-2-7b", "--gpu", "0GB"])
    assert bad.code == 2 and bad.stderr.count("\n") == 1


def test_optimal_params_from_stdin(cli):
    piped = json.loads(cli(["optimal", "--params", "-", "-f", "json"], stdin="7B\n# a comment\n13B\n").stdout)
    one_by_one = [json.loads(cli(["optimal", "--params", size, "-f", "json"]).stdout)[0] for size in ("7B", "13B")]
    assert piped == one_by_one
    empty = cli(["optimal", "--params", "-"], stdin="")
    assert empty.code == 2 and "stdin" in empty.stderr


# ------------------------------------------------------------------ one format per quantity


def test_one_time_unit_per_column():
    from llmplan.io.render import format_column

    assert format_column("ttft_seconds", [0.0372, 0.149, 1.19, 4.76]) == ["37.2 ms", "149 ms", "1,190 ms", "4,760 ms"]
    assert format_column("wall_seconds", [657_000.0, 86_400.0 * 30]) == ["7.6 days", "30.0 days"]
    assert format_column("step_seconds", [6.39, None]) == ["6.39 s", "-"]


def test_loss_three_decimals_and_pf_days_without_exponents_beside_plain_numbers():
    from llmplan.io.render import format_column

    assert format_column("loss", [2.0, 1.94567, None]) == ["2.000", "1.946", "-"]
    assert format_column("pf_days", [11.574, 115.74, 11_574.07]) == ["11.57", "115.7", "11,574"]
    assert format_column("pf_days", [0.001157, 11.57]) == ["1.157e-03", "1.157e+01"]  # all or none in e-notation


@pytest.mark.parametrize("args, old, new", [
    (["gpus"], {"id", "peak_bf16_flops"}, {"gpu", "peak_bf16_flops_per_second", "bandwidth_bytes_per_second"}),
    (["presets", "list", "--kind", "gpus"], {"id", "bandwidth", "peak_bf16"}, {"gpu", "bandwidth_bytes_per_second", "peak_bf16_flops_per_second"}),
    (["presets", "list", "--kind", "models"], {"id"}, {"model", "architecture"}),
    (["compare", "--models", "chinchilla-70b"], {"id"}, {"model"}),
    (["arch", "--preset", "llama-2-7b"], {"family", "kv_cache_per_token_bytes"}, {"architecture", "kv_cache_bytes_per_token"}),
    (["dtypes"], {"name", "bytes"}, {"dtype", "bytes_per_value"}),
])
def test_renamed_keys_are_gone(cli, args, old, new):
    """The renames in CHANGELOG.md and docs/schema.md: one name per quantity across commands."""
    keys = set().union(*(row.keys() for row in json.loads(cli([*args, "-f", "json"]).stdout)))
    assert not keys & old and new <= keys


def test_every_presets_kind_lists_as_a_table(cli):
    result = cli(["presets", "list", "-f", "table"])
    assert result.code == 0 and result.stderr == "", result.stderr
    for kind in ("models", "laws", "gpus", "hparams"):
        assert f"Presets: {kind}" in result.stdout
