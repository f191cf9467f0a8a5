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

    from llmplan import arch
    from throughput_cases import LLAMA3, predict_llama3

    print()
    print("Out of sample: Llama 3 405B on H100 (Dubey et al. 2024 Table 4), best layout found by llmplan layout")
    print(f"{'GPUs':>6} {'seq':>7} {'batch':>6} {'published TFLOP/s':>18} {'MFU':>6} {'predicted MFU':>14} {'causal-count MFU':>17}  layout")
    for gpus, seq, batch, tflops, mfu in LLAMA3:
        best, shape = predict_llama3(gpus, seq, batch)
        per_token = arch.flops_per_token(shape, seq)
        causal = best.step.mfu * per_token["matmul_causal"] / per_token["matmul"]
        from llmplan.layout import describe
        print(f"{gpus:6} {seq:7} {batch:6} {tflops:18} {mfu:6.0%} {best.step.mfu:14.1%} {causal:17.1%}  {describe(best.layout)}")
    print("(predicted MFU counts the full s x s attention, PaLM App. B; the causal count halves it, as flash kernels compute it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
