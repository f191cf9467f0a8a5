"""The machine-output schema page (docs/schema.md) is generated from the code and must match it.

When a command gains, loses or retypes a key, regenerate the page with `make schema` and commit it
with the change: pipeline authors read that page.
"""

from conftest import REPO


def test_schema_page_matches_the_code(monkeypatch):
    from llmplan.cli.schema import markdown

    monkeypatch.chdir(REPO)  # the examples name files under tests/data
    for name in ("LLMPLAN_FORMAT", "LLMPLAN_PRESETS"):
        monkeypatch.delenv(name, raising=False)
    committed = (REPO / "docs" / "schema.md").read_text()
    assert markdown() == committed, "docs/schema.md is stale: run `make schema` and commit it"


def test_schema_names_units_by_key():
    from llmplan.cli.schema import unit_of

    assert unit_of("total_bytes") == "bytes"
    assert unit_of("flops") == "FLOPs" and unit_of("saving_flops") == "FLOPs"
    assert unit_of("flops_per_token_6n") == "FLOPs per token"
    assert unit_of("wall_seconds") == "seconds"
    assert unit_of("optimal_params") == "count" and unit_of("tokens_per_param") == "ratio"
    assert unit_of("saving_fraction") == "fraction (0 to 1)"
