"""Activation memory: the per-tensor count against measurements, and Korthikanti et al. 2022's formulas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmplan.systems.layout import RECOMPUTE
from llmplan.systems.memory import activations as act

DATA = Path(__file__).resolve().parent / "data"
GiB = 2**30

# llama-134m of the calibration file (../shared/data/SOURCES.md): 12 x 768, 12 heads, FFN 2048, vocab 32000.
LLAMA_134M = act.Dims(layers=12, h=768, a=12, kv=12, hd=64, i=2048, V=32000)
MODES = {"fp32": ("fp32", 4), "amp-bf16": ("amp", 2), "bf16": ("pure", 2)}


def _rows(name: str, case: str) -> list[dict]:
    with open(DATA / name) as f:
        return [r for r in map(json.loads, f) if r.get("case") == case]


def saved_bytes(d: act.Dims, b: int, s: int, precision: str, c: int, attention: str, recompute: str = "none") -> float:
    """Forward pass with loss: every layer's saved tensors, the head, logits and log-probs, autocast's weight copies."""
    layers = d.layers * act.total(act.layer_saved(d, b, s, precision, c, attention, recompute))
    head = act.total(act.head_saved(d, b, s, precision, c))
    per_layer_linear = 4 * d.h * d.h + 3 * d.h * d.i  # q, k, v, o + gate, up, down (MHA, head_dim = h/a)
    copies = act.weight_copy_bytes(d.layers * per_layer_linear, d.V * d.h, precision, c, recompute)
    return layers + head + copies


@pytest.mark.parametrize("row", _rows("gpu_memory_calibration.jsonl", "train"), ids=lambda r: f"{r['mode']}-ckpt{r['ckpt']}-{r['attn']}")
def test_saved_activations_match_h100_measurements(row):
    # Tolerance 1%: the count leaves out only the small rotary cos/sin tables and the labels; the
    # measured forward also includes the allocator's 512-byte rounding of each block.
    precision, c = MODES[row["mode"]]
    predicted = saved_bytes(LLAMA_134M, row["batch"], row["seq"], precision, c,
                            "eager" if row["attn"] == "eager" else "flash", "full" if row["ckpt"] else "none")
    assert predicted == pytest.approx(row["saved_activations_bytes"], rel=0.01)


@pytest.mark.parametrize("row", _rows("saved_tensors_cpu.jsonl", "saved"),
                         ids=lambda r: f"{r['layers']}x{r['d_model']}-kv{r['kv_heads']}-s{r['seq']}-{r['mode']}-{r['attn']}")
def test_saved_activations_match_cpu_saved_tensor_counts(row):
    # GQA, MQA, longer sequences, eager vs SDPA: shapes the GPU file lacks (tests/data/README.md).
    # Tolerance 1%: at these small widths the per-layer rotary cos/sin tables (not counted) weigh up to ~0.5%.
    d = act.Dims(row["layers"], row["d_model"], row["heads"], row["kv_heads"], row["d_model"] // row["heads"], row["ffn"], row["vocab"])
    precision = "fp32" if row["mode"] == "fp32" else "pure"
    predicted = saved_bytes(d, row["batch"], row["seq"], precision, 4 if precision == "fp32" else 2,
                            "eager" if row["attn"] == "eager" else "flash")
    assert predicted == pytest.approx(row["saved_activations_bytes"], rel=0.01)


def test_gqa_shrinks_only_the_kernel_k_and_v():
    mha = act.Dims(1, 4096, 32, 32, 128, 11008, 32000)
    gqa = act.Dims(1, 4096, 32, 8, 128, 11008, 32000)
    diff = act.total(act.layer_saved(mha, 1, 1024, "pure", 2, "flash")) - act.total(act.layer_saved(gqa, 1, 1024, "pure", 2, "flash"))
    assert diff == 2 * 1024 * (32 - 8) * 128 * 2  # K and V at 24 fewer heads, 2 bytes
    # Eager attention repeats K and V to every head (repeat_kv), so GQA saves nothing there.
    assert act.total(act.layer_saved(mha, 1, 1024, "pure", 2, "eager")) == act.total(act.layer_saved(gqa, 1, 1024, "pure", 2, "eager"))


def test_every_saved_tensor_says_why():
    for recompute in RECOMPUTE:
        for item in act.layer_saved(LLAMA_134M, 1, 128, "amp", 2, "eager", recompute):
            assert item.why and item.bytes > 0


# Korthikanti et al. 2022, Table 2, at LLaMA-2-7B's width (h 4096, a 32, L 32), s 4096, b 1:
# memory-and-compute.md §7.4 anchors: 97.00 / 17.00 / 1.00 GiB for none / selective / full.
@pytest.mark.parametrize("recompute,gib", [("none", 97.00), ("selective", 17.00), ("full", 1.00)])
def test_korthikanti_table2(recompute, gib):
    total = 32 * act.korthikanti_layer_bytes(4096, 1, 4096, 32, 1, recompute)
    assert round(total / GiB, 2) == gib


def test_korthikanti_tensor_and_sequence_parallel():
    s, b, h, a, t = 2048, 1, 12288, 96, 8
    sbh = s * b * h
    # Table 2 rows: TP sbh(10 + 24/t + 5as/(ht)); TP+SP sbh(34/t + 5as/(ht)); selective TP+SP 34sbh/t.
    assert act.korthikanti_layer_bytes(s, b, h, a, t) == pytest.approx(sbh * (10 + 24 / t + 5 * a * s / (h * t)))
    assert act.korthikanti_layer_bytes(s, b, h, a, t, sp=True) == pytest.approx(sbh * (34 / t + 5 * a * s / (h * t)))
    assert act.korthikanti_layer_bytes(s, b, h, a, t, "selective", sp=True) == pytest.approx(34 * sbh / t)


def test_llama_block_keeps_more_than_the_gpt_textbook():
    # Same width, 16-bit, flash: SwiGLU's four FFN intermediates and RMSNorm's fp32 work exceed 34·sbh.
    d = act.Dims(1, 4096, 32, 32, 128, 11008, 32000)
    counted = act.total(act.layer_saved(d, 1, 4096, "pure", 2, "flash"))
    assert counted > act.korthikanti_layer_bytes(4096, 1, 4096, 32, 1, "selective")
