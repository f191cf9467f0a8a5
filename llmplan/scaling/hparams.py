"""Batch-size and learning-rate scaling laws: the optimal global batch (tokens) and peak learning rate.

Every shipped law is a power law in the budget C (FLOPs), the parameters N and the tokens D,

    batch_tokens  = batch_coef * C^batch_exp_flops * N^batch_exp_params * D^batch_exp_tokens
    learning_rate = lr_coef    * C^lr_exp_flops    * N^lr_exp_params    * D^lr_exp_tokens

with the constants as data in presets/hparams.toml:
- DeepSeek LLM 2024 §3.1: B_opt = 0.2920 C^0.3271 tokens, eta_opt = 0.3118 C^-0.1250 (fitted 1e17-2e19 FLOPs);
- Step Law (Li et al. 2025): B = 0.58 D^0.571 tokens, eta = 1.79 N^-0.713 D^0.307 (N non-embedding).
Each law records the range it was fitted on; `extrapolation_warning` says when a plan lies outside.
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any, Mapping

from llmplan.errors import InputError
from llmplan.records import record

DEFAULT_HPARAMS = "deepseek-2024"
VARIABLES = ("flops", "params", "tokens")


def power_law(coef: float, exponents: Mapping[str, float], flops: float, params: float, tokens: float) -> float:
    """coef * C^a * N^b * D^c (DeepSeek LLM 2024 Eq. 1 has only C; Step Law 2025 only N and D)."""
    value = coef
    for name, x in (("flops", flops), ("params", params), ("tokens", tokens)):
        e = exponents.get(name, 0.0)
        if e:
            value *= x**e
    return value


@record
class HparamLaw:
    """One hyperparameter law: its coefficients and exponents, convention and fitted range."""

    id: str
    name: str
    batch_coef: float
    batch_exponents: Mapping[str, float]
    lr_coef: float
    lr_exponents: Mapping[str, float]
    convention: str = "total"
    source: str = ""
    bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    fitted_range: str = ""
    compute: str = "6ND"  # what C counts: 6ND, or "MD" (DeepSeek: M non-embedding FLOPs per token, attention included)

    def batch_tokens(self, flops: float, params: float, tokens: float) -> float:
        """The law's optimal global batch size, in tokens."""
        return power_law(self.batch_coef, self.batch_exponents, flops, params, tokens)

    def learning_rate(self, flops: float, params: float, tokens: float) -> float:
        """The law's optimal peak learning rate."""
        return power_law(self.lr_coef, self.lr_exponents, flops, params, tokens)

    def outside(self, flops: float, params: float, tokens: float) -> list[str]:
        """The quantities that lie outside the fitted range ([] inside it, or when none is recorded)."""
        given = {"flops": flops, "params": params, "tokens": tokens}
        out = []
        for name, (low, high) in self.bounds.items():
            x = given[name]
            if (low is not None and x < low) or (high is not None and x > high):
                out.append(name)
        return out

    def extrapolation_warning(self, flops: float, params: float, tokens: float) -> str | None:
        """One line for stderr when the plan lies outside the fitted range, else None."""
        out = self.outside(flops, params, tokens)
        if not out:
            return None
        words = {"flops": "compute", "params": "parameters", "tokens": "tokens"}
        return (f"hyperparameter law {self.id} was fitted on {self.fitted_range or 'a smaller range'}; this plan's "
                f"{', '.join(words[k] for k in out)} lie{'s' if out == ['flops'] else ''} outside it, so its batch size and learning rate are extrapolations")


def law_from_preset(preset: Any) -> HparamLaw:
    data = preset.data
    for key in ("batch_coef", "lr_coef"):
        value = data.get(key)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise InputError(f"{preset.path}: entry [{preset.id}] field '{key}' must be a positive, finite number")
    bounds = {}
    for v in VARIABLES:
        low, high = data.get(f"fitted_min_{v}"), data.get(f"fitted_max_{v}")
        if low is not None or high is not None:
            bounds[v] = (low, high)
    return HparamLaw(
        id=preset.id,
        name=data.get("name", preset.id),
        batch_coef=float(data["batch_coef"]),
        batch_exponents={v: float(data.get(f"batch_exp_{v}", 0.0)) for v in VARIABLES},
        lr_coef=float(data["lr_coef"]),
        lr_exponents={v: float(data.get(f"lr_exp_{v}", 0.0)) for v in VARIABLES},
        convention=data.get("convention", "total"),
        source=data.get("source", ""),
        bounds=bounds,
        fitted_range=data.get("fitted_range", ""),
        compute=data.get("compute", "6ND"),
    )


def load_hparams(name: str | None, catalog: Any) -> HparamLaw:
    """A hyperparameter law by preset id or alias (default DeepSeek LLM 2024)."""
    return law_from_preset(catalog.get("hparams", name or DEFAULT_HPARAMS))


def deepseek_M(non_embedding_params: float, layers: int, d_model: int, seq: int) -> float:
    """M = 72 n_layer d^2 + 12 n_layer d l_seq (DeepSeek LLM 2024, Sec. 3.2), with 72 n_layer d^2 read as
    6 x the shape's non-embedding parameters (12 n_layer d^2 for the paper's blocks; exact for others)."""
    return 6.0 * non_embedding_params + 12.0 * layers * d_model * seq


def hparam_fields(law: HparamLaw, flops: float, params: float, tokens: float) -> dict[str, Any]:
    """The plan's keys for the law's own values: hparams, batch_tokens, learning_rate, hparams_extrapolated.
    `params` is in the law's convention (non-embedding for both shipped laws)."""
    return {
        "hparams": law.id,
        "batch_tokens": law.batch_tokens(flops, params, tokens),
        "learning_rate": law.learning_rate(flops, params, tokens),
        "hparams_extrapolated": bool(law.outside(flops, params, tokens)) if law.bounds else None,
    }
