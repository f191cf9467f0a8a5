"""The law forms as data: each form's constants and the check of a law entry (presets/laws.toml).

Below both llmplan.presets (which validates entries while loading) and llmplan.scaling.laws (which computes
with them): the presets never import the formulas.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from llmplan.errors import InputError

FORMS: dict[str, tuple[str, ...]] = {
    "chinchilla": ("E", "A", "B", "alpha", "beta"),
    "kaplan": ("N_c", "D_c", "alpha_N", "alpha_D", "n_coef_pfd", "n_exp"),
    "power": (),  # one of the pairs in POWER_PAIRS
    "tokens-per-param": ("ratio",),
    "data-constrained": ("E", "A", "B", "alpha", "beta", "rd_star", "rn_star"),  # Muennighoff et al. 2023 Eq. 3-5
}
POWER_PAIRS = (("n_coef", "n_exp"), ("d_coef", "d_exp"), ("m_coef", "m_exp"))
CONVENTIONS = ("total", "non-embedding")


def validate_law(entry: str, data: Mapping[str, Any], path: Any) -> None:
    """Check a law entry's form and constants; InputError names file, entry and field."""
    where = f"{path}: entry [{entry}]"
    form = data.get("form")
    if form not in FORMS:
        raise InputError(f"{where} field 'form' is {form!r}; expected one of {', '.join(FORMS)}")
    convention = data.get("convention", "total")
    if convention not in CONVENTIONS:
        raise InputError(f"{where} field 'convention' is {convention!r}; expected one of {', '.join(CONVENTIONS)}")
    needed: tuple[str, ...] = FORMS[form]
    if form == "power":
        pairs = [p for p in POWER_PAIRS if p[0] in data or p[1] in data]
        if len(pairs) != 1:
            raise InputError(
                f"{where} field 'form' is 'power' and needs exactly one pair of fields: n_coef and n_exp, d_coef and d_exp, or m_coef and m_exp"
            )
        needed = pairs[0]
    for name in needed:
        if name not in data:
            raise InputError(f"{where} is missing the field '{name}' that form {form!r} needs")
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise InputError(f"{where} field '{name}' must be a positive, finite number, not {value!r}")
    exponent = {"chinchilla": None, "kaplan": "n_exp", "power": needed[1] if form == "power" else None}.get(form)
    if exponent and not data[exponent] < 1:
        raise InputError(f"{where} field '{exponent}' must be below 1 (an allocation exponent), not {data[exponent]!r}")
