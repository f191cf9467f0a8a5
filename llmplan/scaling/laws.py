"""Scaling-law forms: predicted loss L(N, D) and the compute-optimal split of a budget C.

Every law here allocates a budget as a power law N_opt = k * C**a with D_opt = C / (6 N_opt)
(the 6ND convention of Kaplan et al. 2020 and Hoffmann et al. 2022), so one closed form serves
every question (a budget, a fixed N or D, inverse solves). Forms and their constants:

- "chinchilla": L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Eq. 2 / App. D.2), closed-form
  optimum N_opt = G (C/6)^a (Eq. 4).
- "kaplan": L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020, Eq. 1.5),
  allocation N = n_coef_pfd * C_pfd^n_exp (Kaplan Fig. 14, C in PF-days).
- "power": an allocation with no loss: N = n_coef C^n_exp, or D = d_coef C^d_exp (N = C/(6D)),
  or M = m_coef C^m_exp with M non-embedding FLOPs per token (N = M/6, D = C/M; DeepSeek 2024).
- "tokens-per-param": D = ratio * N, no loss.

Functions work on Python floats or numpy arrays alike (only arithmetic, no imports), so a sweep
over many budgets is one vectorised call; this module imports neither numpy nor scipy.
"""

from __future__ import annotations

import math
from dataclasses import field, replace
from pathlib import Path
from typing import Any, Mapping

from llmplan.errors import InputError
from llmplan.records import record
from llmplan.units import PF_DAY


from llmplan.lawforms import CONVENTIONS, FORMS, POWER_PAIRS, validate_law  # noqa: F401 (the forms, as data)

# Forms whose compute-optimal split is Hoffmann's closed form (Eq. 4). The data-constrained law
# (Muennighoff et al. 2023) with every token unique has the same optimum: its excess-parameter
# penalty acts only beyond N_opt(D), past that optimum (llmplan.scaling.data_constrained.optimal_unlimited).
CLOSED_FORM = ("chinchilla", "data-constrained")


# ------------------------------------------------------------------ Chinchilla form (public API)


from llmplan.scaling.chinchilla import chinchilla_G, chinchilla_exponents, chinchilla_loss, chinchilla_min_compute, chinchilla_optimal  # noqa: F401,E402

# Tokens per parameter a --ratio may set: from far under-trained to far beyond any published run
# (Llama 3 8B: 15T tokens / 8B parameters ~ 1,900).
MIN_RATIO, MAX_RATIO = 0.01, 1e6


# ------------------------------------------------------------------ Kaplan et al. 2020


def kaplan_loss(N, D, N_c, D_c, alpha_N, alpha_D):
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D, N non-embedding (Kaplan 2020, Eq. 1.5)."""
    return ((N_c / N) ** (alpha_N / alpha_D) + D_c / D) ** alpha_D


def kaplan_isoflop_min_params(C, N_c, D_c, alpha_N, alpha_D):
    """The N that minimises Kaplan's Eq. 1.5 on the iso-FLOP line D = C / 6N (C in FLOPs). With
    r = alpha_N / alpha_D the bracket (N_c/N)^r + 6 D_c N / C is least where its derivative
    -r N_c^r N^-(r+1) + 6 D_c / C vanishes: N* = (r N_c^r C / (6 D_c))^(1/(r+1)). Derived here from
    Kaplan 2020 Eq. 1.5 and C = 6ND (the paper fits its allocation separately, Fig. 14)."""
    r = alpha_N / alpha_D
    return (r * N_c ** r * C / (6.0 * D_c)) ** (1.0 / (r + 1.0))


def kaplan_terms(N, D, N_c, D_c, alpha_N, alpha_D):
    """The two addends inside Kaplan's Eq. 1.5 bracket: (size term, data term)."""
    return (N_c / N) ** (alpha_N / alpha_D), D_c / D


