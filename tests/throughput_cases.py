"""Published Megatron-LM measurements and the step model's prediction for each (tests and `make bench`).

tests/data/published_throughput.csv transcribes:

- Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters Using
  Megatron-LM" (SC21, arXiv:2104.04473), Table 1: achieved TFLOP/s per A100 counted by their Eq. 3,
  F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)), which includes the recomputed forward. Layouts, micro-batch
  sizes, virtual stages (num-layers-per-virtual-pipeline-stage) and the DDP implementation of every
  row are those of the paper's artifact, NVIDIA/Megatron-LM examples/sc21/run_table_1.sh (torch DDP,
  which overlaps the gradient all-reduce with backward, for the pp = 1 rows; Megatron's local DDP,
  which does not, for the others); fp16, full recomputation, dropout 0.1, seq 2048, vocab 51,200.
- Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models"
  (arXiv:2205.05198), Table 5: iteration seconds with full recomputation and with selective
  recomputation + sequence parallelism ("present work"), for the Table 3 configurations (tp 8,
  pp 1/8/35/64, one data-parallel replica, global batch 4/64/280/512, micro-batch 1).

Both ran on Selene: DGX A100 80GB nodes (NVLink 3, 8 x 200 Gb/s HDR InfiniBand), Megatron's fused
softmax (no FlashAttention: attention="eager"), GPT blocks (LayerNorm, GeLU 4h MLP, biases, learned
positions). `tolerance` is each row's stated relative tolerance (see tests/test_throughput.py).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

CSV = Path(__file__).resolve().parent / "data" / "published_throughput.csv"


@dataclass(frozen=True)
class Case:
    paper: str
    case: str
    heads: int
    hidden: int
    layers: int
    tp: int
    pp: int
    vp: int
    gpus: int
    global_batch: int
    micro_batch: int
    recompute: str
    sequence_parallel: bool
    overlap_dp: bool
    metric: str
    published: float
    tolerance: float


def cases() -> list[Case]:
    out = []
    with open(CSV, newline="") as handle:
        for r in csv.DictReader(handle):
            out.append(Case(
                r["paper"], r["case"], int(r["heads"]), int(r["hidden"]), int(r["layers"]), int(r["tp"]), int(r["pp"]),
                int(r["vp"]), int(r["gpus"]), int(r["global_batch"]), int(r["micro_batch"]), r["recompute"],
                r["sequence_parallel"] == "true", r["overlap_dp"] == "true", r["metric"], float(r["published"]),
                float(r["tolerance"])))
    return out


SEQ, VOCAB = 2048, 51200


def megatron_eq3_flops(c: Case) -> float:
    """Narayanan et al. 2021, Eq. 3: FLOPs per iteration with full recomputation."""
    B, s, l, h, V = c.global_batch, SEQ, c.layers, c.hidden, VOCAB
    return 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h))


def predict(c: Case) -> tuple[float, object]:
    """(predicted value of the row's metric, the StepTime) on the catalog's a100-80gb."""
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.step_time import step_time

    shape = arch.Shape(d_model=c.hidden, heads=c.heads, vocab=VOCAB, layers=c.layers, mlp="gelu", ffn=4 * c.hidden,
                       positions="learned", norm="layernorm", bias=True, context=SEQ)
    cluster = GPU.from_preset(catalog().get("gpus", "a100-80gb"), "fp16")
    run = Run(seq=SEQ, global_batch=c.global_batch, attention="eager", dropout=True, overlap_dp=c.overlap_dp)
    dp = c.gpus // (c.tp * c.pp)
    layout = Layout(tp=c.tp, pp=c.pp, vp=c.vp, dp=dp, micro_batch=c.micro_batch, recompute=c.recompute,
                    sequence_parallel=c.sequence_parallel)
    st = step_time(shape, run, layout, cluster)
    if c.metric == "tflops_per_gpu":
        return megatron_eq3_flops(c) / st.step_seconds / c.gpus / 1e12, st
    return st.step_seconds, st


# Out of sample (H100, not used to build the model): Llama 3 405B pre-training, Dubey et al. 2024,
# "The Llama 3 Herd of Models", Table 4: (GPUs, seq, global batch in sequences, TFLOP/s per GPU, BF16 MFU).
# Their layouts (tp 8, pp 16, uneven stages over 126 layers) cannot be written with pp dividing the
# layers, so the prediction is the best layout our search finds for the same GPUs, sequence and batch.
LLAMA3 = [(8192, 8192, 2048, 430, 0.43), (16384, 8192, 2048, 400, 0.41), (16384, 131072, 128, 380, 0.38)]


def predict_llama3(gpus: int, seq: int, global_batch: int):
    """The best layout found for Llama 3.1 405B on `gpus` H100s (llmplan.systems.layout_search.search)."""
    from llmplan.model import arch
    from llmplan.systems.layout_search import search
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Run

    cat = catalog()
    shape = arch.Shape.from_preset(cat.get("models", "llama-3.1-405b"))
    result = search(shape, Run(seq=seq, global_batch=global_batch), GPU.from_preset(cat.get("gpus", "h100")), gpus, top=1)
    return result.best[0], shape
