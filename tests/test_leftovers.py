"""Leftovers found by hostile input (issue 25, item 5), and the preset hint for a Hub id."""

from __future__ import annotations


def test_a_hub_id_given_to_preset_suggests_the_exact_preset_first_and_hf(cli):
    result = cli(["memory", "--preset", "meta-llama/Llama-3.1-8B"])
    assert result.code == 2
    line = result.stderr.strip()
    assert "did you mean llama-3.1-8b," in line  # the exact case-insensitive match first
    assert "--hf meta-llama/Llama-3.1-8B" in line


# ----- --install-completion with a HOME it cannot use ------------------------------------------------

def _install(cli, monkeypatch, tmp_path, home):
    import pathlib

    monkeypatch.setenv("SHELL", "/bin/bash")
    if home is None:
        # Path.home() falls back to the password database without HOME: should the check ever
        # fail, typer's writes must stay inside tmp_path, not in the real home.
        monkeypatch.setattr(pathlib.Path, "home", classmethod(lambda cls: tmp_path / "fallback"))
        monkeypatch.delenv("HOME", raising=False)
    else:
        monkeypatch.setenv("HOME", str(home))
    return cli(["--install-completion", "bash"])


def _one_line(result, fragment):
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmplan: error: --install-completion") and fragment in lines[0], lines
    assert "internal error" not in result.stderr


def test_install_completion_with_home_unset(cli, monkeypatch, tmp_path):
    _one_line(_install(cli, monkeypatch, tmp_path, None), "HOME, which is not set")
    assert not (tmp_path / "fallback").exists()


def test_install_completion_with_home_a_file(cli, monkeypatch, tmp_path):
    (tmp_path / "file").write_text("")
    _one_line(_install(cli, monkeypatch, tmp_path, tmp_path / "file"), "is not a folder")


def test_install_completion_with_home_unwritable(cli, monkeypatch, tmp_path):
    # Root writes anywhere, so "unwritable" is made so for every user: where the script's folder
    # should be, a file stands, and the folder cannot be made.
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".bash_completions").write_text("")
    _one_line(_install(cli, monkeypatch, tmp_path, tmp_path / "home"), "set HOME to a folder you can write")


def test_install_completion_with_a_usable_home_works(cli, monkeypatch, tmp_path):
    (tmp_path / "home").mkdir()
    result = _install(cli, monkeypatch, tmp_path, tmp_path / "home")
    assert result.code == 0, result.stderr
    assert (tmp_path / "home" / ".bash_completions" / "llmplan.sh").is_file()


# ----- fit --grid with starts no float can hold ------------------------------------------------------

def test_fit_grid_of_huge_starts_is_one_line(cli):
    from conftest import DATA

    result = cli(["fit", str(DATA / "fit_runs_exact.csv"), "--grid", "e=1e300,a=1e300,b=1e300,alpha=1e300,beta=1e300"])
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "outside the starts a fit can take" in result.stderr


def test_fit_grid_at_its_bounds_runs(cli):
    from conftest import DATA

    result = cli(["fit", str(DATA / "fit_runs_exact.csv"), "--grid", "e=100,a=-100,b=100,alpha=-10,beta=10", "-f", "json"])
    assert result.code in (0, 1) and "internal error" not in result.stderr  # a fit that fails is exit 1, never an overflow


def test_fit_reads_a_csv(cli):
    from conftest import DATA

    result = cli(["fit", str(DATA / "fit_runs_exact.csv"), "-f", "json"])
    assert result.code == 0, result.stderr


# ----- optimal --law kaplan-2020: the row says when its "optimal" loss is not the least ----------------

def test_kaplan_isoflop_minimum_is_the_least_loss_on_the_line():
    """The closed form against a brute-force search of Eq. 1.5 on C = 6ND (1e-3 relative: the grid's step)."""
    import numpy as np

    from llmplan.scaling.laws import load_law

    law = load_law("kaplan-2020")
    for C in (1e20, 1e22, 1e24):
        N, L = law.isoflop_minimum(C)
        grid = np.logspace(np.log10(N) - 2, np.log10(N) + 2, 40001)
        losses = law.loss(grid, C / (6.0 * grid))
        assert L <= losses.min() * (1 + 1e-12)
        assert abs(grid[losses.argmin()] / N - 1) < 1e-3
        n_rule, d_rule = law.optimal(C)
        assert L < law.loss(n_rule, d_rule)  # Kaplan's allocation is not its own minimiser


