"""Data-constrained scaling (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models",
arXiv:2305.16264): repeated epochs count as less effective data, and parameters in excess of what
the unique data supports count as less effective parameters.

    L(N, D, U) = E + A / N'^alpha + B / D'^beta                                   (paper Eq. 5)
    D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),  R_D = D / U_D - 1                (paper Eq. 3)
    N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),  U_N = min(N, N_opt(U_D)),
                                                 R_N = N / U_N - 1                (paper Eq. 4)

with N_opt(U) = G (U G)^(beta/alpha), the Chinchilla-optimal size for U tokens. The constants
are the paper's C4 fit as published in its repository (huggingface/datablations, README
"Parametric Fit", commit 0c765022).

One deliberate difference from the README's code: U_D = min(U, D), the unique tokens a run
actually sees. The README assumes D >= U; without the min a run shorter than one pass over its
data would be credited with all U unique tokens. For D >= U both agree exactly.

The maintainer says (datablations issue #9) absolute predicted losses are not expected to match
observed losses: use the law for trends and comparisons.

Functions take Python floats; numpy and scipy are imported inside the solvers only.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from llmplan.errors import InputError
from llmplan.records import record

SOURCE = (
    "Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models' (arXiv:2305.16264) Eq. 3-5; "
    "C4 fit from huggingface/datablations README 'Parametric Fit' @ 0c765022"
)
CAVEAT = "absolute losses of the data-constrained law are not expected to match observed losses (datablations issue #9); use them for trends and comparisons"


@record
class DataConstrainedLaw:
    """The constants of L(N, D, U). Defaults: Muennighoff et al. 2023, datablations README @ 0c765022."""

    a: float = 6.255414  # log A
    b: float = 7.3049974  # log B
    e: float = 0.6254804  # log E
    alpha: float = 0.3526596
    beta: float = 0.3526596
    rd_star: float = 15.387756  # R_D*: repetitions after which repeated data is worth 1/e as much
    rn_star: float = 5.309743  # R_N*: the same for excess parameters
    id: str = "muennighoff-2023"
    source: str = SOURCE
    name: str = "Data-constrained scaling (Muennighoff et al. 2023, C4 fit)"
    convention: str = "total"  # the paper counts all parameters
    predicts_loss = True  # class constant, for code that treats this like a laws.Law

    @property
    def A(self) -> float:
        return math.exp(self.a)

    @property
    def B(self) -> float:
        return math.exp(self.b)

    @property
    def E(self) -> float:
        return math.exp(self.e)

    @property
    def G(self) -> float:
        return G(self.A, self.B, self.alpha, self.beta)

    def loss(self, N: float, D: float, U: float = math.inf) -> float:
        return data_constrained_loss(N, D, U, self)

    def loss_unlimited(self, N: float, D: float) -> float:
        """The same law with every token unique (U = infinity)."""
        return data_constrained_loss(N, D, math.inf, self)


MUENNIGHOFF_2023 = DataConstrainedLaw()


def law_from_constants(constants: Mapping[str, Any], id: str = "muennighoff-2023", source: str = SOURCE) -> DataConstrainedLaw:
    """A DataConstrainedLaw from E, A, B, alpha, beta, rd_star, rn_star (e.g. a laws.toml entry)."""
    try:
        return DataConstrainedLaw(
            a=math.log(float(constants["A"])),
            b=math.log(float(constants["B"])),
            e=math.log(float(constants["E"])),
            alpha=float(constants["alpha"]),
            beta=float(constants["beta"]),
            rd_star=float(constants["rd_star"]),
            rn_star=float(constants["rn_star"]),
            id=id,
            source=source,
        )
    except KeyError as missing:
        raise InputError(f"law {id!r} lacks {missing.args[0]!r}; a data-constrained law needs E, A, B, alpha, beta, rd_star and rn_star") from None


# ------------------------------------------------------------------ the formulas, one each


from llmplan.scaling.chinchilla import chinchilla_G as G  # G = (alpha A / (beta B))^(1/(alpha+beta)), Hoffmann Eq. 4


def D_to_N(D: float, law: DataConstrainedLaw = MUENNIGHOFF_2023) -> float:
    """N_opt(D) = G (D G)^(beta/alpha): the compute-optimal size for D tokens (datablations README D_to_N)."""
    g = law.G
    return (D * g) ** (law.beta / law.alpha) * g


def repetitions(D: float, U_D: float) -> float:
    """R_D = D / U_D - 1: epochs beyond the first, never negative (Muennighoff et al. 2023 §3.1)."""
    return max(D / U_D - 1.0, 0.0)


def effective(U: float, R: float, R_star: float) -> float:
    """U + U R* (1 - exp(-R / R*)): effective data D' (Eq. 3) or effective params N' (Eq. 4)."""
    return U + U * R_star * (1.0 - math.exp(-R / R_star))


def effective_data(D: float, U: float, law: DataConstrainedLaw = MUENNIGHOFF_2023) -> float:
    """D' of D tokens drawn from U unique ones (Muennighoff et al. 2023 Eq. 3), U_D = min(U, D)."""
    U_D = min(U, D)
    return effective(U_D, repetitions(D, U_D), law.rd_star)


