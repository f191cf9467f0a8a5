"""The output contract (docs/architecture.md): rows in five formats, pinned exactly."""

import io
import json

import pytest

from llmplan.errors import InputError
from llmplan.io.render import choose_format, render, to_table

ROWS = [
    {"law": "chinchilla", "flops": 2.592e23, "params": 40_400_000_000, "tokens": 1_069_306_930_693, "tokens_per_param": 26.47, "loss": None, "fits": True, "weights_bytes": 13_476_831_232},
    {"law": "kaplan-2020", "flops": 1e24, "params": 7e9, "tokens": 2.4e13, "tokens_per_param": 3428.5714285714284, "loss": 1.9, "fits": False, "weights_bytes": 2**30},
]


def rendered(fmt, rows=ROWS):
    stream = io.StringIO()
    render(rows, fmt, title="t", stream=stream)
    return stream.getvalue()


def test_json_is_always_an_array_with_full_precision():
    data = json.loads(rendered("json", ROWS[:1]))
    assert isinstance(data, list) and len(data) == 1
    assert data[0]["tokens"] == 1_069_306_930_693
    assert json.loads(rendered("json", [])) == []
    assert json.loads(rendered("json", ROWS))[1]["tokens_per_param"] == 3428.5714285714284


def test_non_finite_numbers_become_null():
    text = rendered("json", [{"a": float("nan"), "b": float("inf")}])
    assert json.loads(text) == [{"a": None, "b": None}]
    assert rendered("jsonl", [{"a": float("nan")}]) == '{"a": null}\n'


def test_jsonl_csv_tsv_exact():
    assert rendered("jsonl", [{"a": 1, "b": "x"}, {"a": 2.5, "b": None}]) == '{"a": 1, "b": "x"}\n{"a": 2.5, "b": null}\n'
    assert rendered("csv", [{"a": 1, "b": "x,y"}, {"a": 2.5, "b": None, "c": True}]) == 'a,b,c\n1,"x,y",\n2.5,,true\n'
    assert rendered("tsv", [{"a": 1e24, "b": "x\ty"}, {"a": 0.1, "b": False}]) == "a\tb\n1e+24\tx y\n0.1\tfalse\n"


def test_table_is_pinned_at_fixed_width_without_colour():
    text = to_table(ROWS, title="Compute-optimal (law: chinchilla)", columns=["law", "flops", "params", "tokens", "tokens_per_param", "loss", "fits", "weights_bytes"], width=100)
    expected = [
        "Compute-optimal (law: chinchilla)",
        "",
        " law             flops   params   tokens   tokens_per_param    loss   fits   weights_bytes",
        " ─────────────────────────────────────────────────────────────────────────────────────────",
        " chinchilla    2.59e23    40.4B    1.07T              26.47       -   yes        12.55 GiB",
        " kaplan-2020   1.00e24     7.0B   24.00T               3429   1.900   no          1.00 GiB",
        "",
    ]
    assert "\x1b" not in text
    assert [line.rstrip() for line in text.splitlines()] == expected


def test_default_format_is_tsv_in_a_pipe_and_env_overrides(monkeypatch):
    monkeypatch.delenv("LLMPLAN_FORMAT", raising=False)
    assert choose_format(None, io.StringIO()) == "tsv"
    monkeypatch.setenv("LLMPLAN_FORMAT", "json")
    assert choose_format(None, io.StringIO()) == "json"
    assert choose_format("csv", io.StringIO()) == "csv"
    monkeypatch.setenv("LLMPLAN_FORMAT", "yaml")
    with pytest.raises(InputError, match="LLMPLAN_FORMAT 'yaml' is not one of"):
        choose_format(None)


def test_unknown_format_suggests():
    with pytest.raises(InputError, match="did you mean json"):
        choose_format("jsno")
