"""safetensors headers: exact stored counts by dtype, without reading a tensor; hostile headers refused.

Every file here is written by the test itself (a few KB): the format is an 8-byte little-endian
header length, the JSON header, then the data (huggingface/safetensors README, "Format").
"""

from __future__ import annotations

import json
import math
import struct

import pytest

from llmplan.model import arch
from llmplan.model import safetensors as st
from llmplan.errors import InputError

SIZES = {"F32": 4, "BF16": 2, "F16": 2, "I64": 8, "U8": 1}


def write_safetensors(path, tensors: dict[str, tuple[str, list[int]]], metadata: dict | None = None, fill: bytes = b"\0") -> int:
    """Write a valid file: tensors as name -> (dtype, shape), zeros as data. Returns its data bytes."""
    header: dict = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = math.prod(shape) * SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # the reference writer pads the header to 8 bytes with spaces
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + fill * offset)
    return offset


# A tiny Llama: 2 layers, d 16, 4 heads of 4, 2 KV heads, FFN 32, vocab 64, untied.
TINY = dict(layers=2, d_model=16, heads=4, kv_heads=2, ffn=32, vocab=64, context=128)
TINY_CONFIG = {
    "model_type": "llama", "num_hidden_layers": 2, "hidden_size": 16, "num_attention_heads": 4,
    "num_key_value_heads": 2, "intermediate_size": 32, "vocab_size": 64, "max_position_embeddings": 128,
    "tie_word_embeddings": False,
}


def tiny_llama_tensors(dtype: str = "BF16") -> dict[str, tuple[str, list[int]]]:
    """The tensor names and shapes transformers' LlamaForCausalLM saves for TINY."""
    d, kv, f, v = 16, 2 * 4, 32, 64
    out = {"model.embed_tokens.weight": (dtype, [v, d]), "model.norm.weight": (dtype, [d]), "lm_head.weight": (dtype, [v, d])}
    for i in range(2):
        p = f"model.layers.{i}."
        out.update({
            p + "self_attn.q_proj.weight": (dtype, [d, d]), p + "self_attn.k_proj.weight": (dtype, [kv, d]),
            p + "self_attn.v_proj.weight": (dtype, [kv, d]), p + "self_attn.o_proj.weight": (dtype, [d, d]),
            p + "mlp.gate_proj.weight": (dtype, [f, d]), p + "mlp.up_proj.weight": (dtype, [f, d]),
            p + "mlp.down_proj.weight": (dtype, [d, f]),
            p + "input_layernorm.weight": (dtype, [d]), p + "post_attention_layernorm.weight": (dtype, [d]),
        })
    return out


def test_one_file_counts_every_tensor_by_dtype(tmp_path):
    tensors = {"a": ("F32", [3, 5]), "b": ("BF16", [7]), "c": ("BF16", [2, 2, 2]), "scalar": ("I64", [])}
    path = tmp_path / "x.safetensors"
    data = write_safetensors(path, tensors, {"format": "pt"})
    ck = st.read_checkpoint(path)
    assert ck.params == 15 + 7 + 8 + 1  # a scalar (shape []) is one element
    assert ck.tensor_bytes == data == 15 * 4 + 15 * 2 + 8
    assert ck.by_dtype() == {"F32": {"tensors": 1, "params": 15, "bytes": 60},
                             "BF16": {"tensors": 2, "params": 15, "bytes": 30},
                             "I64": {"tensors": 1, "params": 1, "bytes": 8}}
    assert ck.metadata == {"format": "pt"}


def test_sharded_folder_and_index_agree_with_the_shape(tmp_path):
    tensors = tiny_llama_tensors()
    names = list(tensors)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    total = 0
    for shard, keys in shards.items():
        total += write_safetensors(tmp_path / shard, {k: tensors[k] for k in keys})
    index = {"metadata": {"total_size": total}, "weight_map": {k: s for s, keys in shards.items() for k in keys}}
    (tmp_path / st.INDEX_NAME).write_text(json.dumps(index))
    expected = arch.params(arch.Shape(**TINY))
    for given in (tmp_path, tmp_path / st.INDEX_NAME):
        ck = st.read_checkpoint(given)
        assert ck.params == expected and len(ck.files) == 2
        assert ck.tensor_bytes == 2 * expected  # bf16
        assert st.index_mismatch(ck) is None
        assert st.compare(ck, arch.Shape(**TINY)) == []


def test_compare_names_tied_heads_and_buffers(tmp_path):
    tensors = tiny_llama_tensors()
    del tensors["lm_head.weight"]  # stored once although the config says untied
    tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = ("F32", [2])  # a buffer saved as a tensor
    write_safetensors(tmp_path / "model.safetensors", tensors)
    ck = st.read_checkpoint(tmp_path / "model.safetensors")
    assert ck.buffer_elements == 2
    reasons = st.compare(ck, arch.Shape(**TINY))
    assert len(reasons) == 2 and "buffers" in reasons[0] and "tied" in reasons[1] and f"{64 * 16:,}" in reasons[1]