def effective_params(N: float, D: float, U: float, law: DataConstrainedLaw = MUENNIGHOFF_2023) -> float:
    """N' of N parameters when U_N = min(N, N_opt(U_D)) are 'unique' (Muennighoff et al. 2023 Eq. 4)."""
    U_N = min(N, D_to_N(min(U, D), law))
    R_N = max(N / U_N - 1.0, 0.0)
    return effective(U_N, R_N, law.rn_star)


def data_constrained_loss(N: float, D: float, U: float, law: DataConstrainedLaw = MUENNIGHOFF_2023) -> float:
    """L = E + A / N'^alpha + B / D'^beta (Muennighoff et al. 2023 Eq. 5; README scaling_law(N, D, U))."""
    Np = effective_params(N, D, U, law)
    Dp = effective_data(D, U, law)
    return law.E + law.A / Np**law.alpha + law.B / Dp**law.beta


# ------------------------------------------------------------------ planning


def optimal_unlimited(C: float, law: DataConstrainedLaw = MUENNIGHOFF_2023) -> tuple[float, float]:
    """(N, D) minimising the law with every token unique at C = 6 N D: the Chinchilla closed form
    N = G (C/6)^(beta/(alpha+beta)) (Hoffmann Eq. 4). With U infinite the excess-parameter penalty
    only acts beyond N_opt(D), i.e. past this very optimum, so it does not move it."""
    a = law.beta / (law.alpha + law.beta)
    N = law.G * (C / 6.0) ** a
    return N, C / (6.0 * N)


def optimal_constrained(C: float, U: float, law: DataConstrainedLaw = MUENNIGHOFF_2023, grid: int = 400) -> tuple[float, float, float]:
    """(N, D, L) minimising L(N, C/(6N), U) over N: the best split of C FLOPs when only U tokens are unique.

    The loss along the budget is piecewise smooth in log N (kinks where D = U and N = N_opt(U_D)),
    so a log grid over eight decades around the unlimited-data optimum brackets the minimum and a
    bounded Brent search (scipy.optimize.minimize_scalar) polishes it to ~1e-10 in log N.
    """
    if not (C > 0 and math.isfinite(C)):
        raise InputError(f"compute budget must be a positive, finite number of FLOPs, not {C!r}")
    if not U > 0:
        raise InputError(f"unique tokens must be positive, not {U!r}")
    from scipy.optimize import minimize_scalar

    N0, _ = optimal_unlimited(C, law)
    lo, hi = math.log(N0) - 4 * math.log(10), math.log(N0) + 4 * math.log(10)

    def f(x: float) -> float:
        N = math.exp(x)
        return data_constrained_loss(N, C / (6.0 * N), U, law)

    xs = [lo + (hi - lo) * i / (grid - 1) for i in range(grid)]
    values = [f(x) for x in xs]
    i = min(range(grid), key=values.__getitem__)
    if i in (0, grid - 1):  # the optimum would sit at the edge of eight decades: not a sensible plan
        raise InputError(
            f"no best split of {C:.3g} FLOPs with {U:.3g} unique tokens: the loss is flat (the law saturates when data is repeated"
            " very many times) or out of floating-point range; use a smaller budget or more unique tokens"
        )
    result = minimize_scalar(f, bounds=(xs[i - 1], xs[i + 1]), method="bounded", options={"xatol": 1e-10})
    x = float(result.x) if result.fun <= values[i] else xs[i]
    N = math.exp(x)
    return N, C / (6.0 * N), f(x)