@record
class Law:
    """One scaling law: its constants, and N_opt = k C^a (every shipped form reduces to this)."""

    id: str
    name: str
    form: str
    constants: Mapping[str, float]
    source: str = ""
    convention: str = "total"
    notes: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    # --- the allocation N_opt = k C^a, D_opt = C/(6 N_opt)
    @property
    def k_a(self) -> tuple[float, float]:
        c = self.constants
        if self.form in CLOSED_FORM:
            a, _ = chinchilla_exponents(c["alpha"], c["beta"])
            return chinchilla_G(c["A"], c["B"], c["alpha"], c["beta"]) * 6.0 ** (-a), a
        if self.form == "kaplan":  # N = n_coef_pfd (C / PF_DAY)^n_exp (Kaplan Fig. 14)
            return c["n_coef_pfd"] * PF_DAY ** (-c["n_exp"]), c["n_exp"]
        if self.form == "tokens-per-param":  # 6 N (r N) = C  ->  N = (C / 6r)^(1/2)
            return (6.0 * c["ratio"]) ** -0.5, 0.5
        if "n_coef" in c:
            return c["n_coef"], c["n_exp"]
        if "d_coef" in c:  # N = C / (6 d C^e) = C^(1-e) / (6 d)
            return 1.0 / (6.0 * c["d_coef"]), 1.0 - c["d_exp"]
        return c["m_coef"] / 6.0, c["m_exp"]  # N = M / 6 (DeepSeek 6N1 = 72 n_layer d^2, §3.1)

    @property
    def predicts_loss(self) -> bool:
        return self.form in ("chinchilla", "kaplan", "data-constrained")

    @property
    def minimises_loss(self) -> bool | None:
        """Whether `optimal` is the minimiser of this law's own loss at fixed compute: true for the
        Chinchilla form (Eq. 4 is the closed-form minimiser of Eq. 2), false for Kaplan's (its Fig. 14
        allocation N = 1.3e9 C^0.73 is a separate fit; at the same compute other splits reach a lower
        L(N, D) of its Eq. 1.5), None for laws that predict no loss."""
        if self.form in CLOSED_FORM:
            return True
        return False if self.predicts_loss else None

    @property
    def irreducible(self) -> float:
        """The loss no budget beats: E (Chinchilla form), 0 for Kaplan's form."""
        return self.constants["E"] if self.form in CLOSED_FORM else 0.0

    def optimal(self, C):
        """(N_opt, D_opt) for C FLOPs; floats or numpy arrays. 6 N D = C holds exactly."""
        if self.form in CLOSED_FORM:
            c = self.constants
            N, _ = chinchilla_optimal(C, c["A"], c["B"], c["alpha"], c["beta"])
        else:
            k, a = self.k_a
            N = k * C**a
        return N, C / (6.0 * N)

    def fitted_bounds(self) -> dict[str, tuple[float, float]]:
        """The ranges of params, tokens and FLOPs the law was fitted on, where its entry records them
        (`fitted_min_params`, `fitted_max_params`, ... : shipped laws cite them; `fit --save` writes them)."""
        bounds = {}
        for quantity in ("params", "tokens", "flops"):
            low, high = self.extra.get(f"fitted_min_{quantity}"), self.extra.get(f"fitted_max_{quantity}")
            if isinstance(low, (int, float)) and isinstance(high, (int, float)):
                bounds[quantity] = (float(low), float(high))
        return bounds

    def fitted_range_text(self) -> str:
        """'70.0M-16.0B params, 5.0B-500B tokens' for messages."""
        from llmplan.units import format_count, format_flops

        parts = []
        for quantity, (low, high) in self.fitted_bounds().items():
            if quantity == "flops":
                parts.append(f"{format_flops(low)[:-6]}-{format_flops(high)[:-6]} FLOPs")
            else:
                parts.append(f"{format_count(low)}-{format_count(high)} {quantity}")
        return ", ".join(parts)

    def compute_for_params(self, N):
        """The budget whose optimal model has N parameters (inverse of N = k C^a)."""
        k, a = self.k_a
        return (N / k) ** (1.0 / a)

    def compute_for_tokens(self, D):
        """The budget whose optimal run sees D tokens: D = C^(1-a)/(6k)  ->  C = (6 k D)^(1/(1-a))."""
        k, a = self.k_a
        return (6.0 * k * D) ** (1.0 / (1.0 - a))

    def loss(self, N, D):
        """Predicted loss, or None when this law predicts none (allocation-only laws)."""
        c = self.constants
        if self.form == "chinchilla":
            return chinchilla_loss(N, D, c["E"], c["A"], c["B"], c["alpha"], c["beta"])
        if self.form == "kaplan":
            return kaplan_loss(N, D, c["N_c"], c["D_c"], c["alpha_N"], c["alpha_D"])
        if self.form == "data-constrained":  # Muennighoff Eq. 5 with every token unique
            from llmplan.scaling.data_constrained import data_constrained_loss

            law = self.data_constrained()
            if hasattr(N, "__len__"):  # numpy arrays (long sweeps)
                import numpy as np

                N, D = np.broadcast_arrays(np.asarray(N, float), np.asarray(D, float))
                flat = [data_constrained_loss(n, d, math.inf, law) for n, d in zip(N.ravel().tolist(), D.ravel().tolist())]
                return np.array(flat).reshape(N.shape)
            return data_constrained_loss(N, D, math.inf, law)
        return None

    def isoflop_minimum(self, C: float) -> tuple[float, float] | None:
        """(N, loss) at the lowest loss this law's own L(N, D) reaches on C = 6ND; None for laws that
        predict no loss. For the closed forms it is `optimal`; for Kaplan's it is not (see minimises_loss)."""
        if not self.predicts_loss:
            return None
        if self.form == "kaplan":
            c = self.constants
            N = kaplan_isoflop_min_params(C, c["N_c"], c["D_c"], c["alpha_N"], c["alpha_D"])
        else:
            N, _ = self.optimal(C)
        D = C / (6.0 * N)
        return float(N), float(self.loss(N, D))

    def data_constrained(self) -> Any:
        """This law as llmplan.scaling.data_constrained's DataConstrainedLaw (form data-constrained only)."""
        from llmplan.scaling.data_constrained import law_from_constants

        return law_from_constants(self.constants, id=self.id, source=self.source)

    def loss_terms(self, N, D):
        """(irreducible, size term, data term) of the loss; None for laws without loss.

        Chinchilla: (E, A/N^alpha, B/D^beta), which add up to L. Kaplan: (0, and the two addends
        inside the Eq. 1.5 bracket), which do not add up to L but split its reducible part.
        """
        c = self.constants
        if self.form == "chinchilla":
            return c["E"], c["A"] / N ** c["alpha"], c["B"] / D ** c["beta"]
        if self.form == "kaplan":
            size, data = kaplan_terms(N, D, c["N_c"], c["D_c"], c["alpha_N"], c["alpha_D"])
            return 0.0, size, data
        if self.form == "data-constrained":  # E, A/N'^alpha (excess parameters count less), B/D^beta
            from llmplan.scaling.data_constrained import effective_params

            return c["E"], c["A"] / effective_params(N, D, math.inf, self.data_constrained()) ** c["alpha"], c["B"] / D ** c["beta"]
        return None

    def min_compute_for_loss(self, L: float) -> float:
        """The least budget whose optimal allocation reaches loss L (one value)."""
        if not self.predicts_loss:
            raise InputError(f"law {self.id!r} predicts no loss, so it cannot answer --target-loss; use chinchilla, epoch-2024 or kaplan-2020")
        floor = self.irreducible
        if not L > floor:
            raise InputError(
                f"target loss {L:g} is at or below the irreducible loss E = {floor:g} of law {self.id!r}; no budget reaches it: ask for more than {floor:g}"
            )
        if self.form in CLOSED_FORM:
            c = self.constants
            return chinchilla_min_compute(L, c["E"], c["A"], c["B"], c["alpha"], c["beta"])
        # Kaplan: loss along the allocation falls monotonically with C (N and D both grow); bisect log C.
        lo, hi = 0.0, 60.0 * math.log(10)
        if self.loss(*self.optimal(math.exp(hi))) > L:
            raise InputError(f"target loss {L:g} needs more than 1e60 FLOPs under law {self.id!r}")
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if self.loss(*self.optimal(math.exp(mid))) > L:
                lo = mid
            else:
                hi = mid
        return math.exp(hi)

    def with_ratio(self, ratio: float) -> "Law":
        if self.form != "tokens-per-param":
            raise InputError(f"--ratio applies to the tokens-per-param law, not to {self.id!r}; add --law tokens-per-param")
        if not MIN_RATIO <= ratio <= MAX_RATIO:
            raise InputError(f"--ratio {ratio:g} tokens per parameter is outside {MIN_RATIO:g} to {MAX_RATIO:,.0f} (Chinchilla: 20; Llama 3 8B: ~1,900)")
        return replace(self, constants={**self.constants, "ratio": float(ratio)}, name=f"{ratio:g} tokens per parameter")


