"""Shape proposals: a decoder shape (width, depth, heads, KV heads, FFN) for a target parameter count,
by the conventions of today's published models, with its exact count from llmplan.model.arch
(`arch --target`, `optimal --shape`, the plan's shape).

Each convention, with the models it is read from (presets/models.toml, each entry sourced):
- heads of 128 (Llama 2/3: 4096/32, 8192/64, 16384/128; Mistral 7B), of 64 at widths up to 2560
  (Llama 3.2 1B: 2048 = 32 x 64; GPT-3 Small and Medium, Brown et al. 2020 Table 2.1);
- a head count that is a multiple of 8, so tensor parallelism over an 8-GPU node splits the heads
  (Llama 2 13B's 40, Llama 3's 32/64/128): d_model a multiple of 1024 (heads of 128); below 1B parameters, where no
  tensor parallelism is needed, widths up to 2560 in multiples of 256 (GPT-3 Small: 12 heads of 64);
- grouped-query attention with 8 KV heads from about 1B parameters (Llama 3.2 1B and 3B, Llama 3/3.1
  8B, 70B, 405B, Mistral 7B, Qwen2.5-72B: 8 KV heads; Ainslie et al. 2023), multi-head below;
- the SwiGLU width as Llama 3 rounds it: 8/3 d, times ffn_dim_multiplier 1.3 (1.2 at 16,384 wide),
  rounded up to a multiple of 1024 (4096 from 8192 wide; 256 below 2048 wide, LLaMA's rule), which
  gives Llama 3's 14,336 / 28,672 / 53,248 (pytorch/torchtitan llama3 configs: 8B 1.3 and 1024,
  70B 1.3 and 4096, 405B 1.2 and 4096);
- depth from width along published families (`FAMILY`), within 40% of that curve (loss depends only
  mildly on the depth-to-width ratio over a wide range: Kaplan et al. 2020 Sec. 3.1, Fig. 5);
- a layer count pipeline stages can take: a multiple of 8 from about 64 layers, of 4 from about 12
  (Llama 3.1 405B's 126 layers split only into uneven stages; the layout search here splits layers evenly).
"""

from __future__ import annotations

import math
from typing import Any

from llmplan.errors import InputError
from llmplan.model.arch import Shape, layer_params, params

# Width -> depth of published decoders (d_model, layers): GPT-3 Small 12 x 768 (Brown et al. 2020
# Table 2.1), Llama 3.2 1B 16 x 2048 and 3B 28 x 3072 (HF configs), LLaMA Table 2 (Touvron et al.
# 2023: 32 x 4096, 40 x 5120, 60 x 6656, 80 x 8192) and Llama 3.1 405B 126 x 16384 (Llama Team 2024, Table 3).
FAMILY = ((768, 12), (2048, 16), (3072, 28), (4096, 32), (5120, 40), (6656, 60), (8192, 80), (16384, 126))
LLAMA_FAMILY = FAMILY  # the name earlier versions used
DEPTH_SPREAD = 0.4  # depths within 40% of the family's curve (Kaplan et al. 2020 Sec. 3.1: shape matters little)
FAMILY_SPREAD = 0.15  # within 15% of it a depth is the family's own; those are proposed first
GQA_FROM_PARAMS = 1e9  # 8 KV heads from about 1B parameters (Llama 3.2 1B: 1.23B, 8 KV heads)
GQA_KV_HEADS = 8
HEADS_MULTIPLE = 8
PROPOSAL_FAMILY = ("today's decoders: heads of 128 (64 up to 2560 wide) in multiples of 8, 8 KV heads from 1B parameters, "
                   "Llama 3's SwiGLU width (8/3 d x 1.3, rounded to 1024), depth from width as in GPT-3, Llama 3.2, LLaMA and "
                   "Llama 3.1 405B, depth within 40% of it in multiples of 8 (4 when shallower than 64) for pipeline stages")


def family_layers(d_model: float) -> float:
    """Layers the published family would give a width: piecewise log-log interpolation of FAMILY."""
    pts = [(math.log(d), math.log(n)) for d, n in FAMILY]
    x = math.log(d_model)
    if x <= pts[0][0]:
        (x0, y0), (x1, y1) = pts[0], pts[1]
    elif x >= pts[-1][0]:
        (x0, y0), (x1, y1) = pts[-2], pts[-1]
    else:
        i = max(j for j in range(len(pts) - 1) if pts[j][0] <= x)
        (x0, y0), (x1, y1) = pts[i], pts[i + 1]
    return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def head_dim(d_model: int) -> int:
    """128-wide heads, 64-wide up to d_model 2560 (Llama 3.2 1B: 2048 = 32 x 64; GPT-3 Small/Medium)."""
    return 64 if d_model <= 2560 else 128


def widths(limit: int = 65536) -> list[int]:
    """Widths whose heads (of head_dim) come in multiples of 8 above 2048 wide (multiples of 1024, heads of
    128); up to 2560 wide, multiples of 256 (heads of 64 in multiples of 4: GPT-3 Small's 12 x 64 = 768;
    a model under 1B trains without tensor parallelism), and 128 for the smallest."""
    return [128] + list(range(256, 2560 + 1, 256)) + list(range(3072, limit + 1, 1024))