def constrained_loss_row(N: float, D: float, U: float, law: DataConstrainedLaw = MUENNIGHOFF_2023) -> dict[str, Any]:
    """One row for `llmplan loss --unique-tokens`: the prediction and how much repetition cost."""
    L = data_constrained_loss(N, D, U, law)
    return {
        "law": law.id,
        "params": N,
        "tokens": D,
        "unique_tokens": U,
        "epochs": D / U,
        "flops": 6.0 * N * D,
        "effective_params": effective_params(N, D, U, law),
        "effective_tokens": effective_data(D, U, law),
        "loss": L,
        "loss_unlimited_data": law.loss_unlimited(N, D),
        "params_convention": "total",
    }


def constrained_optimal_row(C: float, U: float, law: DataConstrainedLaw = MUENNIGHOFF_2023) -> dict[str, Any]:
    """One row for `llmplan optimal --unique-tokens`: the best split of C with U unique tokens, and the
    optimum (and its loss) that the same budget would reach with unlimited unique data."""
    from llmplan.rows import allocation

    N, D, L = optimal_constrained(C, U, law)
    N_u, D_u = optimal_unlimited(C, law)
    return {
        **allocation(law.id, C, N, D),
        "unique_tokens": U,
        "epochs": D / U,
        "loss": L,
        "params_unlimited_data": N_u,
        "tokens_unlimited_data": D_u,
        "loss_unlimited_data": law.loss_unlimited(N_u, D_u),
        "params_convention": "total",
    }


# ------------------------------------------------------------------ what the CLI calls

ALIASES = ("muennighoff-2023", "muennighoff", "datablations", "data-constrained")


def resolve_law(text: str | None) -> DataConstrainedLaw:
    """The law behind --unique-tokens: muennighoff-2023 (the only data-constrained law shipped).
    Its constants live here rather than in presets/laws.toml: the presets' forms have no R_D*, R_N*."""
    if text is None or text.strip().lower() in ALIASES:
        return MUENNIGHOFF_2023
    raise InputError(f"--unique-tokens uses the data-constrained law muennighoff-2023, not {text!r}; drop --law or write --law muennighoff-2023")


def solve_constrained(
    law: DataConstrainedLaw,
    budgets: Sequence[float],
    unique_tokens: float,
    params: float | None = None,
    tokens: float | None = None,
    target_loss: float | None = None,
) -> list[dict[str, Any]]:
    """`llmplan optimal --budget C --unique-tokens U`: one row per budget (see constrained_optimal_row)."""
    if params is not None or tokens is not None or target_loss is not None:
        raise InputError(
            "with --unique-tokens give --budget only; for a fixed model and run ask 'llmplan loss --params N --tokens D --unique-tokens U'"
        )
    if not budgets:
        raise InputError("--unique-tokens needs a budget: llmplan optimal --budget 1e22 --unique-tokens 25B")
    return [constrained_optimal_row(C, unique_tokens, law) for C in budgets]
