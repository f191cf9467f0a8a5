"""Predicted vs published serving numbers, by engine: calibration rows apart from check rows.

Run: python benchmarks/serve_report.py   (prints every row, then per engine, table and GPU the median error, median
|error| and share within 50%, the calibration and check sets apart; `make bench`)

Published figures are transcribed in tests/data/serve_published_trtllm_v0.9.0.csv (every row of TensorRT-LLM v0.9.0's
performance tables: output tokens/s per GPU of gptSessionBenchmark's static batches, and the first-token time at batch
1), tests/data/serve_published_llm_perf_bench.csv (batch-1 decoding of MLC LLM, Exllama and llama.cpp on an RTX 4090)
and tests/data/serve_published_vllm_dbrx.csv (vLLM's end-to-end latency of DBRX batches on 4 and 8 H100s); sources
and URLs in each header. Each row is predicted by `llmplan serve` with the engine preset it ran on (ENGINE_OF), for
the same model, GPU, tensor parallelism, batch and lengths, FP8 weights + FP8 KV on H100/H200/L40S and FP16 on A100 as
the page's engines were built. Only the vLLM and SGLang projects' own published benchmarks may set a constant
(CALIBRATION: vLLM's DBRX rows, measured on v0.4 in 2024, set the `vllm-0.4` entry's host time per step,
fit_vllm_overhead; the current `vllm` entry, the V1 engine, is set by no end-to-end row); every other row is a check.
error = predicted / published - 1: on throughput rows a positive error means the prediction is faster than the
engine was; on latency rows a negative one.
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmplan.model import arch  # noqa: E402
from llmplan.systems import engines, serving  # noqa: E402
from llmplan.presets import catalog  # noqa: E402

DATA = ROOT / "tests" / "data" / "serve_published_trtllm_v0.9.0.csv"
DECODE_DATA = ROOT / "tests" / "data" / "serve_published_llm_perf_bench.csv"
VLLM_DATA = ROOT / "tests" / "data" / "serve_published_vllm_dbrx.csv"

# Models the table names that have no preset, from their Hugging Face config.json (as the page's
# trtllm-build configs restate them).
EXTRA_SHAPES = {
    # EleutherAI/gpt-j-6b config.json: n_layer 28, n_embd 4096, n_head 16, n_positions 2048, rotary_dim 64,
    # vocab 50400, 4*d gelu MLP with biases, one LayerNorm per block (parallel attention + MLP).
    "GPT-J 6B": arch.Shape(layers=28, d_model=4096, heads=16, vocab=50400, mlp="gelu", ffn=16384, norm="layernorm",
                           bias=True, qkv_bias=False, layer_norms=1, context=2048, name="gpt-j-6b"),
    # mistralai/Mixtral-8x7B-v0.1 config.json: 32 layers, hidden 4096, 32 heads, 8 KV heads, 8 experts of
    # intermediate 14336, 2 per token, vocab 32000.
    "Mixtral 8x7B": arch.Shape(layers=32, d_model=4096, heads=32, kv_heads=8, vocab=32000, ffn=14336, moe_ffn=14336,
                               experts=8, experts_per_token=2, context=32768, name="mixtral-8x7b"),
    # databricks/dbrx-instruct config.json: 40 layers, d_model 6144, 48 heads, attn kv_n_heads 8, ffn_config
    # moe_num_experts 16, moe_top_k 4, ffn_hidden_size 10752, vocab 100352, LayerNorm without bias (132B, 36B active).
    "DBRX": arch.Shape(layers=40, d_model=6144, heads=48, kv_heads=8, vocab=100352, ffn=10752, moe_ffn=10752, experts=16,
                       experts_per_token=4, norm="layernorm", norm_bias=False, context=32768, name="dbrx"),
}
# The engine preset each published row ran on; MLC LLM and Exllama have no preset, so their rows are served by
# SGLang's entry (a weight-only int4 GEMM at its bits, FlashInfer decode attention as MLC uses, no host time
# on the critical path): a stand-in, said so.
ENGINE_OF = {"TensorRT-LLM 0.9.0": "trtllm", "vLLM (PR 3692)": "vllm-0.4", "llama.cpp": "llamacpp", "MLC LLM": "sglang", "Exllama": "sglang"}
# Which rows may set a constant (the vLLM and SGLang projects' own published benchmarks) and which only check.
CALIBRATION = {"vLLM (PR 3692)"}
PRESETS = {"LLaMA 7B": "llama-2-7b", "LLaMA 70B": "llama-2-70b", "Mistral 7B": "mistral-7b", "Falcon 180B": "falcon-180b",
           "Llama2-7B": "llama-2-7b", "Llama2-13B": "llama-2-13b"}


def published_rows(path: Path = DATA) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def shape_of(model: str, cat) -> arch.Shape:
    if model in EXTRA_SHAPES:
        return EXTRA_SHAPES[model]
    return arch.Shape.from_preset(cat.get("models", PRESETS[model]))


def cases(paths: tuple[Path, ...] = (DATA, DECODE_DATA, VLLM_DATA), overrides: dict | None = None) -> list[dict]:
    """Every published row with llmplan's prediction; `overrides` replaces fields of the engines (a fit's baseline)."""
    import dataclasses

    cat = catalog(None)
    out = []
    for row in (r for path in paths for r in published_rows(path)):
        s = shape_of(row["model"], cat)
        dtype = row["dtype"]
        kv = dtype if dtype in ("fp8", "fp16") else "fp16"  # FP8 engines keep an FP8 KV cache; int4 engines a 16-bit one
        label = row.get("engine") or "TensorRT-LLM 0.9.0"
        engine = engines.load(cat, ENGINE_OF[label])
        if label == "TensorRT-LLM 0.9.0":  # the tables ran gptSessionBenchmark: one static batch, all admitted at once
            engine = dataclasses.replace(engine, batching="static")
        if overrides:
            engine = dataclasses.replace(engine, **overrides)
        group = int(row.get("group_size") or 128)
        m = serving.Served(s, arch.params(s), dtype, kv, int(row["tp"]), group, engine)
        hw = serving.hardware_from_gpu(cat.get("gpus", row["gpu"]), dtype)
        r = serving.serve(m, hw, int(row["batch"]), int(row["input_tokens"]), int(row["output_tokens"]))
        metric = row["metric"]
        predicted, published = r[metric], float(row["published"])
        out.append({
            "table": row["table"], "engine": label, "engine_preset": engine.id, "set": "calibration" if label in CALIBRATION else "check", "gpu": row["gpu"], "model": row["model"], "tp": int(row["tp"]), "batch": int(row["batch"]),
            "input": int(row["input_tokens"]), "output": int(row["output_tokens"]), "metric": metric,
            "predicted": predicted, "published": published, "error": predicted / published - 1,
            "fits": r["fits"], "decode_bound": r["decode_bound"], "prefill_bound": r["prefill_bound"],
            "roofline": roofline_value(r, metric),
            "floor_ok": metric != "output_tokens_per_second_per_sequence" or 1 / predicted >= r["weights_floor_seconds"],
        })
    return out


def roofline_value(r: dict, metric: str) -> float:
    """The row's metric as the roofline gives it (bytes at full bandwidth, FLOPs at the achievable rate)."""
    if metric == "prefill_seconds":
        return r["roofline_prefill_seconds"]
    if metric == "latency_seconds":
        return r["roofline_latency_seconds"]
    if metric == "output_tokens_per_second_per_sequence":
        return 1 / r["roofline_time_per_output_token_seconds"]
    return r["batch"] * r["output_tokens"] / r["roofline_latency_seconds"] / r["tp"]


