"""Presets are data: shipped models, laws and GPUs, validated, and a user's folder on top."""

import json
from pathlib import Path

import pytest

from llmplan.errors import InputError
from llmplan.presets import load_catalog

REQUIRED_MODELS = """chinchilla-70b gopher-280b gpt-3-125m gpt-3-350m gpt-3-760m gpt-3-1.3b gpt-3-2.7b gpt-3-6.7b
gpt-3-13b gpt-3-175b opt-175b bloom-176b llama-7b llama-13b llama-33b llama-65b llama-2-7b llama-2-13b llama-2-70b
llama-3-8b llama-3-70b llama-3.1-405b palm-540b bloomberggpt-50b falcon-40b falcon-180b mistral-7b mpt-7b pythia-12b
t5-11b flan-t5-xxl bert-base bert-large roberta-large deepseek-v3 qwen2.5-72b""".split()

REQUIRED_GPUS = "v100-sxm a100-40gb a100-80gb h100-sxm h100-pcie h200 b200 l4 l40s a10 rtx-3090 rtx-4090 mi250x mi300x tpu-v4 tpu-v5e tpu-v5p".split()

# Published tokens are unknown for these (models.md: Mistral 7B's training tokens are undisclosed;
# Flan-T5-XXL's pre-training tokens were not verified). They carry no `tokens`, on purpose.
TOKENS_UNPUBLISHED = {"mistral-7b", "flan-t5-xxl"}


def test_every_required_model_is_listed_with_numbers(cli):
    result = cli(["presets", "list", "--kind", "models", "--format", "json"])
    assert result.code == 0, result.stderr
    rows = {r["model"]: r for r in json.loads(result.stdout)}
    for model_id in REQUIRED_MODELS:
        row = rows[model_id]
        assert isinstance(row["params"], int) and row["params"] > 0
        assert row["architecture"] in ("decoder", "encoder", "encoder-decoder")
        assert row["objective"] in ("clm", "mlm", "span-corruption")
        assert row["source"]
        if model_id not in TOKENS_UNPUBLISHED:
            assert isinstance(row["tokens"], int) and row["tokens"] > 0, model_id


def test_published_facts_the_planner_relies_on():
    cat = load_catalog()
    # Hoffmann et al. 2022, Table 1: Chinchilla 70B on 1.4T tokens.
    chinchilla = cat.get("models", "chinchilla")
    assert (chinchilla["params"], chinchilla["tokens"]) == (70_000_000_000, 1_400_000_000_000)
    # OPT-175B processed 300B tokens (metaseq logbook) although the corpus is 180B (models.md).
    assert cat.get("models", "opt-175b")["tokens"] == 300_000_000_000
    # BLOOM paper: 366B tokens trained.
    assert cat.get("models", "bloom-176b")["tokens"] == 366_000_000_000
    assert cat.get("models", "bloom-176b")["params"] == 176_247_271_424


def test_gpu_catalog_holds_dense_peaks():
    cat = load_catalog()
    for gpu_id in REQUIRED_GPUS:
        assert cat.find("gpus", gpu_id) is not None, gpu_id
    h100 = cat.get("gpus", "h100")
    # NVIDIA H100 SXM datasheet: 1,979 TFLOP/s bf16 "with sparsity"; dense is half.
    assert h100["peak_bf16"] == pytest.approx(989.4e12)
    assert h100["memory_bytes"] == 80_000_000_000
    assert cat.get("gpus", "a100-80gb")["peak_bf16"] == pytest.approx(312e12)


def test_unknown_id_suggests_close_ones():
    cat = load_catalog()
    with pytest.raises(InputError, match=r"^unknown model 'llama2-70'; did you mean .*llama-2-70b"):
        cat.get("models", "llama2-70")


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_user_folder_adds_and_overrides(tmp_path):
    _write(tmp_path, "models.toml", """
[my-1b]
name = "My 1B"
architecture = "decoder"
objective = "clm"
params = 1_000_000_000
tokens = 40_000_000_000
source = "our run"

[chinchilla-70b]
name = "Chinchilla (our recount)"
architecture = "decoder"
objective = "clm"
params = 70_000_000_000
tokens = 1_500_000_000_000
source = "ours"
""")
    cat = load_catalog(tmp_path)
    assert cat.get("models", "my-1b")["tokens"] == 40_000_000_000
    assert cat.get("models", "chinchilla-70b")["tokens"] == 1_500_000_000_000
    assert cat.find("models", "gpt-3-175b") is not None


@pytest.mark.parametrize(
    "body, message",
    [
        ('[x]\nname = "X"\narchitecture = "decoder"\nobjective = "clm"\nparams = -5\nsource = "s"\n', "entry [x] field 'params' must be a positive, finite number"),
        ('[x]\nname = "X"\narchitecture = "decoderr"\nobjective = "clm"\nparams = 5\nsource = "s"\n', "entry [x] field 'architecture' is 'decoderr'; expected one of"),
        ('[x]\nname = "X"\narchitecture = "decoder"\nobjective = "clm"\nparams = 5\n', "entry [x] is missing the required field 'source'"),
        ('[x]\nname = "X"\narchitecture = "decoder"\nobjective = "clm"\nparams = 5\nsource = "s"\nlayer = 3\n', "entry [x] has unknown field 'layer'; did you mean 'layers'?"),
        ("[x\nname=", "not valid TOML"),
    ],
)
def test_malformed_file_names_file_entry_and_field(tmp_path, body, message):
    path = _write(tmp_path, "models.toml", body)
    with pytest.raises(InputError) as error:
        load_catalog(tmp_path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_bad_presets_folder_is_exit_2(cli, tmp_path):
    result = cli(["presets", "list", "--presets", str(tmp_path / "nope")])
    assert result.code == 2 and "does not exist" in result.stderr
    _write(tmp_path, "gpus.toml", '[g]\nname = "G"\nmemory_bytes = "lots"\nbandwidth = 1e12\nsource = "s"\n')
    result = cli(["gpus", "--presets", str(tmp_path)])
    assert result.code == 2 and "field 'memory_bytes' must be a number" in result.stderr


def test_show_prints_every_field(cli):
    result = cli(["presets", "show", "llama-2-7b", "-f", "json"])
    assert result.code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["model"] == "llama-2-7b" and row["d_model"] == 4096 and row["layers"] == 32


def test_presets_ship_inside_the_package_data():
    # pyproject maps presets/ to the package llmplan._presets, so a wheel carries the same files.
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    config = tomllib.loads(text)
    assert config["tool"]["setuptools"]["package-dir"]["llmplan._presets"] == "presets"
    assert "*.toml" in config["tool"]["setuptools"]["package-data"]["llmplan._presets"]
