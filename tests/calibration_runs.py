"""The end-to-end runs llmplan's step model may be calibrated against, by software stack (issue 21), and its
prediction for each (tests/test_calibration.py and `make bench`'s benchmarks/throughput_report.py).

Only the sources named in the shared reference ("End-to-end runs you may calibrate against"):

- megatron: Narayanan et al. 2021 Table 1 and Korthikanti et al. 2022 Table 5 (tests/throughput_cases.py),
  Dubey et al. 2024 (Llama 3) Table 4, and the H100 table of the NVIDIA/Megatron-LM README ("Training Speed
  and Scalability", images/model_table.png @f2e5db40, 2024-07): GPT models, vocabulary 131,072, sequence 4096,
  with --overlap-grad-reduce, --overlap-param-gather (the distributed optimizer, ZeRO-1) and --tp-comm-overlap
  (which needs sequence parallelism). The table does not give the micro-batch, virtual stages or recomputation:
  Megatron's defaults are taken (micro-batch 1, no interleaving, no recomputation).
- torchtitan: pytorch/torchtitan docs/performance.md (@04133643): Llama 3 8B and 70B, Llama 2 13B and 70B with
  FSDP2 on 64 A100 80GB, local batch 1 or 2; "selective op" rows only (the "selective layer" policy, every
  other block checkpointed, is not one of the stack's modes). The rows came in with commit 1ea476e9 (2024-04-24):
  the stack as it was then (TITAN_A100_STACK: the configs' fused_rmsnorm, logits kept, foreach AdamW).
- torchtitan, H100: the same file's Llama 3.1 405B row on 128 H100 (@9515a140, 2024-08-22, figure corrected by 3faaa1a0):
  2D parallelism, FSDP2 over 16 and TP 8 (with torchtitan's sequence-parallel norms), local batch 2, sequence 8192
  (train_configs/llama3_405b.toml), full activation checkpointing, compile on, no float8 or async TP ("None"): 109
  tokens/s per GPU. The GPUs are the 96 GB HBM2e, 500 W parts (the file's footnote; catalog h100-96gb).
- fsdp: mosaicml/llm-foundry scripts/train/benchmarking/README.md (@061f2c7c), the "A100 80GB" table: MPT models
  (GeLU 4h MLP, LayerNorm, learned positions, tied embeddings, vocabulary 50,368; shapes from
  scripts/train/yamls/pretrain/mpt-*.yaml, NumParams checked), FSDP FULL_SHARD, activation checkpointing of
  whole blocks where the row says True; one row per model size at 2048 tokens and the longest-sequence rows. The
  table came in with commit b2a43a14 (2023-10-19): the stack as it was then (FOUNDRY_A100_STACK: attn_impl triton).

Every prediction is a step time; the error is the throughput's, published step / predicted step - 1. A
constant 40% MFU's error is beside it: the step time at 40% of the dense peak for the same model FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# (name, heads, hidden, layers, tp, pp, global batch, per-GPU TFLOP/s, MFU); data-parallel 48 in every row
MEGATRON_README_H100 = [
    ("1.7B", 16, 2048, 24, 1, 1, 192, 408.8, 0.41), ("7.1B", 32, 4096, 30, 2, 1, 192, 465.9, 0.47),
    ("16B", 48, 6144, 32, 4, 1, 192, 489.1, 0.49), ("32B", 56, 7168, 48, 8, 1, 192, 459.6, 0.46),
    ("70B", 64, 8192, 84, 8, 2, 384, 419.7, 0.42), ("119B", 80, 10240, 92, 8, 4, 768, 420.5, 0.43),
    ("177B", 96, 12288, 96, 8, 6, 1152, 432.8, 0.44), ("314B", 128, 16384, 96, 8, 8, 1536, 474.4, 0.48),
    ("462B", 144, 18432, 112, 8, 16, 3072, 459.9, 0.47),
]
# (preset, seq, local batch, activation checkpointing, tokens/s per GPU ("WPS"), MFU); 64 A100 80GB, FSDP2
TORCHTITAN_A100 = [
    ("llama-3-8b", 8192, 1, "selective", 2973, 0.582), ("llama-3-70b", 8192, 1, "full", 331, 0.517),
    ("llama-2-13b", 4096, 2, "none", 2162, 0.611), ("llama-2-13b", 4096, 2, "selective", 1904, 0.538),
    ("llama-2-70b", 4096, 1, "selective", 355, 0.508), ("llama-2-70b", 4096, 2, "full", 353, 0.505),
]
# (preset, seq, local batch, activation checkpointing, tp, tokens/s per GPU, MFU); 128 H100 96GB (500 W), FSDP2 x TP, compiled
TORCHTITAN_H100 = [("llama-3.1-405b", 8192, 2, "full", 8, 109, 0.29)]
MPT = {"1b": (2048, 16, 24), "3b": (2560, 20, 32), "7b": (4096, 32, 32), "13b": (5120, 40, 40), "30b": (7168, 64, 48), "70b": (8192, 64, 80)}
# (model, seq, GPUs, micro-batch, gradient accumulation, checkpointing, tokens/s per GPU, MFU %)
LLM_FOUNDRY_A100 = [
    ("1b", 2048, 8, 14, 4, False, 20513, 59.86), ("3b", 2048, 8, 10, 2, False, 10811, 62.11),
    ("7b", 2048, 8, 6, 2, False, 4641, 64.23), ("13b", 2048, 8, 2, 3, False, 2262, 59.57),
    ("30b", 2048, 8, 3, 21, True, 916, 55.3), ("70b", 2048, 64, 8, 4, True, 410, 53.33),
    ("7b", 8192, 8, 8, 2, True, 3206, 54.47), ("13b", 4096, 8, 10, 3, True, 2060, 57.62),
    ("7b", 65536, 8, 1, 2, True, 1013, 46.97), ("1b", 32768, 8, 1, 4, False, 6275, 55.52),
]
# Each source's stated tolerance on |error| and why (a regression guard where the model misses 15%).
TOLERANCE = {
    "narayanan2021": None,  # per row, tests/data/published_throughput.csv (tests/test_throughput.py says why)
    "korthikanti2022": None,
    "megatron-readme-h100": (0.30, "the model lands within -29%..+7% with Megatron's defaults for what the table omits (micro-batch "
                                   "1, no interleaving, no recomputation) at the sustained Hopper clock: slow on all but the smallest, "
                                   "most on the 32B (tp 8: each data-parallel ring has one rank per node, so its fp32 gradients cross one "
                                   "50 GB/s NIC); NVIDIA's own clusters may hold a higher clock (its MLPerf v4.0 systems moved power "
                                   "from L2 to the SMs, as DeepGEMM's maintainer notes in issue #120)"),
    "llama3": (0.05, "tests/test_throughput.py: the searched layout is their tp 8 x pp 16; the model is within 2% at the sustained clock"),
    "torchtitan-a100": (0.22, "the model is 7-19% fast on FSDP2 A100 runs, counting the kernels and bytes torchtitan's block launches "
                              "(measured op by op, presets/kernels.toml) and FSDP2's copies around its collectives; its ZeRO-3 rings "
                              "are taken at 8 NICs per node (DGX A100, 8 x 200 Gb/s); torchtitan's cluster's network is not published"),
    "torchtitan-h100": (0.10, "the model is 4% fast on the 405B row: the 500 W part's matmul rate is a bound (the H100 NVL's peak at "
                              "the SXM's measured fraction and the 700 W parts' sustained clock; 500 W holds the clock lower still)"),
    "llm-foundry-a100": (0.18, "the model is -10%..+15% on Composer FSDP A100 runs with the Triton FlashAttention they ran "
                               "(attn_impl: triton); the 13B at micro-batch 2 is the fast end"),
    "llm-foundry-a100-long": (0.23, "at 32K-64K tokens the model is 14-20% slow: the Triton kernel's rate is measured up to 16K "
                                    "tokens and held there (presets/kernels.toml)"),
}


def FOUNDRY_A100_STACK():
    """The fsdp stack as llm-foundry's A100 table ran it: the table came in with commit b2a43a14 (2023-10-19), whose
    scripts/train/benchmarking/submit_benchmarks.py sets attn_impl from `--attn_impl` (default 'triton') and installs
    llm-foundry's `[gpu]` extra (flash-attn 1.0.9, no FlashAttention-2): the Triton FlashAttention kernel
    (llmfoundry/models/layers/flash_attn_triton.py), not the stack preset's (v0.17.0) FlashAttention-2."""
    from llmplan.systems.stack import load

    return replace(load("fsdp"), attention="fa-triton")


