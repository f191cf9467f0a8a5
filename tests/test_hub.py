"""--hf ORG/NAME[@REVISION]: models by Hugging Face Hub id, against a local stand-in for the Hub.

tests/hub_server.py serves Hub-shaped answers on 127.0.0.1 (a pytest fixture starts and stops it);
HF_ENDPOINT points huggingface_hub at it and HF_HOME at a temporary folder, so the real client code
runs (hf_hub_download, its cache, offline mode, its errors) and nothing reaches the internet. The
commands run in a subprocess: huggingface_hub reads HF_* once, when it is imported.

The served Llama 3.1 8B is made here: the keys of a Llama 3 config.json (tests/data/llama3.2_1b_config.json,
meta-llama's file) with the shape of presets/models.toml llama-3.1-8b (layers 32, d_model 4096, 32
heads, 8 KV heads, FFN 14336, vocab 128,256, untied), its tensors under the transformers Llama names
in four BF16 shards behind a model.safetensors.index.json. Its stored count must be the preset's
params_exact, 8,030,261,248 (the Llama 3.1 model card's figure, via the preset).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import DATA, REPO

pytest.importorskip("huggingface_hub")

from hub_server import TOKEN, Hub, Repo, Server, safetensors_file  # noqa: E402

BITS = {"BF16": 16, "F32": 32}
LLAMA = "meta-llama/Llama-3.1-8B"
LLAMA_PARAMS = 8_030_261_248  # presets/models.toml llama-3.1-8b params_exact


def llama_3_1_8b() -> Repo:
    config = json.loads((DATA / "llama3.2_1b_config.json").read_text())
    config.update(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                  intermediate_size=14336, head_dim=128, tie_word_embeddings=False)
    d, ffn, kv, vocab = 4096, 14336, 8 * 128, 128_256
    tensors: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": ("BF16", [vocab, d])}
    for i in range(32):
        p = f"model.layers.{i}."
        tensors.update({
            p + "self_attn.q_proj.weight": ("BF16", [d, d]), p + "self_attn.k_proj.weight": ("BF16", [kv, d]),
            p + "self_attn.v_proj.weight": ("BF16", [kv, d]), p + "self_attn.o_proj.weight": ("BF16", [d, d]),
            p + "mlp.gate_proj.weight": ("BF16", [ffn, d]), p + "mlp.up_proj.weight": ("BF16", [ffn, d]),
            p + "mlp.down_proj.weight": ("BF16", [d, ffn]),
            p + "input_layernorm.weight": ("BF16", [d]), p + "post_attention_layernorm.weight": ("BF16", [d]),
        })
    tensors.update({"model.norm.weight": ("BF16", [d]), "lm_head.weight": ("BF16", [vocab, d])})
    names = list(tensors)
    files: dict[str, bytes | tuple[bytes, int]] = {"config.json": json.dumps(config).encode()}
    weight_map = {}
    for k in range(4):
        shard = f"model-{k + 1:05d}-of-00004.safetensors"
        part = names[k * len(names) // 4:(k + 1) * len(names) // 4]
        files[shard] = safetensors_file({n: tensors[n] for n in part}, BITS)
        weight_map.update({n: shard for n in part})
    files["model.safetensors.index.json"] = json.dumps({"metadata": {"total_size": 2 * LLAMA_PARAMS}, "weight_map": weight_map}).encode()
    return Repo(files, gated=True)


def tiny_config() -> bytes:
    config = json.loads((DATA / "llama3.2_1b_config.json").read_text())
    config.update(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
                  head_dim=16, vocab_size=256, tie_word_embeddings=True)
    return json.dumps(config).encode()


def tiny_tensors() -> dict[str, tuple[str, list[int]]]:
    tensors = {"model.embed_tokens.weight": ("F32", [256, 64]), "model.norm.weight": ("F32", [64])}
    for i in range(2):
        p = f"model.layers.{i}."
        tensors.update({p + "self_attn.q_proj.weight": ("F32", [64, 64]), p + "self_attn.k_proj.weight": ("F32", [32, 64]),
                        p + "self_attn.v_proj.weight": ("F32", [32, 64]), p + "self_attn.o_proj.weight": ("F32", [64, 64]),
                        p + "mlp.gate_proj.weight": ("F32", [128, 64]), p + "mlp.up_proj.weight": ("F32", [128, 64]),
                        p + "mlp.down_proj.weight": ("F32", [64, 128]), p + "input_layernorm.weight": ("F32", [64]),
                        p + "post_attention_layernorm.weight": ("F32", [64])})
    return tensors


TINY_PARAMS = 256 * 64 + 64 + 2 * (64 * 64 * 2 + 32 * 64 * 2 + 128 * 64 * 3 + 128)


@pytest.fixture
def hub():
    import struct

    huge = struct.pack("<Q", 200_000_000) + b"{}"
    repos = {
        LLAMA: llama_3_1_8b(),
        "tiny/one-file": Repo({"config.json": tiny_config(), "model.safetensors": safetensors_file(tiny_tensors(), BITS)},
                              revisions=("main", "v1")),
        "tiny/bin-only": Repo({"config.json": tiny_config(), "pytorch_model.bin": b"\0" * 64}),
        "tiny/huge-header": Repo({"config.json": tiny_config(), "model.safetensors": (huge, 300_000_000)}),
        "tiny/no-config": Repo({"model.safetensors": safetensors_file(tiny_tensors(), BITS)}),
        "tiny/huge-config": Repo({"config.json": (b"{", 50_000_000)}),
    }
    server = Server(Hub(repos))
    try:
        yield server
    finally:
        server.close()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def run(args, tmp_path, endpoint, token=True, offline=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "LLMPLAN_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1",
               HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    if token:
        env["HF_TOKEN"] = TOKEN
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run([sys.executable, "-m", "llmplan", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    return proc


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmplan: error: --hf"), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert proc.stdout == ""


def test_memory_by_hub_id_from_a_populated_cache_offline(hub, tmp_path):
    """Online once (with HF_TOKEN: the repo is gated), then offline from the cache with the Hub gone."""
    online = run(["arch", "--hf", LLAMA, "-f", "json"], tmp_path, hub.url)
    assert online.returncode == 0, online.stderr
    row = json.loads(online.stdout)[0]
    assert row["params"] == LLAMA_PARAMS
    assert row["checkpoint_files"] == 4 and row["checkpoint_bytes"] == 2 * LLAMA_PARAMS
    # Headers only: every shard read is a range request, and far less than the 16 GB came back.
    shard_reads = [entry for entry in hub.hub.log if entry[1].endswith(".safetensors")]
    assert len(shard_reads) == 4 and all(entry[0] == "GET" and entry[2] for entry in shard_reads)
    assert hub.hub.served_bytes < 1_000_000
    requests = len(hub.hub.log)

    offline = run(["memory", "--hf", LLAMA, "--train", "--gpu", "h100", "-f", "json"], tmp_path, _closed_port(), token=False, offline=True)
    assert offline.returncode == 0, offline.stderr
    assert len(hub.hub.log) == requests  # nothing asked of the Hub
    by_hub = json.loads(offline.stdout)
    by_preset = json.loads(run(["memory", "--preset", "llama-3.1-8b", "--train", "--gpu", "h100", "-f", "json"], tmp_path, _closed_port()).stdout)
    assert len(by_hub) == len(by_preset) > 0
    for a, b in zip(by_hub, by_preset):
        assert {k: v for k, v in a.items() if k != "model"} == {k: v for k, v in b.items() if k != "model"}
    assert by_hub[0]["model"] == LLAMA


def test_every_model_taking_command_takes_hf(hub, tmp_path):
    for args in (["compute", "--tokens", "1T"], ["throughput", "--gpu", "h100", "--gpus", "8", "--global-batch", "64"],
                 ["layout", "--gpu", "h100", "--gpus", "8", "--global-batch", "64"], ["serve", "--gpu", "h100"]):
        proc = run([*args, "--hf", "tiny/one-file", "-f", "json"], tmp_path, hub.url)
        assert proc.returncode == 0, (args, proc.stderr)
        assert json.loads(proc.stdout), args


def test_a_single_file_repo_at_a_revision(hub, tmp_path):
    proc = run(["arch", "--hf", "tiny/one-file@v1", "-f", "json"], tmp_path, hub.url)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)[0]
    assert row["params"] == TINY_PARAMS and row["checkpoint_bytes"] == 4 * TINY_PARAMS and row["model"] == "tiny/one-file@v1"


def test_a_repo_without_safetensors_gives_the_configs_count_with_a_note(hub, tmp_path):
    proc = run(["arch", "--hf", "tiny/bin-only", "-f", "json"], tmp_path, hub.url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["params"] == TINY_PARAMS
    assert "stores no model.safetensors" in proc.stderr


def test_offline_with_the_config_but_not_the_headers_says_so(hub, tmp_path):
    import shutil

    assert run(["arch", "--hf", "tiny/one-file", "-f", "json"], tmp_path, hub.url).returncode == 0
    shutil.rmtree(tmp_path / "hf" / "assets")
    proc = run(["arch", "--hf", "tiny/one-file", "-f", "json"], tmp_path, _closed_port(), offline=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["params"] == TINY_PARAMS  # tied: the config counts the same
    assert "not cached" in proc.stderr


def test_gated_without_a_token(hub, tmp_path):
    one_line_error(run(["memory", "--hf", LLAMA, "--train"], tmp_path, hub.url, token=False), "is gated", "accept its licence", "HF_TOKEN")


def test_no_such_repo(hub, tmp_path):
    one_line_error(run(["arch", "--hf", "nobody/nothing"], tmp_path, hub.url), "no such model on the Hub")


def test_no_such_revision(hub, tmp_path):
    one_line_error(run(["arch", "--hf", "tiny/one-file@v9"], tmp_path, hub.url), "no such revision")


def test_no_config(hub, tmp_path):
    one_line_error(run(["arch", "--hf", "tiny/no-config"], tmp_path, hub.url), "has no config.json")


def test_offline_and_not_cached(tmp_path):
    one_line_error(run(["arch", "--hf", LLAMA], tmp_path, _closed_port(), offline=True), "not in the Hub cache", "HF_HUB_OFFLINE")


def test_no_network_and_not_cached(tmp_path):
    one_line_error(run(["arch", "--hf", LLAMA], tmp_path, _closed_port()), "cannot be reached", "not in the cache")


def test_a_header_too_large(hub, tmp_path):
    one_line_error(run(["arch", "--hf", "tiny/huge-header"], tmp_path, hub.url), "more than the 100,000,000 allowed")
    assert hub.hub.served_bytes < 1_000_000


def test_a_config_too_large_is_refused_before_it_is_downloaded(hub, tmp_path):
    one_line_error(run(["arch", "--hf", "tiny/huge-config"], tmp_path, hub.url), "config.json is 50,000,000 bytes, too large")
    assert hub.hub.served_bytes < 1_000_000


def test_without_huggingface_hub(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import raises ImportError
    result = cli(["memory", "--hf", LLAMA])
    assert result.code == 2 and result.stderr.strip() == "llmplan: error: --hf needs the huggingface_hub package: pip install 'llmplan[hub]'"


@pytest.mark.parametrize("spec", ["https://huggingface.co/x/y", "a/b/c", "org/name@", "../x", "x y"])
def test_not_a_hub_id(cli, spec):
    result = cli(["arch", "--hf", spec])
    assert result.code == 2 and "is not a Hub model id" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_one_model_source(cli):
    result = cli(["memory", "--hf", LLAMA, "--preset", "llama-3.1-8b"])
    assert result.code == 2 and "--preset and --hf were both given" in result.stderr