def test_optimal_kaplan_row_explains_its_loss(cli):
    import json

    rows = json.loads(cli(["optimal", "--law", "kaplan-2020", "--budget", "1e24", "-f", "json"]).stdout)
    row = rows[0]
    assert row["minimises_loss"] is False and row["isoflop_min_loss"] < row["loss"]
    assert row["isoflop_min_params"] != row["params"]
    chin = json.loads(cli(["optimal", "--law", "chinchilla", "--budget", "1e24", "-f", "json"]).stdout)[0]
    assert chin["isoflop_min_loss"] == chin["loss"] and chin["isoflop_min_params"] == chin["params"]
    sweep = json.loads(cli(["optimal", "--law", "kaplan-2020", "--budget", "1e20:1e24:50", "-f", "json"]).stdout)
    assert all(r["isoflop_min_loss"] < r["loss"] for r in sweep)  # the vectorised path says it too


# ----- an index.json with an empty weight map ------------------------------------------------------------

def test_an_index_with_an_empty_weight_map_counts_the_shards_it_finds(cli, tmp_path):
    import json

    from test_safetensors import tiny_llama_tensors, write_safetensors

    tensors = tiny_llama_tensors()
    names = list(tensors)
    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {n: tensors[n] for n in names[:5]})
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {n: tensors[n] for n in names[5:]})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {}}))
    expected = sum(__import__("math").prod(shape) for _, shape in tensors.values())
    for given in (tmp_path, tmp_path / "model.safetensors.index.json"):
        result = cli(["arch", "--safetensors", str(given), "-f", "json"])
        assert result.code == 0, result.stderr
        row = json.loads(result.stdout)[0]
        assert row["params"] == expected and row["checkpoint_files"] == 2
        assert "empty weight_map" in result.stderr


def test_an_index_with_an_empty_weight_map_and_no_shards_says_so(cli, tmp_path):
    import json

    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {}}))
    for given in (tmp_path, tmp_path / "model.safetensors.index.json"):
        result = cli(["arch", "--safetensors", str(given)])
        assert result.code == 2 and "empty weight_map" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# ----- start-up: the presets' parse cache -----------------------------------------------------------

def test_the_presets_parse_cache_is_keyed_by_content(tmp_path, monkeypatch):
    from llmplan import presets

    monkeypatch.setenv("LLMPLAN_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "models.toml"
    path.write_text('[a]\nname = "A"\n')
    assert presets._load_toml(path) == {"a": {"name": "A"}}
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1
    assert presets._load_toml(path) == {"a": {"name": "A"}}  # from the cache
    path.write_text('[a]\nname = "B"\n')  # an edit is a new key: never a stale read
    assert presets._load_toml(path) == {"a": {"name": "B"}}
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_the_parse_cache_can_be_off_or_unwritable(tmp_path, monkeypatch):
    from llmplan import presets

    path = tmp_path / "models.toml"
    path.write_text('[a]\nwhen = 2024-01-01\n')  # a date is not JSON: parsed, not cached
    monkeypatch.setenv("LLMPLAN_CACHE", str(tmp_path / "cache"))
    assert "when" in presets._load_toml(path)["a"]
    monkeypatch.setenv("LLMPLAN_CACHE", "off")
    assert "when" in presets._load_toml(path)["a"]
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("LLMPLAN_CACHE", str(tmp_path / "file" / "below"))  # cannot be made: skipped
    assert "when" in presets._load_toml(path)["a"]


def test_validated_presets_from_the_cache_are_the_validated_presets(tmp_path, monkeypatch):
    # A cache hit must give exactly what validating the file gives (values and their types), and a
    # file the rules refuse is refused again, never read back from an earlier run.
    from llmplan import presets
    from llmplan.io import parse_cache

    monkeypatch.setenv("LLMPLAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(presets, "PARSE_CACHE", parse_cache)
    for kind in presets.KINDS:
        path = presets.builtin_dir() / f"{kind}.toml"
        fresh = presets.load_file(kind, path)
        again = presets.load_file(kind, path)  # from the cache
        assert list(again) == list(fresh)
        for key, preset in fresh.items():
            assert again[key] == preset
            assert {k: type(v) for k, v in again[key].data.items()} == {k: type(v) for k, v in preset.data.items()}
    import pytest

    from llmplan.errors import InputError

    bad = tmp_path / "models.toml"
    bad.write_text('[m]\nparams = -1\n')
    for _ in range(2):
        with pytest.raises(InputError, match="params"):
            presets.load_file("models", bad)


def test_an_edited_validator_is_not_trusted_from_the_cache(tmp_path, monkeypatch):
    from llmplan import presets
    from llmplan.io import parse_cache

    monkeypatch.setenv("LLMPLAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(presets, "PARSE_CACHE", parse_cache)
    path = presets.builtin_dir() / "gpus.toml"
    presets.load_file("gpus", path)
    before = len(list((tmp_path / "cache").iterdir()))
    monkeypatch.setattr(presets, "_validator_stamp", lambda: b"other rules")
    presets.load_file("gpus", path)
    assert len(list((tmp_path / "cache").iterdir())) == before + 1  # a new key: validated again