# train_configs/*.toml norm_type at torchtitan 1ea476e9 (2024-04-24, the commit that put these rows in docs/performance.md)
TITAN_A100_NORM = {"llama-3-8b": "fused", "llama-2-13b": "fused", "llama-3-70b": "eager", "llama-2-70b": "eager"}


def TITAN_A100_STACK(preset: str):
    """The torchtitan stack as its A100 table ran it (pytorch/torchtitan @1ea476e9, 2024-04-24): train_configs/llama3_8b.toml
    and llama2_13b.toml set norm_type = "fused_rmsnorm" (a Triton RMSNorm, torchtitan/models/norms.py), the 70B configs
    "rmsnorm" (eager); train.py then kept `pred` (the logits) referenced through loss.backward() (the `del pred` came later)
    and built AdamW with foreach=True."""
    from llmplan.systems.stack import load

    return replace(load("torchtitan"), norm=TITAN_A100_NORM[preset], logits_kept_for_backward=True, optimizer_impl="foreach")


@dataclass
class Calibration:
    stack: str
    source: str
    case: str
    gpu: str
    published_seconds: float  # step time the published number implies
    predicted_seconds: float
    constant_mfu_seconds: float  # step time at a constant 40% MFU
    fits: bool | None
    tolerance: float

    @property
    def error(self) -> float:
        return self.published_seconds / self.predicted_seconds - 1

    @property
    def constant_error(self) -> float:
        return self.published_seconds / self.constant_mfu_seconds - 1


