"""The depth-width relation of Levine et al. 2020 ("Limits to Depth Efficiencies of Self-Attention",
arXiv:2006.12467) as BloombergGPT used it to pick its shape (Wu et al. 2023, arXiv:2303.17564, Sec. 3.2):
for L self-attention layers the best hidden size is D = exp(5.039) exp(0.0555 L). Sweep integer L and
keep the (L, D) whose parameter count is nearest the target.
"""

from __future__ import annotations

import math

# Wu et al. 2023 Sec. 3.2, quoting Levine et al. 2020: D = exp(5.039) exp(0.0555 L).
LEVINE_LOG_D0 = 5.039
LEVINE_SLOPE = 0.0555
BLOOMBERG_VOCAB = 131_072  # Wu et al. 2023 Table 4
MAX_LAYERS = 400


def levine_width(layers: int) -> float:
    """D(L) = exp(5.039 + 0.0555 L), the hidden size Levine et al. 2020 find best for L layers."""
    return math.exp(LEVINE_LOG_D0 + LEVINE_SLOPE * layers)


def decoder_params(layers: int, d_model: float, vocab: int) -> float:
    """12 L D^2 + V D: attention and a 4x MLP per layer plus the embedding (Wu et al. 2023's check: 50.6B)."""
    return 12.0 * layers * d_model**2 + vocab * d_model


def levine_shape(params: float, vocab: int = BLOOMBERG_VOCAB) -> tuple[int, float]:
    """(L, D(L)) whose parameter count is nearest `params` (Wu et al. 2023 Sec. 3.2: L = 70, D = 7510 for ~50B)."""
    best = min(range(1, MAX_LAYERS + 1), key=lambda L: abs(decoder_params(L, levine_width(L), vocab) - params))
    return best, levine_width(best)


def round_width(d_model: float, multiple: int) -> int:
    """The hidden size rounded to the nearest multiple (hardware-friendly); never below one multiple."""
    return max(multiple, int(round(d_model / multiple)) * multiple)