def llama3_ffn(d_model: int) -> int:
    """SwiGLU hidden width as Llama 3 computes it (torchtitan llama3 `FeedForward`): int(2/3 * 4d), times
    ffn_dim_multiplier, rounded up to multiple_of (1.3 and 1024 at 8B; 1.3 and 4096 at 70B; 1.2 and 4096 at 405B).
    Below 2048 wide LLaMA's multiple of 256 and no multiplier."""
    hidden = int(2 * 4 * d_model / 3)
    if d_model < 2048:
        multiple = 256
    else:
        hidden = int((1.2 if d_model >= 16384 else 1.3) * hidden)
        multiple = 4096 if d_model >= 8192 else 1024
    return multiple * ((hidden + multiple - 1) // multiple)


def layer_multiple(layers: float) -> int:
    """Depths pipeline stages can split: multiples of 8 from about 64 layers, 4 from 12, 2 from 4."""
    return 8 if layers >= 64 else 4 if layers >= 12 else 2 if layers >= 4 else 1


def llama_shape(d_model: int, layers: int, vocab: int = 32000, context: int = 4096, kv_heads: int | None = None) -> Shape:
    """A Llama-3-style decoder: SwiGLU, RMSNorm, rotary, untied, no biases, grouped-query attention."""
    heads = d_model // head_dim(d_model)
    return Shape(
        d_model=d_model, heads=heads, kv_heads=kv_heads, vocab=vocab, layers=layers, ffn=llama3_ffn(d_model),
        context=context, name=f"llama-style {layers}x{d_model}",
    )


# Proposals lie within this fraction of the target; where no family shape is that close, only the
# nearest one is proposed (the CLI says how far it is).
PROPOSAL_TOLERANCE = 0.05


def propose(target_params: float, n: int = 3, vocab: int = 32000, context: int = 4096, tolerance: float = PROPOSAL_TOLERANCE,
            kv_heads: int | None = None) -> list[Shape]:
    """Up to n shapes within `tolerance` of target_params, those whose depth is within FAMILY_SPREAD of the
    family's curve first, each group closest first; the single nearest one when none is that close.

    Widths from `widths`, depths within DEPTH_SPREAD of the family's curve (`family_layers`) in steps pipeline
    stages can take (`layer_multiple`); 8 KV heads from 1B parameters (`kv_heads` overrides it and must
    divide the heads of a width to propose it)."""
    if not target_params or target_params <= 0 or target_params != target_params:
        raise InputError(f"target size must be a positive count like 7B, not {target_params!r}")
    if target_params < 1e6 or target_params > 1e13:
        raise InputError(f"target size {target_params:.3g} is outside 1M..10T parameters that shapes are proposed for")
    if kv_heads is not None and kv_heads < 1:
        raise InputError(f"--kv-heads must be a positive whole number, not {kv_heads}")
    best: list[tuple] = []  # every (width, depth), ranked
    for d in widths():
        heads = d // head_dim(d)
        if target_params >= GQA_FROM_PARAMS and heads % HEADS_MULTIPLE:
            continue  # from 1B parameters, heads in multiples of 8 (tensor parallelism over a node)
        if kv_heads is not None:
            if heads % kv_heads:
                continue
            kv = None if kv_heads == heads else kv_heads
        elif target_params >= GQA_FROM_PARAMS:
            kv = GQA_KV_HEADS if heads > GQA_KV_HEADS else None
        else:
            kv = None
        curve = family_layers(d)
        step = layer_multiple(curve)
        one = llama_shape(d, 1, vocab, context, kv)
        per_layer = layer_params(one)
        fixed = params(one) - per_layer
        lo, hi = max(1, math.ceil((1 - DEPTH_SPREAD) * curve - 1e-9)), max(1, math.floor((1 + DEPTH_SPREAD) * curve + 1e-9))
        depths = [k for k in range(lo, hi + 1) if k % step == 0] or [max(step, step * round(curve / step))]
        # (outside tolerance, off the family's own depth, gap): within tolerance first, then the family's
        # depth (within FAMILY_SPREAD of its curve) before the wider spread, then the nearest count.
        ranked = []
        for k in depths:
            gap = abs(fixed + k * per_layer - target_params) / target_params
            ranked.append((gap > tolerance, abs(math.log(k / curve)) > math.log(1 + FAMILY_SPREAD), gap, d, k, kv))
        best.extend(ranked)
    if not best:
        raise InputError(f"--kv-heads {kv_heads} divides the heads of no proposed width (heads come in multiples of 8); try --kv-heads 8")
    close: list[tuple] = []
    for b in sorted(c for c in best if not c[0]):  # one depth per width
        if all(b[3] != c[3] for c in close):
            close.append(b)
    close = close[:n] or [min(best, key=lambda b: (b[2], b[3]))]
    return [llama_shape(d, depth, vocab, context, kv) for *_rank, d, depth, kv in close]


def shape_columns(target_params: float) -> dict[str, Any]:
    """The nearest proposed shape for a size, as row keys (`llmplan optimal --shape`); nulls outside
    the 1M..10T range that shapes are proposed for."""
    keys = ("shape_layers", "shape_d_model", "shape_heads", "shape_ffn", "shape_params", "shape_kv_heads")
    if not (1e6 <= target_params <= 1e13):
        return dict.fromkeys(keys)
    (best,) = propose(target_params, n=1)
    return dict(zip(keys, (best.layers, best.d_model, best.heads, best.d_ffn, params(best), best.n_kv_heads)))