def summary(rows: list[dict]) -> dict:
    errors = [r["error"] for r in rows]
    return {"n": len(rows), "median": statistics.median(errors), "median_abs": statistics.median(abs(e) for e in errors),
            "within_50": sum(abs(e) <= 0.5 for e in errors) / len(errors), "min": min(errors), "max": max(errors)}


def fit_vllm_overhead() -> tuple[float, float, list[float]]:
    """vLLM 0.4's per-step host time (the `vllm-0.4` entry) (step_overhead_seconds, sequence_overhead_seconds) that its own published DBRX rows
    leave once every kernel runs at its measured rate: least squares on relative error of latency = predicted
    (no overhead) + engine steps x (c0 + c1 x batch), the engine steps being the prefill and the output - 1 decode
    steps (one batch: every row fits in one wave). Returns (c0, c1, the rows' errors after the fit)."""
    rows = [r for r in cases((VLLM_DATA,), {"step_overhead_seconds": 0.0, "sequence_overhead_seconds": 0.0})]
    a11 = a12 = a22 = b1 = b2 = 0.0
    for r in rows:
        steps = r["output"]
        x1, x2, y = steps / r["published"], steps * r["batch"] / r["published"], 1 - r["predicted"] / r["published"]
        a11, a12, a22, b1, b2 = a11 + x1 * x1, a12 + x1 * x2, a22 + x2 * x2, b1 + x1 * y, b2 + x2 * y
    det = a11 * a22 - a12 * a12
    c0, c1 = (a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det
    errors = [(r["predicted"] + r["output"] * (c0 + c1 * r["batch"])) / r["published"] - 1 for r in rows]
    return c0, c1, errors


def main() -> int:
    rows = cases()
    print(f"{'table':10} {'engine':18} {'gpu':8} {'model':13} {'tp':>2} {'batch':>5} {'in':>5} {'out':>5} {'published':>11} {'predicted':>11} {'error':>8}  bound")
    for r in rows:
        unit = 1e3 if r["metric"].endswith("_seconds") else 1
        fmt = "{:11.1f}" if unit == 1e3 or r["published"] < 1000 else "{:11,.0f}"
        bound = r["prefill_bound"] if r["table"] == "latency" else r["decode_bound"]
        print(f"{r['table']:10} {r['engine']:18} {r['gpu']:8} {r['model']:13} {r['tp']:>2} {r['batch']:>5} {r['input']:>5} {r['output']:>5} "
              f"{fmt.format(r['published'] * unit)} {fmt.format(r['predicted'] * unit)} {r['error']:+8.1%}  {bound}{'' if r['fits'] else ' (KV does not fit)'}")
    print("\nthroughput: out tok/s per GPU; latency: first token in ms; decode: tok/s of one sequence; e2e: a batch's latency in ms."
          " error = predicted / published - 1")
    print(f"\n{'group':40} {'n':>3} {'median':>8} {'median |e|':>11} {'in 50%':>7} {'min':>8} {'max':>8}")
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(f"{r['set']}: {r['engine']} {r['table']} {r['gpu']}", []).append(r)
        groups.setdefault(f"{r['set']}: {r['engine']} (all)", []).append(r)
        groups.setdefault(f"{r['set']} sets (all)", []).append(r)
    for name in sorted(groups):
        s = summary(groups[name])
        print(f"{name:40} {s['n']:>3} {s['median']:+8.1%} {s['median_abs']:11.1%} {s['within_50']:7.0%} {s['min']:+8.1%} {s['max']:+8.1%}")
    c0, c1, errors = fit_vllm_overhead()
    print(f"\nvLLM 0.4 per-step host time its DBRX rows leave: {c0 * 1e3:.3f} ms + {c1 * 1e3:.4f} ms per running sequence "
          f"(rows then within {min(errors):+.1%}..{max(errors):+.1%}); presets/engines.toml [vllm-0.4] carries it")
    below = [r for r in rows if not r["floor_ok"]]
    print(f"\nbatch-1 decode rows faster than the weights-read floor: {len(below)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
