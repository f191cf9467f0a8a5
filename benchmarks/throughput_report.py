"""Predicted vs published training throughput, every row (run by `make bench`).

Narayanan et al. 2021 (SC21) Table 1 in TFLOP/s per A100 (their Eq. 3, recompute counted) and
Korthikanti et al. 2022 Table 5 in seconds per iteration; the cases are transcribed in
tests/data/published_throughput.csv (see tests/throughput_cases.py for the sources and settings).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


PAIRS = [("18.4B", "22B full"), ("145.6B", "175B full"), ("529.6B", "530B full"), ("1008.0B", "1T full")]


def per_layer_sequence(c, step_seconds=None) -> float:
    """Seconds per layer per sequence outside the bubble: step / (1 + (p-1)/(v·m)) / (m·b) / (l/p)."""
    from throughput_cases import megatron_eq3_flops

    if step_seconds is None:
        step_seconds = c.published if c.metric == "iteration_seconds" else megatron_eq3_flops(c) / (c.published * 1e12 * c.gpus)
    dp = c.gpus // (c.tp * c.pp)
    m = c.global_batch // (dp * c.micro_batch)
    return step_seconds / (1 + (c.pp - 1) / (c.vp * m)) / (m * c.micro_batch) / (c.layers / c.pp)


def main() -> int:
    from throughput_cases import cases, predict

    header = f"{'paper':16} {'case':18} {'layout':22} {'metric':18} {'published':>10} {'predicted':>10} {'error':>8} {'tol':>5}  {'mfu':>6}  largest costs"
    print("Throughput: predicted vs published")
    print(header)
    print("-" * len(header))
    worst = {}
    for c in cases():
        value, st = predict(c)
        err = value / c.published - 1
        worst[c.paper] = max(worst.get(c.paper, 0), abs(err))
        parts = sorted(st.PARTS, key=lambda p: -getattr(st, f"{p}_seconds"))[:3]
        costs = ", ".join(f"{p} {getattr(st, f'{p}_seconds') / st.step_seconds:.0%}" for p in parts)
        layout = f"tp{c.tp} pp{c.pp} vp{c.vp} dp{c.gpus // (c.tp * c.pp)} mb{c.micro_batch}"
        print(f"{c.paper:16} {c.case:18} {layout:22} {c.metric:18} {c.published:10.4g} {value:10.4g} {err:+8.1%} {c.tolerance:5.0%}  {st.mfu:6.1%}  {costs}")
    print(", ".join(f"{paper}: worst |error| {w:.1%}" for paper, w in worst.items()))

    # The same layer shapes (h, tp, seq, pp) in both papers, from the published numbers alone: seconds per
    # layer per sequence outside the pipeline bubble, step / (1 + (p-1)/(v·m)) / (m·b) / (l/p).
    print()
    print("Matched shapes across the papers (published numbers only; model's ratio beside it)")
    print(f"{'Narayanan 2021':16} {'Korthikanti 2022':18} {'ms/layer/seq 2021':>18} {'2022':>8} {'ratio':>7} {'model ratio':>12}")
    by = {c.case: c for c in cases()}
    for n, k in PAIRS:
        pn, pk = per_layer_sequence(by[n]), per_layer_sequence(by[k])
        mn, mk = per_layer_sequence(by[n], predict(by[n])[1].step_seconds), per_layer_sequence(by[k], predict(by[k])[1].step_seconds)
        print(f"{n:16} {k:18} {pn * 1e3:18.2f} {pk * 1e3:8.2f} {pn / pk:7.3f} {mn / mk:12.3f}")
    print("(both rows of a pair within 10% needs the model's ratio within a factor 1.1/0.9 = 1.22 of the published one)")

    from llmplan.model import arch
    from throughput_cases import LLAMA3, predict_llama3

    print()
    print("Out of sample: Llama 3 405B on H100 (Dubey et al. 2024 Table 4), best layout found by llmplan layout")
    print(f"{'GPUs':>6} {'seq':>7} {'batch':>6} {'published TFLOP/s':>18} {'MFU':>6} {'predicted MFU':>14} {'causal-count MFU':>17}  layout")
    for gpus, seq, batch, tflops, mfu in LLAMA3:
        best, shape = predict_llama3(gpus, seq, batch)
        per_token = arch.flops_per_token(shape, seq)
        causal = best.step.mfu * per_token["matmul_causal"] / per_token["matmul"]
        from llmplan.systems.layout import describe
        print(f"{gpus:6} {seq:7} {batch:6} {tflops:18} {mfu:6.0%} {best.step.mfu:14.1%} {causal:17.1%}  {describe(best.layout)}")
    print("(predicted MFU counts the full s x s attention, PaLM App. B; the causal count halves it, as flash kernels compute it)")
    calibration_by_stack()
    return 0


def calibration_by_stack() -> None:
    """Every calibration run (tests/calibration_runs.py: the named sources only), by stack: predicted against
    published, with a constant 40% MFU's error beside llmplan's; then the mean |error| by stack and GPU."""
    from calibration_runs import TOLERANCE, all_runs, summary

    runs = all_runs()
    print()
    print("Calibration runs by stack (error = predicted throughput / published - 1; 40% = a constant 40% MFU's)")
    header = f"{'stack':11} {'source':22} {'case':30} {'gpu':10} {'published s':>11} {'predicted s':>11} {'error':>8} {'40% MFU':>8} {'tol':>5} {'fits':>5}"
    print(header)
    print("-" * len(header))
    for r in sorted(runs, key=lambda r: (r.stack, r.source)):
        fits = "" if r.fits is None else ("yes" if r.fits else "no")
        print(f"{r.stack:11} {r.source:22} {r.case:30} {r.gpu:10} {r.published_seconds:11.4g} {r.predicted_seconds:11.4g} "
              f"{r.error:+8.1%} {r.constant_error:+8.1%} {r.tolerance:5.0%} {fits:>5}")
    print()
    print(f"{'stack':11} {'gpu':10} {'runs':>5} {'llmplan mean |error|':>21} {'40% MFU mean |error|':>21}")
    for (stack, gpu), s in sorted(summary(runs).items()):
        print(f"{stack:11} {gpu:10} {s['runs']:5} {s['model']:21.1%} {s['constant']:21.1%}")
    for source, value in TOLERANCE.items():
        if value:
            print(f"  {source}: tolerance {value[0]:.0%}: {value[1]}")


if __name__ == "__main__":
    raise SystemExit(main())