def _raw(header: str, data_bytes: int) -> bytes:
    raw = header.encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * data_bytes


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (struct.pack("<Q", st.MAX_HEADER_BYTES + 1) + b"{}", "more than the 100,000,000 allowed"),
        (struct.pack("<Q", 2**63) + b"{}", "more than the"),
        (struct.pack("<Q", 10) + b"not json!!", "not JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 4000) + b"{}", "truncated"),
        (b"abc", "too short"),
        (_raw('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 99]}}', 8), "within the file"),
        (_raw('{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', 8), "12 expected"),
        (_raw('{"w": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 1]}}', 1), "unknown dtype"),
        (_raw('{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}', 0), "whole numbers"),
        (_raw('{"w": [1, 2]}', 0), "not a JSON object with"),
        (_raw('[' * 100_000 + ']' * 100_000, 0), "not JSON"),
    ],
)
def test_hostile_headers_are_input_errors(tmp_path, raw, fragment):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    with pytest.raises(InputError, match=fragment):
        st.read_checkpoint(path)


def test_cli_sharded_checkpoint_exact_count_and_dtype_bytes(cli, tmp_path):
    tensors = tiny_llama_tensors()
    names = list(tensors)
    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {k: tensors[k] for k in names[:5]})
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {k: tensors[k] for k in names[5:]})
    result = cli(["arch", "--safetensors", str(tmp_path), "-f", "json"])
    assert result.code == 0, result
    (row,) = json.loads(result.stdout)
    expected = arch.params(arch.Shape(**TINY))
    assert row["params"] == expected and row["bf16_params"] == expected and row["bf16_bytes"] == 2 * expected
    assert row["checkpoint_files"] == 2 and row["checkpoint_tensors"] == len(tensors)
    # With the config.json beside it, the shape's rows (FLOPs, KV cache) come too, and the counts agree.
    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    result = cli(["arch", "--safetensors", str(tmp_path), "-f", "json"])
    (row,) = json.loads(result.stdout)
    assert row["config_params"] == row["params"] == expected and row["kv_cache_bytes_per_token"] == 2 * 2 * 2 * 4 * 2
    assert "config.json" not in result.stderr  # no disagreement to report


@pytest.mark.parametrize("command", [["arch"], ["memory"], ["compute", "--tokens", "1T"]])
def test_cli_bad_header_is_exit_2(cli, tmp_path, command):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    result = cli([*command, "--safetensors", str(path)])
    assert result.code == 2 and result.stderr.count("\n") == 1 and "allowed" in result.stderr and "Traceback" not in result.stderr


def test_memory_and_compute_take_a_checkpoint(cli, tmp_path):
    path = tmp_path / "model.safetensors"
    write_safetensors(path, tiny_llama_tensors())
    expected = arch.params(arch.Shape(**TINY))
    (mem,) = json.loads(cli(["memory", "--safetensors", str(path), "-f", "json"]).stdout)
    assert mem["params"] == expected and mem["weights_bytes"] == 2 * expected
    (comp,) = json.loads(cli(["compute", "--safetensors", str(path), "--tokens", "1T", "-f", "json"]).stdout)
    assert comp["params"] == expected and comp["flops"] == 6 * expected * 1e12


def test_index_total_size_and_stored_heads_are_reported(tmp_path):
    tensors = tiny_llama_tensors()
    data = write_safetensors(tmp_path / "model-00001-of-00001.safetensors", tensors)
    index = {"metadata": {"total_size": data + 2}, "weight_map": {k: "model-00001-of-00001.safetensors" for k in tensors}}
    (tmp_path / st.INDEX_NAME).write_text(json.dumps(index))
    ck = st.read_checkpoint(tmp_path)
    assert "total_size" in st.index_mismatch(ck)
    # A config that ties the head while the checkpoint stores lm_head.weight.
    tied = arch.Shape(**TINY, tied_embeddings=True)
    (reason,) = st.compare(ck, tied)
    assert "stored although the config ties it" in reason


def test_a_folder_with_the_same_weights_twice_is_refused(tmp_path):
    write_safetensors(tmp_path / "consolidated.safetensors", {"w": ("BF16", [2])})
    write_safetensors(tmp_path / "model-00001-of-00001.safetensors", {"w": ("BF16", [2])})
    with pytest.raises(InputError, match="consolidated.safetensors"):
        st.read_checkpoint(tmp_path)


def test_an_index_naming_a_missing_or_outside_shard_is_refused(tmp_path):
    (tmp_path / st.INDEX_NAME).write_text(json.dumps({"weight_map": {"w": "../elsewhere.safetensors"}}))
    with pytest.raises(InputError, match="beside the index"):
        st.read_checkpoint(tmp_path)
    (tmp_path / st.INDEX_NAME).write_text(json.dumps({"weight_map": {"w": "gone.safetensors"}}))
    with pytest.raises(InputError, match="no such file"):
        st.read_checkpoint(tmp_path)
