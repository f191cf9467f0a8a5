"""Shape proposals: a LLaMA-family shape (width, depth, heads, FFN) for a target parameter count,
with its exact count from llmplan.model.arch (`arch --target`, `optimal --shape`, the plan's shape).
"""

from __future__ import annotations

import math
from typing import Any

from llmplan.errors import InputError
from llmplan.model.arch import Shape, layer_params, llama_ffn, params

# Width-to-depth of the LLaMA family (d_model, layers): LLaMA Table 2 (Touvron et al. 2023) and, to
# anchor widths above 8192, Llama 3.1 405B (Llama Team 2024, Table 3: 126 x 16384). Head dim 128,
# SwiGLU FFN = 8/3·d rounded up to 256 (LLaMA's rule), vocab 32,000, untied.
LLAMA_FAMILY = ((4096, 32), (5120, 40), (6656, 60), (8192, 80), (16384, 126))
PROPOSAL_FAMILY = ("LLaMA width/depth (LLaMA Table 2: 32x4096, 40x5120, 60x6656, 80x8192; Llama 3.1 Table 3: "
                   "126x16384); head dim 128, FFN 8/3*d rounded up to 256")


def family_layers(d_model: float) -> float:
    """Layers the LLaMA family would give a width: piecewise log-log interpolation of Table 2."""
    pts = [(math.log(d), math.log(n)) for d, n in LLAMA_FAMILY]
    x = math.log(d_model)
    if x <= pts[0][0]:
        (x0, y0), (x1, y1) = pts[0], pts[1]
    elif x >= pts[-1][0]:
        (x0, y0), (x1, y1) = pts[-2], pts[-1]
    else:
        i = max(j for j in range(len(pts) - 1) if pts[j][0] <= x)
        (x0, y0), (x1, y1) = pts[i], pts[i + 1]
    return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def llama_shape(d_model: int, layers: int, vocab: int = 32000, context: int = 4096, head_dim: int = 128) -> Shape:
    """A LLaMA-style decoder: SwiGLU, RMSNorm, rotary, untied, no biases."""
    return Shape(
        d_model=d_model, heads=d_model // head_dim, vocab=vocab, layers=layers, ffn=llama_ffn(d_model),
        context=context, name=f"llama-style {layers}x{d_model}",
    )


# Proposals lie within this fraction of the target; where no family shape is that close, only the
# nearest one is proposed (the CLI says how far it is).
PROPOSAL_TOLERANCE = 0.05


def propose(target_params: float, n: int = 3, vocab: int = 32000, context: int = 4096, tolerance: float = PROPOSAL_TOLERANCE) -> list[Shape]:
    """Up to n LLaMA-family shapes whose exact count is nearest target_params (closest first), all
    within `tolerance` of it; the single nearest one when none is that close.

    Widths are multiples of 256 (as every LLaMA width is; heads of 128), layers stay within ±15%
    of the family's width-to-depth curve (`family_layers`), so each shape is one the family could
    have published; the FFN is LLaMA's rounding of 8/3·d up to a multiple of 256."""
    if not target_params or target_params <= 0 or target_params != target_params:
        raise InputError(f"target size must be a positive count like 7B, not {target_params!r}")
    if target_params < 1e6 or target_params > 1e13:
        raise InputError(f"target size {target_params:.3g} is outside 1M..10T parameters that shapes are proposed for")
    best: list[tuple[float, int, int]] = []  # (relative gap, d_model, layers), the best depth per width
    for d in range(256, 65536 + 1, 256):
        curve = family_layers(d)
        one = llama_shape(d, 1, vocab, context)
        per_layer = layer_params(one)
        fixed = params(one) - per_layer
        depths = range(max(1, math.ceil(0.85 * curve)), max(1, math.floor(1.15 * curve)) + 1)
        gaps = [(abs(fixed + n * per_layer - target_params) / target_params, d, n) for n in depths]
        if gaps:
            best.append(min(gaps))
    best.sort()
    close = [b for b in best[:n] if b[0] <= tolerance] or best[:1]
    return [llama_shape(d, depth, vocab, context) for _gap, d, depth in close]


def shape_columns(target_params: float) -> dict[str, Any]:
    """The nearest proposed shape for a size, as row keys (`llmplan optimal --shape`); nulls outside
    the 1M..10T range that shapes are proposed for."""
    keys = ("shape_layers", "shape_d_model", "shape_heads", "shape_ffn", "shape_params")
    if not (1e6 <= target_params <= 1e13):
        return dict.fromkeys(keys)
    (best,) = propose(target_params, n=1)
    return dict(zip(keys, (best.layers, best.d_model, best.heads, best.d_ffn, params(best))))