# ------------------------------------------------------------------ validation and loading


def law_from_preset(preset: Any) -> Law:
    data = dict(preset.data)
    form = data["form"]
    if form == "power":
        keys = next(p for p in POWER_PAIRS if p[0] in data)
    else:
        keys = FORMS[form]
    constants = {k: float(data[k]) for k in keys}
    skip = set(keys) | {"name", "source", "notes", "form", "convention", "aliases"}
    return Law(
        id=preset.id,
        name=data.get("name", preset.id),
        form=form,
        constants=constants,
        source=data.get("source", ""),
        convention=data.get("convention", "total"),
        notes=data.get("notes", ""),
        extra={k: v for k, v in data.items() if k not in skip},
    )


def _looks_like_path(text: str) -> bool:
    return text.endswith(".toml") or "/" in text or "\\" in text


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the OS, an embedded NUL: not a file
        return False


def load_law(id_or_path: str, catalog: Any = None) -> Law:
    """A law by preset id or alias, or from a TOML file (one entry, the presets schema)."""
    from llmplan import presets

    text = str(id_or_path).strip()
    if catalog is None:
        catalog = presets.catalog()
    if _looks_like_path(text) or (catalog.find("laws", text) is None and _is_file(Path(text))):
        path = Path(text).expanduser()
        if not _is_file(path):
            raise InputError(f"law file {text!r} does not exist; give a law id (see 'llmplan presets list --kind laws') or a TOML file")
        entries = presets.load_file("laws", path)
        if len(entries) != 1:
            ids = ", ".join(entries) or "none"
            raise InputError(f"{path}: a law file must hold exactly one law entry, found {len(entries)} ({ids})")
        return law_from_preset(next(iter(entries.values())))
    return law_from_preset(catalog.get("laws", text))


def all_laws(catalog: Any) -> list[Law]:
    return [law_from_preset(p) for p in catalog.all("laws")]


# Epoch's refit (Besiroglu et al. 2024): Hoffmann's own Approach 3 constants are the outlier among
# the paper's three approaches (28B at 3,000 PF-days where Approaches 1-2 and ~20 tokens/param give 43-70B).
DEFAULT_LAW = "epoch-2024"


def resolve_laws(law: str | None, catalog: Any, ratio: float | None) -> list[Law]:
    """The laws a command runs under: one id or path, or 'all'; a ratio sets tokens-per-param."""
    if law is not None and law.strip().lower() == "all":
        laws = all_laws(catalog)
        if ratio is not None:
            laws = [l.with_ratio(ratio) if l.form == "tokens-per-param" else l for l in laws]
        return laws
    if law is None:
        law = "tokens-per-param" if ratio is not None else DEFAULT_LAW
    chosen = load_law(law, catalog)
    if ratio is not None:
        chosen = chosen.with_ratio(ratio)
    return [chosen]