def _at_40(st, gpus: int, peak: float) -> float:
    return st.model_flops / (0.4 * peak * gpus)


def _predict(stack: str, source: str, case: str, gpu: str, shape, run, layout, published) -> Calibration:
    """One run: the model's step and memory for the layout on the catalog GPU, against the published step time
    (`published`: seconds, or a function of the model's StepTime for sources that give FLOP/s)."""
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout_search import memory_breakdown
    from llmplan.systems.step_time import step_time

    cluster = GPU.from_preset(catalog().get("gpus", gpu))
    st = step_time(shape, run, layout, cluster)
    fits = memory_breakdown(shape, run, layout).total_bytes <= cluster.capacity_bytes
    seconds = published(st) if callable(published) else published
    return Calibration(stack, source, case, cluster.gpu, seconds, st.step_seconds,
                       _at_40(st, layout.gpus, cluster.peak_flops_per_second), fits, TOLERANCE[source][0])


def megatron_readme() -> list[Calibration]:
    from llmplan.model import arch
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.stack import load

    stack = replace(load("megatron"), tp_comm_overlap=True)  # the README's --tp-comm-overlap
    out = []
    for name, a, h, L, tp, pp, B, tflops, _ in MEGATRON_README_H100:
        shape = arch.Shape(d_model=h, heads=a, layers=L, vocab=131072, mlp="gelu", ffn=4 * h, context=4096)
        layout = Layout(tp=tp, pp=pp, dp=48, zero=1, micro_batch=1, sequence_parallel=tp > 1)
        # Megatron's FLOP count is PaLM's for GPT blocks: the published TFLOP/s gives the step time for the model's FLOPs
        published = lambda st, tflops=tflops, gpus=layout.gpus: st.model_flops / (tflops * 1e12 * gpus)
        out.append(_predict("megatron", "megatron-readme-h100", name, "h100", shape, Run(seq=4096, global_batch=B, stack=stack), layout,
                            published))
    return out


def torchtitan_a100() -> list[Calibration]:
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.layout import Layout, Run

    out = []
    for preset, seq, mb, ac, wps, _ in TORCHTITAN_A100:
        shape = arch.Shape.from_preset(catalog().get("models", preset))
        run = Run(seq=seq, global_batch=64 * mb, stack=TITAN_A100_STACK(preset))
        out.append(_predict("torchtitan", "torchtitan-a100", f"{preset} mb{mb} {ac}", "a100-80gb", shape, run,
                            Layout(dp=64, zero=3, micro_batch=mb, recompute=ac), run.global_batch * seq / (wps * 64)))
    return out


