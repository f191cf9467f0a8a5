"""Reading Hugging Face config.json files (tests/data/*_config.json, written from the published
configurations) into shapes whose counts match the published totals (models.csv rows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmplan import arch
from llmplan.errors import InputError
from llmplan.hfconfig import READERS, shape_from_config, shape_from_hf_config

DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("name, published", [
    ("llama2_7b_config.json", 6_738_415_616),  # Llama 2 7B
    ("llama2_70b_config.json", 68_976_648_192),  # Llama 2 70B, GQA
    ("mistral_7b_config.json", 7_241_732_096),  # Mistral 7B
    ("qwen2.5_72b_config.json", 72_706_203_648),  # Qwen2.5-72B (q/k/v biases)
    ("gpt3_small_gpt2_config.json", 125_226_240),  # GPT-3 Small in GPT-2's format
    ("pythia_12b_config.json", 11_846_072_320),  # Pythia README total
    ("bloom_176b_config.json", 176_247_271_424),  # BLOOM model card
    ("falcon_180b_config.json", 179_522_565_120),  # HF safetensors total
    ("bert_large_config.json", 335_141_888),  # BertModel with pooler
    ("roberta_large_config.json", 355_359_744),  # RobertaModel with pooler
    ("t5_11b_config.json", 11_307_321_344),  # T5-11B, tied, ReLU
    ("flan_t5_xxl_config.json", 11_135_332_352),  # Flan-T5-XXL, GeGLU, untied
])
def test_config_counts(name, published):
    assert arch.params(shape_from_hf_config(DATA / name)) == published


def test_deepseek_v3_config_excludes_mtp():
    # 671B main model (the repo's 685B adds the MTP module, num_nextn_predict_layers, not counted here).
    s = shape_from_hf_config(DATA / "deepseek_v3_config.json")
    assert abs(arch.params(s) / 671e9 - 1) < 1e-3
    assert abs(arch.active_params(s) / 37e9 - 1) < 0.02
    assert s.is_mla and s.dense_layers == 3 and s.experts == 256


def test_folder_and_cli(cli, tmp_path):
    folder = tmp_path / "llama"
    folder.mkdir()
    (folder / "config.json").write_text((DATA / "llama2_7b_config.json").read_text())
    assert arch.params(shape_from_hf_config(folder)) == 6_738_415_616
    result = cli(["arch", "--hf-config", str(DATA / "t5_11b_config.json"), "-f", "json"])
    assert result.code == 0, result.stderr
    row = json.loads(result.stdout)[0]
    assert row["architecture"] == "encoder-decoder" and row["params"] == 11_307_321_344


def test_gemma_and_mixtral_readers():
    # Gemma: gated GELU, explicit head_dim, tied by default. Mixtral: experts on a LLaMA body.
    gemma = shape_from_config({"model_type": "gemma", "hidden_size": 3072, "intermediate_size": 24576, "num_attention_heads": 16,
                               "num_key_value_heads": 16, "head_dim": 256, "num_hidden_layers": 28, "vocab_size": 256000})
    assert gemma.mlp == "geglu" and gemma.tied_embeddings and gemma.attn_width == 16 * 256
    mixtral = shape_from_config({"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
                                 "num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 32000,
                                 "num_local_experts": 8, "num_experts_per_tok": 2})
    assert mixtral.is_moe and arch.active_params(mixtral) < arch.params(mixtral)


def test_unknown_model_type_lists_known(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "mamba", "hidden_size": 768}))
    with pytest.raises(InputError) as error:
        shape_from_hf_config(path)
    message = str(error.value)
    assert "'mamba'" in message
    for known in ("llama", "gpt2", "t5", "deepseek_v3", "bert"):
        assert known in message
    assert len(READERS) >= 12


@pytest.mark.parametrize("content, text", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"hidden_size": 1}), "model_type"),
    (json.dumps({"model_type": "llama", "hidden_size": 4096}), "num_attention_heads"),
    (json.dumps({"model_type": "llama", "hidden_size": "big", "num_attention_heads": 32, "num_hidden_layers": 2,
                 "intermediate_size": 8, "vocab_size": 10}), "d-model"),
])
def test_bad_files_are_input_errors(cli, tmp_path, content, text):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(InputError, match=text):
        shape_from_hf_config(path)
    result = cli(["arch", "--hf-config", str(path)])
    assert result.code == 2 and "Traceback" not in result.stderr


def test_missing_file(cli, tmp_path):
    result = cli(["arch", "--hf-config", str(tmp_path / "nope.json")])
    assert result.code == 2 and "no such file" in result.stderr
