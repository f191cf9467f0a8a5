"""Write docs/examples/runs.csv: 51 synthetic training runs drawn from a known scaling law, so every
`llmplan fit` option can be tried without the Epoch data (run once; the CSV is committed).

    python docs/examples/make_runs.py

The law: Hoffmann et al. 2022's Chinchilla fit as llmplan ships it (presets/laws.toml, `chinchilla`,
the unrounded constants of Epoch AI's replication code):

    L(N, D) = 1.69337368 + 406.401018 / N^0.33917084 + 410.722827 / D^0.2849083

The runs: an IsoFLOP design, as in Hoffmann et al. §3.2. Seven budgets C = 1e18, 3e18, ..., 1e21
FLOPs; at each, seven model sizes N = N_opt(C) x 1/8, 1/4, ..., 8 (N_opt from the law's Eq. 4), so
every parabola has its minimum inside the sampled sizes; D = C / (6N). Each loss is the law's
times exp(eps), eps ~ Normal(0, 0.004) from Python's random.Random(16): 49 runs. Two more runs at
C = 1e17 FLOPs "diverged" (their loss is the law's + 2.0): they are the two highest losses, which
`--drop-highest-loss 2` removes, and a budget with 2 runs, which the IsoFLOP fit skips with a
warning. Columns: run, params, tokens, flops (= 6 * params * tokens), loss.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

E, A, B, ALPHA, BETA = 1.69337368, 406.401018, 410.722827, 0.33917084, 0.2849083
BUDGETS = (1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21)
SIZES = (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8)


def loss(N: float, D: float) -> float:
    """Hoffmann et al. 2022, Eq. 2."""
    return E + A / N**ALPHA + B / D**BETA


def n_opt(C: float) -> float:
    """Hoffmann et al. 2022, Eq. 4: N_opt = G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta))."""
    G = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    return G * (C / 6) ** (BETA / (ALPHA + BETA))


def runs() -> list[tuple[int, int, float, float]]:
    rng = random.Random(16)
    out = []
    for C in BUDGETS:
        for f in SIZES:
            N = round(n_opt(C) * f)
            D = round(C / (6 * N))
            out.append((N, D, 6.0 * N * D, loss(N, D) * math.exp(rng.gauss(0.0, 0.004))))
    for N in (3_000_000, 12_000_000):  # two diverged runs at C = 1e17
        D = round(1e17 / (6 * N))
        out.append((N, D, 6.0 * N * D, loss(N, D) + 2.0))
    return out


if __name__ == "__main__":
    lines = ["run,params,tokens,flops,loss"]
    lines += [f"{i},{N},{D},{C:.6g},{L:.5f}" for i, (N, D, C, L) in enumerate(runs(), start=1)]
    (Path(__file__).resolve().parent / "runs.csv").write_text("\n".join(lines) + "\n")