def torchtitan_h100() -> list[Calibration]:
    from llmplan.model import arch
    from llmplan.presets import catalog
    from llmplan.systems.layout import Layout, Run
    from llmplan.systems.stack import load

    out = []
    for preset, seq, mb, ac, tp, wps, _ in TORCHTITAN_H100:
        shape = arch.Shape.from_preset(catalog().get("models", preset))
        dp = 128 // tp
        run = Run(seq=seq, global_batch=dp * mb, stack=replace(load("torchtitan"), compiled=True))
        layout = Layout(tp=tp, dp=dp, zero=3, micro_batch=mb, recompute=ac, sequence_parallel=True)
        out.append(_predict("torchtitan", "torchtitan-h100", f"{preset} tp{tp} mb{mb} {ac}", "h100-96gb", shape, run, layout,
                            run.global_batch * seq / (wps * 128)))
    return out


def llm_foundry_a100() -> list[Calibration]:
    from llmplan.model import arch
    from llmplan.systems.layout import Layout, Run

    out = []
    for name, seq, gpus, mb, accum, ckpt, tps, _ in LLM_FOUNDRY_A100:
        h, a, L = MPT[name]
        shape = arch.Shape(d_model=h, heads=a, layers=L, vocab=50368, mlp="gelu", ffn=4 * h, positions="learned",
                           norm="layernorm", tied_embeddings=True, context=seq)
        run = Run(seq=seq, global_batch=gpus * mb * accum, stack=FOUNDRY_A100_STACK())
        layout = Layout(dp=gpus, zero=3, micro_batch=mb, recompute="full" if ckpt else "none")
        source = "llm-foundry-a100-long" if seq > 16384 else "llm-foundry-a100"
        out.append(_predict("fsdp", source, f"mpt-{name} seq {seq} mb{mb}{' ckpt' if ckpt else ''}", "a100-80gb", shape, run, layout,
                            run.global_batch * seq / (tps * gpus)))
    return out


def megatron_papers() -> list[Calibration]:
    from throughput_cases import cases, megatron_eq3_flops, predict

    out = []
    for c in cases():
        _, st = predict(c)
        published = c.published if c.metric == "iteration_seconds" else megatron_eq3_flops(c) / (c.published * 1e12 * c.gpus)
        out.append(Calibration("megatron", c.paper, c.case, "a100-80gb", published, st.step_seconds, _at_40(st, c.gpus, 312e12),
                               None, c.tolerance))
    return out


def llama3() -> list[Calibration]:
    from throughput_cases import LLAMA3, predict_llama3

    out = []
    for gpus, seq, batch, tflops, mfu in LLAMA3:
        if seq != 8192:
            continue
        best, _ = predict_llama3(gpus, seq, batch)
        st = best.step
        published = st.step_seconds * st.mfu / mfu  # same model FLOPs at their MFU
        out.append(Calibration("megatron", "llama3", f"405B {gpus} GPUs", "h100-sxm", published, st.step_seconds,
                               _at_40(st, gpus, 989.4e12), True, TOLERANCE["llama3"][0]))
    return out


def all_runs() -> list[Calibration]:
    return megatron_papers() + llama3() + megatron_readme() + torchtitan_a100() + torchtitan_h100() + llm_foundry_a100()


def summary(runs: list[Calibration]) -> dict[tuple[str, str], dict[str, Any]]:
    """(stack, gpu) -> runs, mean |error| of the model and of a constant 40% MFU."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in runs:
        s = out.setdefault((r.stack, r.gpu), {"runs": 0, "model": 0.0, "constant": 0.0})
        s["runs"] += 1
        s["model"] += abs(r.error)
        s["constant"] += abs(r.constant_error)
    for s in out.values():
        s["model"] /= s["runs"]
        s["constant"] /= s["runs"]
    return out


def calibration_lines(runs: list[Calibration]) -> dict[str, list[str]]:
    """stack -> the presets/stacks.toml `calibration` lines these runs give ("GPU: N runs, -a% to +b%, mean c%")."""
    out: dict[str, list[str]] = {}
    for (stack, gpu), s in sorted(summary(runs).items()):
        errors = [r.error for r in runs if (r.stack, r.gpu) == (stack, gpu)]
        out.setdefault(stack, []).append(f"{gpu}: {s['runs']} run{'s' if s['runs'] > 1 else ''}, {min(errors):+.1%} to {max(errors):+.1%}, "
                                         f"mean {s['model']:.1%}")
    return out


if __name__ == "__main__":  # print the lines for presets/stacks.toml
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    for stack, lines in calibration_lines(all_runs()).items():
        print(f"[{stack}] calibration = {lines!r}".replace("'", '"'))
