"""Write the synthetic runs that tests/test_fit.py fits (run once; the CSVs are committed).

Truth: L = E + A/N^alpha + B/D^beta with the Epoch replication's published values (Besiroglu et al.
2024): E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658. Ten model sizes from 7e7 to 7e9
(log-spaced) times five token ratios D/N in {5, 10, 20, 40, 80}: 50 runs. The noisy copy multiplies
each loss by exp(eps), eps ~ Normal(0, 0.005), numpy default_rng(2024).
"""

import numpy as np

E, A, B, alpha, beta = 1.8172, 482.01, 2085.43, 0.3478, 0.3658


def runs():
    N = np.geomspace(7e7, 7e9, 10)
    ratios = np.array([5.0, 10.0, 20.0, 40.0, 80.0])
    NN, RR = np.meshgrid(N, ratios, indexing="ij")
    N, D = NN.ravel(), (NN * RR).ravel()
    return N, D, E + A / N**alpha + B / D**beta


if __name__ == "__main__":
    from pathlib import Path

    here = Path(__file__).resolve().parent
    N, D, L = runs()
    noisy = L * np.exp(np.random.default_rng(2024).normal(0.0, 0.005, L.size))
    for name, loss in (("fit_runs_exact.csv", L), ("fit_runs_noisy.csv", noisy)):
        lines = ["params,tokens,loss"] + [f"{n!r},{d!r},{l!r}" for n, d, l in zip(N.tolist(), D.tolist(), loss.tolist())]
        (here / name).write_text("\n".join(lines) + "\n")
