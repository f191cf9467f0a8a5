"""Reading and validating run files for `llmplan fit` (llmplan/io/runs.py)."""

from __future__ import annotations

import json

import pytest

from llmplan.errors import InputError
from llmplan.io.runs import drop_highest_loss, filter_flops, read_runs, read_runs_file

CSV = "params,tokens,loss\n1e8,2e9,3.5\n2e8,4e9,3.2\n4e8,8e9,3.0\n"


def test_csv_columns_found_by_name():
    runs = read_runs(CSV, "runs.csv")
    assert runs.N == [1e8, 2e8, 4e8]
    assert runs.D == [2e9, 4e9, 8e9]
    assert runs.L == [3.5, 3.2, 3.0]
    assert runs.lines == [2, 3, 4]
    assert runs.columns == {"params": "params", "loss": "loss", "tokens": "tokens"}


def test_tsv_jsonl_json_give_the_same_runs():
    tsv = CSV.replace(",", "\t")
    records = [{"n": 1e8, "d": 2e9, "final_loss": 3.5}, {"n": 2e8, "d": 4e9, "final_loss": 3.2}, {"n": 4e8, "d": 8e9, "final_loss": 3.0}]
    jsonl = "\n".join(json.dumps(r) for r in records) + "\n"
    for text, name in ((tsv, "runs.tsv"), (jsonl, "runs.jsonl"), (json.dumps(records), "runs.json"), (jsonl, "<stdin>"), (json.dumps({"runs": records}), "<stdin>")):
        runs = read_runs(text, name)
        assert (runs.N, runs.D, runs.L) == ([1e8, 2e8, 4e8], [2e9, 4e9, 8e9], [3.5, 3.2, 3.0]), name


def test_flops_column_gives_tokens_as_c_over_6n():
    # Epoch's columns: D = Training FLOP / (6 * Model Size) (data_analysis.ipynb).
    text = "Model Size,Training FLOP,loss\n1e9,6e19,2.5\n"
    runs = read_runs(text, "epoch.csv")
    assert runs.D == [pytest.approx(1e10, rel=1e-15)]
    assert runs.columns["flops"] == "Training FLOP"


def test_explicit_columns_win_and_unknown_column_is_named():
    text = "size,toks,val,other_loss\n1e8,2e9,3.5,9\n"
    runs = read_runs(text, "r.csv", params_col="size", tokens_col="toks", loss_col="other_loss")
    assert runs.L == [9.0]
    with pytest.raises(InputError, match="no such column.*size, toks, val"):
        read_runs(text, "r.csv", params_col="nope")
    with pytest.raises(InputError, match="no parameter-count column"):
        read_runs(text, "r.csv")


def test_ambiguous_columns_must_be_named():
    with pytest.raises(InputError, match="several columns could be the loss.*--loss-col"):
        read_runs("params,tokens,loss,val_loss\n1,2,3,4\n", "r.csv")


@pytest.mark.parametrize("cell, said", [("", "is empty"), ("abc", "'abc' is not a finite positive number"), ("nan", "'nan'"), ("0", "'0'"), ("-3", "'-3'"), ("inf", "'inf'")])
def test_bad_row_names_line_and_column(cell, said):
    text = f"params,tokens,loss\n1e8,2e9,3.5\n2e8,4e9,{cell}\n"
    with pytest.raises(InputError) as error:
        read_runs(text, "runs.csv")
    message = str(error.value)
    assert "runs.csv line 3, column 'loss'" in message and said in message and "--skip-bad-rows" in message


def test_skip_bad_rows_counts_them():
    text = "params,tokens,loss\n1e8,2e9,3.5\nx,4e9,3.2\n4e8,8e9,-1\n4e8,8e9,3.0\n"
    runs = read_runs(text, "runs.csv", skip_bad_rows=True)
    assert runs.L == [3.5, 3.0]
    assert len(runs.skipped) == 2 and "line 3, column 'params'" in runs.skipped[0] and "line 4, column 'loss'" in runs.skipped[1]


def test_short_row_and_bad_json_are_errors():
    with pytest.raises(InputError, match="line 3: 2 fields where the header has 3"):
        read_runs("params,tokens,loss\n1,2,3\n1,2\n", "r.csv")
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        read_runs('{"params": 1, "tokens": 2, "loss": 3}\n{oops\n', "r.jsonl")
    with pytest.raises(InputError, match="no such file|no runs file"):
        read_runs_file("/nonexistent/runs.csv")


def test_drop_highest_loss_is_the_epoch_filter():
    # The Epoch notebook keeps `losses < sorted(losses)[-5]`.
    losses = [3.0, 5.0, 2.0, 4.0, 4.5, 2.5, 3.5]
    text = "params,tokens,loss\n" + "".join(f"1e8,2e9,{l}\n" for l in losses)
    runs = drop_highest_loss(read_runs(text, "r.csv"), 2)
    assert sorted(runs.L) == sorted(l for l in losses if l < sorted(losses)[-2])
    assert "dropped the 2 highest-loss runs" in runs.filters[0]


def test_flops_filters():
    runs = filter_flops(read_runs(CSV, "r.csv"), 6 * 2e8 * 4e9, None)
    assert runs.N == [2e8, 4e8] and "dropped 1 runs below" in runs.filters[0]
    runs = filter_flops(read_runs(CSV, "r.csv"), None, 6 * 2e8 * 4e9 * 1.01)
    assert runs.N == [1e8, 2e8]
