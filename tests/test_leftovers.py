"""Leftovers found by hostile input (issue 25, item 5), and the preset hint for a Hub id."""

from __future__ import annotations


def test_a_hub_id_given_to_preset_suggests_the_exact_preset_first_and_hf(cli):
    result = cli(["memory", "--preset", "meta-llama/Llama-3.1-8B"])
    assert result.code == 2
    line = result.stderr.strip()
    assert "did you mean llama-3.1-8b," in line  # the exact case-insensitive match first
    assert "--hf meta-llama/Llama-3.1-8B" in line
