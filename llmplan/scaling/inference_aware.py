"""Inference-aware planning (Sardana, Portes, Doubov, Frankle 2024, "Beyond Chinchilla-Optimal:
Accounting for Inference in Language Model Scaling Laws", arXiv:2401.00448, ICML 2024).

A model that will serve D_inf tokens should minimise training plus inference compute at the loss
it must reach, not training compute alone (paper §2, Eq. 2):

    N*, D_tr* = argmin over {N, D_tr : L(N, D_tr) = l} of 6 N D_tr + 2 N D_inf

with the Chinchilla form L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022 Approach 3). Along the
iso-loss curve D_tr(N) = (B / (l - E - A/N^alpha))^(1/beta), and the stationarity condition

    g(N) = 6 D_tr (1 - (alpha/beta) x) + 2 D_inf = 0,   x = (A/N^alpha) / (B/D_tr^beta)

has exactly one root below the Chinchilla-optimal size (where x = beta/alpha and g = 2 D_inf >= 0;
g -> -infinity as N falls to the size that reaches l only with infinite data, and g increases in
between). The paper finds it by Newton's method; here a bracketed Brent root find in log N
(scipy.optimize.brentq) does the same job without needing a starting guess.

numpy and scipy are imported inside the solver only.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from llmplan.errors import InputError


def iso_loss_tokens(N: float, l: float, E: float, A: float, B: float, alpha: float, beta: float) -> float:
    """D_tr with L(N, D_tr) = l: (B / (l - E - A/N^alpha))^(1/beta) (Hoffmann Eq. 2 solved for D)."""
    room = l - E - A / N**alpha
    return (B / room) ** (1.0 / beta) if room > 0 else math.inf


def min_params_for_loss(l: float, E: float, A: float, alpha: float) -> float:
    """The size that reaches loss l only with infinite data: (A / (l - E))^(1/alpha)."""
    return (A / (l - E)) ** (1.0 / alpha)


def total_flops(N: float, D_tr: float, D_inf: float) -> float:
    """Training plus inference FLOPs: 6 N D_tr + 2 N D_inf (Sardana et al. 2024 Eq. 2)."""
    return 6.0 * N * D_tr + 2.0 * N * D_inf


def chinchilla_point_for_loss(l: float, E: float, A: float, B: float, alpha: float, beta: float) -> tuple[float, float]:
    """The inference-blind (Chinchilla) optimum reaching loss l: on it alpha A/N^alpha = beta B/D^beta
    (Hoffmann Eq. 4), so A/N^alpha = (l - E) beta/(alpha+beta)."""
    model_term = (l - E) * beta / (alpha + beta)
    N = (A / model_term) ** (1.0 / alpha)
    return N, iso_loss_tokens(N, l, E, A, B, alpha, beta)


def inference_optimal(l: float, D_inf: float, E: float, A: float, B: float, alpha: float, beta: float) -> tuple[float, float]:
    """(N*, D_tr*) minimising 6 N D_tr + 2 N D_inf subject to L(N, D_tr) = l (Sardana et al. 2024 Eq. 2)."""
    if not l > E:
        raise InputError(f"target loss {l:g} is at or below the irreducible loss E = {E:g}; ask for more than {E:g}")
    if not (D_inf >= 0 and math.isfinite(D_inf)):
        raise InputError(f"inference tokens must be a non-negative, finite count, not {D_inf!r}")
    N_chin, D_chin = chinchilla_point_for_loss(l, E, A, B, alpha, beta)
    if D_inf == 0:
        return N_chin, D_chin
    from scipy.optimize import brentq

    ratio = alpha / beta

    def g(logN: float) -> float:
        # (1/(2 N)) d/dN-scaled stationarity condition, divided by D_inf to keep it O(1).
        N = math.exp(logN)
        model_term = A / N**alpha
        data_term = l - E - model_term
        if data_term <= 0:
            return -math.inf
        D = (B / data_term) ** (1.0 / beta)
        return (3.0 * D * (1.0 - ratio * model_term / data_term) + D_inf) / D_inf

    hi = math.log(N_chin)
    lo_limit = math.log(min_params_for_loss(l, E, A, alpha))
    # Walk down from the Chinchilla size towards the infinite-data limit until g changes sign.
    lo = hi
    step = 0.5
    while True:
        lo = max(lo - step, lo_limit + 1e-12)
        value = g(lo)
        if value < 0 or lo <= lo_limit + 1e-12:
            break
        step *= 2
    if not g(lo) < 0:  # g -> -inf at the limit, so only floating-point resolution can stop the walk
        raise InputError(
            f"no inference-optimal size for loss {l:g} and {D_inf:.3g} inference tokens within floating-point resolution; give values nearer real training runs"
        )
    if not g(hi) > 0:
        # At the Chinchilla size the stationarity term is zero in exact arithmetic; when D_inf is below its
        # rounding (about 3·D·1e-16) the inference demand cannot move the optimum: it is Chinchilla's.
        return N_chin, D_chin
    logN = brentq(g, lo, hi, xtol=1e-13, rtol=1e-14, maxiter=500)
    N = math.exp(logN)
    return N, iso_loss_tokens(N, l, E, A, B, alpha, beta)


def inference_row(law: Any, l: float, D_inf: float) -> dict[str, Any]:
    """One row for `llmplan optimal --target-loss L --inference-tokens T` under a Chinchilla-form Law:
    the inference-optimal model and the saving against the inference-blind optimum at the same loss."""
    from llmplan.scaling.laws import PF_DAY

    if getattr(law, "form", None) != "chinchilla":
        raise InputError(f"--inference-tokens needs a law of the Chinchilla form (E + A/N^alpha + B/D^beta), not {law.id!r}; use chinchilla or epoch-2024")
    c = law.constants
    E, A, B, alpha, beta = c["E"], c["A"], c["B"], c["alpha"], c["beta"]
    N, D = inference_optimal(l, D_inf, E, A, B, alpha, beta)
    N0, D0 = chinchilla_point_for_loss(l, E, A, B, alpha, beta)
    total = total_flops(N, D, D_inf)
    total0 = total_flops(N0, D0, D_inf)
    return {
        "law": law.id,
        "loss": l,
        "params": N,
        "tokens": D,
        "tokens_per_param": D / N,
        "flops": 6.0 * N * D,  # training compute, as in every other planning row; the total is total_flops
        "inference_tokens": D_inf,
        "train_flops": 6.0 * N * D,
        "inference_flops": 2.0 * N * D_inf,
        "total_flops": total,
        "pf_days": 6.0 * N * D / PF_DAY,
        "chinchilla_params": N0,
        "chinchilla_tokens": D0,
        "chinchilla_total_flops": total0,
        "saving_flops": total0 - total,
        "saving_fraction": (total0 - total) / total0,
        "params_convention": law.convention,
    }


def solve_inference(
    law: Any,
    inference_tokens: float,
    budgets: Sequence[float] = (),
    params: float | None = None,
    tokens: float | None = None,
    target_loss: float | None = None,
) -> list[dict[str, Any]]:
    """`llmplan optimal --target-loss L --inference-tokens T`: one row (see inference_row)."""
    if target_loss is None or budgets or params is not None or tokens is not None:
        raise InputError("--inference-tokens answers a --target-loss question only: llmplan optimal --target-loss 2.0 --inference-tokens 2T")
    return [inference_row(law, target_loss, inference_tokens)]


# ---------------------------------------------------------------------------- weighed by cost

def cost_optimal(
    l: float, D_inf: float, E: float, A: float, B: float, alpha: float, beta: float,
    serve_seconds_per_token: Callable[[float], float], train_seconds_per_flop: float, iterations: int = 30,
) -> tuple[float, float, float]:
    """(N*, D_tr*, w): Sardana et al.'s problem with inference priced by what serving costs, not by FLOPs.

    Minimise  f · 6 N D_tr + D_inf · s(N)  on the iso-loss curve L(N, D_tr) = l, where f is GPU-seconds
    per training FLOP and s(N) GPU-seconds per served token at size N (llmplan.systems.serving: memory-bound
    decoding makes s(N) far above 2N FLOPs at the achievable rate). Writing s(N) = w(N) · 2N · f, the
    objective is f · (6 N D_tr + 2 N · w D_inf): Eq. 2 with D_inf weighted by w. w changes slowly with N
    (bytes per token per parameter, KV per parameter, the tensor-parallel degree), so it is first taken
    as locally constant and iterated to a fixed point (of the iterates the one of least true cost is
    kept: serving shapes are discrete, so w can step between neighbours); then the true cost is
    minimised along the iso-loss curve within a factor 2 of that point (bounded Brent search in log N),
    which accounts for w's own change with N. The cheaper of the two is returned.
    """
    def cost(N: float, D: float) -> float:
        return train_seconds_per_flop * 6.0 * N * D + D_inf * serve_seconds_per_token(N)

    N, D = inference_optimal(l, D_inf, E, A, B, alpha, beta)
    best = (cost(N, D), N, D, 1.0)
    for _ in range(iterations):
        w = serve_seconds_per_token(N) / (2.0 * N * train_seconds_per_flop)
        N_next, D_next = inference_optimal(l, D_inf * w, E, A, B, alpha, beta)
        c = cost(N_next, D_next)
        if c < best[0]:
            best = (c, N_next, D_next, w)
        if abs(N_next / N - 1) < 1e-9:
            break
        N, D = N_next, D_next
    _, N, D, w = best
    from scipy.optimize import minimize_scalar

    floor = math.log(min_params_for_loss(l, E, A, alpha)) + 1e-9
    lo, hi = max(math.log(N / 2), floor), math.log(N * 2)
    found = minimize_scalar(lambda x: cost(math.exp(x), iso_loss_tokens(math.exp(x), l, E, A, B, alpha, beta)),
                            bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
    N_b = math.exp(found.x)
    D_b = iso_loss_tokens(N_b, l, E, A, B, alpha, beta)
    if cost(N_b, D_b) < best[0]:
        N, D, w = N_b, D_b, serve_seconds_per_token(N_b) / (2.0 * N_b * train_seconds_per_flop)
    return N, D, w


def cost_row(
    law: Any, l: float, D_inf: float, serve_seconds_per_token: Callable[[float], float], train_seconds_per_flop: float,
    train_price: float | None = None, serve_price: float | None = None,
) -> dict[str, Any]:
    """One row for `optimal --target-loss L --inference-tokens T --serve-gpu G`: the cost-optimal model, its
    GPU-hours for training and serving, and where the FLOP-only (Sardana) and Chinchilla optima land.

    Without prices a GPU-hour of training and one of serving weigh the same; with them (USD per GPU-hour;
    one given is used for both) the optimum minimises dollars and the row adds the costs in USD."""
    if train_price is None and serve_price is not None:
        train_price = serve_price
    if serve_price is None and train_price is not None:
        serve_price = train_price
    p_train, p_serve = train_price or 1.0, serve_price or 1.0
    base = inference_row(law, l, D_inf)
    c = law.constants
    E, A, B, alpha, beta = c["E"], c["A"], c["B"], c["alpha"], c["beta"]
    N, D, w = cost_optimal(l, D_inf, E, A, B, alpha, beta, lambda n: p_serve * serve_seconds_per_token(n), p_train * train_seconds_per_flop)

    def hours(n: float, d: float) -> tuple[float, float]:
        return train_seconds_per_flop * 6.0 * n * d / 3600.0, D_inf * serve_seconds_per_token(n) / 3600.0

    def weighed(n: float, d: float) -> float:
        t, s = hours(n, d)
        return p_train * t + p_serve * s

    train_h, serve_h = hours(N, D)
    here, flops_opt = weighed(N, D), weighed(base["params"], base["tokens"])
    row = {
        **{k: base[k] for k in ("law", "loss", "inference_tokens", "chinchilla_params", "chinchilla_tokens", "params_convention")},
        "params": N,
        "tokens": D,
        "tokens_per_param": D / N,
        "flops": 6.0 * N * D,
        "train_flops": 6.0 * N * D,
        "inference_flops": 2.0 * N * D_inf,
        "total_flops": total_flops(N, D, D_inf),
        "inference_cost_ratio": w,
        "train_gpu_hours": train_h,
        "inference_gpu_hours": serve_h,
        "total_gpu_hours": train_h + serve_h,
        "sardana_params": base["params"],
        "sardana_tokens": base["tokens"],
        "sardana_total_gpu_hours": sum(hours(base["params"], base["tokens"])),
        "chinchilla_total_gpu_hours": sum(hours(base["chinchilla_params"], base["chinchilla_tokens"])),
        "params_ratio": N / base["params"],
        "saving_fraction": (flops_opt - here) / flops_opt,
    }
    if train_price is not None:
        row.update({
            "train_price_usd_per_gpu_hour": p_train, "serve_price_usd_per_gpu_hour": p_serve,
            "train_cost_usd": p_train * train_h, "inference_cost_usd": p_serve * serve_h, "cost_usd": here,
            "sardana_cost_usd": flops_opt, "saving_usd": flops_opt - here,
        })
    else:
        row["saving_gpu_hours"] = flops_opt - here
    return row
