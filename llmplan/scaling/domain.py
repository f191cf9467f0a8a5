"""Domain pre-training from scratch, sized as BloombergGPT was (Wu et al. 2023, "BloombergGPT: A Large
Language Model for Finance", arXiv:2303.17564, Sec. 3.2), step by step as published:

1. the budget less activation checkpointing's share: "we plug in 0.75 x 1.3M into Chinchilla equations";
2. the paper's two regressions over Hoffmann et al.'s tables (Approach 1: Table 3; Approach 2: Table A3);
3. data-limited: "the largest model that we can, while ensuring that we can train on all our tokens and
   still leave ~30% of the total compute budget as a buffer" (50B, "roughly the Chinchilla optimal size");
4. the domain share: FinPile was to be no less than half of the training tokens (51.27%, Table 1).

The regressions are fits to Hoffmann et al.'s tabulated optima (about 4e18 to 4e25 FLOPs in their
tables; BloombergGPT's footnote 1: the laws are tokenizer-specific).
"""

from __future__ import annotations

import math

from llmplan.errors import InputError

RECOMPUTE_FACTOR = 0.75  # Sec. 3.2: checkpointing costs 0.33x more per step, so 0.75 of the budget trains
BUFFER = 0.30  # Sec. 3.2: "~30% of the total compute budget as a buffer for unforeseen failures"
SOURCE = "Wu et al. 2023, BloombergGPT (arXiv:2303.17564) Sec. 3.2"
FITTED_RANGE = "regressions over Hoffmann et al. 2022 Table 3 and Table A3 (400M-10T params, 1.9e19-1.3e28 FLOPs; projections beyond the ~16B params they trained)"


def approach1_params(C: float) -> float:
    """N = 10^(0.498 log10 C - 1.004) (Wu et al. 2023 Sec. 3.2, fit to Hoffmann et al. Table 3)."""
    return 10 ** (0.498 * math.log10(C) - 1.004)


def approach1_tokens(C: float) -> float:
    """D = 10^(0.502 log10 C + 0.229) (Wu et al. 2023 Sec. 3.2, fit to Hoffmann et al. Table 3)."""
    return 10 ** (0.502 * math.log10(C) + 0.229)


def approach2_params(C: float) -> float:
    """N = 10^(0.490 log10 C - 0.839) (Wu et al. 2023 Sec. 3.2, fit to Hoffmann et al. Table A3)."""
    return 10 ** (0.490 * math.log10(C) - 0.839)


def approach2_tokens(C: float) -> float:
    """D = 10^(0.510 log10 C + 0.062) (Wu et al. 2023 Sec. 3.2, fit to Hoffmann et al. Table A3)."""
    return 10 ** (0.510 * math.log10(C) + 0.062)


def effective_budget(C: float, checkpointing: bool = True) -> float:
    """The FLOPs that train the model: 0.75 C with activation checkpointing (Wu et al. 2023 Sec. 3.2)."""
    return RECOMPUTE_FACTOR * C if checkpointing else C


def buffer_params(C_eff: float, tokens: float, buffer: float = BUFFER) -> float:
    """The largest N that trains on `tokens` within (1 - buffer) of the budget: (1 - b) C / (6 D)."""
    return (1.0 - buffer) * C_eff / (6.0 * tokens)


def buffer_tokens(C_eff: float, params: float, buffer: float = BUFFER) -> float:
    """The tokens N parameters can train on within (1 - buffer) of the budget."""
    return (1.0 - buffer) * C_eff / (6.0 * params)


def domain_share(domain_tokens: float, tokens: float, max_epochs: float) -> float:
    """The largest share of `tokens` the domain text allows at max_epochs passes: min(1, e U / D)."""
    return min(1.0, max_epochs * domain_tokens / tokens)


def domain_epochs(share: float, tokens: float, domain_tokens: float) -> float:
    """Passes over the domain text: share x D / U (BloombergGPT: 0.5127 x 569B / 363B = 0.80)."""
    return share * tokens / domain_tokens


def check_buffer(buffer: float) -> float:
    if not (0.0 <= buffer < 1.0) or not math.isfinite(buffer):
        raise InputError(f"--buffer {buffer:g} is not a fraction in [0, 1); e.g. --buffer 0.3 (BloombergGPT kept ~30%)")
    return buffer
