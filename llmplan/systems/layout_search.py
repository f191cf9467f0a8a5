"""The search for the fastest parallel layout that fits in memory.

What a layout is and which ones can exist is llmplan.systems.layout (`check_layout` says why one cannot
exist and names a valid neighbour). `search` enumerates every valid layout, evaluates the step-time model on all of them at once
(numpy arrays through llmplan.systems.step_time), keeps those that fit and ranks them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmplan.records import record
from llmplan.systems.layout import RECOMPUTE, check_layout, divisors, stage_layers


def check_pins(shape, run, gpus: int, fixed: dict) -> None:
    """The values `layout --tp 8 --pp 3 ...` pins must each be possible for this model and GPU count:
    check_layout on the pinned values, the others at 1 and a global batch that cannot be the problem."""
    from llmplan.systems.layout import Layout

    pinned = {k: v for k, v in fixed.items() if k in ("tp", "pp", "vp", "cp", "ep", "zero", "micro_batch", "recompute")}
    probe = Layout(**pinned)
    if probe.vp > 1 and "pp" not in pinned:  # any pp that leaves whole virtual stages
        stages = [p for p in divisors(shape.layers) if p > 1 and (shape.layers // p) % probe.vp == 0]
        probe = replace(probe, pp=stages[0] if stages else 2)
    why = run.software.allows(probe)
    if why:
        from llmplan.errors import InputError

        raise InputError(why)
    mp = probe.tp * probe.pp * probe.cp
    dp = max(1, gpus // mp)
    check_layout(shape, replace(run, global_batch=dp * probe.micro_batch * probe.pp), replace(probe, dp=dp), gpus)


# ---------------------------------------------------------------------------- memory of a layout

# The memory model's precision mode for each stack's mixed precision (presets/stacks.toml mixed_precision):
# Megatron and DeepSpeed keep 16-bit weights and gradients with fp32 master weights and Adam states (2 + 2 + 12
# bytes); FSDP keeps fp32 sharded parameters and gradients with fp32 Adam states (4 + 4 + 8: the same 16 bytes,
# equal when fully sharded) and computes in bf16 with no autocast cast cache, so its activations are the
# 16-bit ones of "mixed"; plain DDP + autocast keeps fp32 weights and a bf16 cast cache ("amp").
PRECISION_OF = {"megatron": "mixed", "deepspeed": "mixed", "fsdp": "mixed", "amp": "amp"}
# DeepSpeed ZeRO-1/2's communication buckets: reduce_bucket_size and allgather_bucket_size, 5e8 elements each by
# default (deepspeed/runtime/zero/config.py), in the 16-bit dtype.
DEEPSPEED_BUCKET_ELEMENTS = 5e8


def stack_memory_fields(stack, zero: int, compute_bytes: int = 2) -> dict:
    """The memory Request fields a stack sets: Megatron keeps fp32 main gradients under bf16
    (megatron/training/arguments.py: bf16 sets accumulate_allreduce_grads_in_fp32; param_and_grad_buffer.py),
    DeepSpeed ZeRO-1/2 holds its two buckets, fused element-wise kernels save fewer intermediates."""
    return {"selective": stack.selective_recompute, "fused_norms": stack.norm == "fused" or stack.compiled,
            "fused_mlp": stack.elementwise == "fused" or stack.compiled,
            "fp32_gradients": stack.mixed_precision == "megatron", "fused_loss": stack.fused_loss,
            "logits_kept": stack.logits_kept_for_backward, "stack_optimizer_impl": stack.optimizer_impl or None,
            "zero2_full_gradients": stack.zero2_gradients == "accumulate-full",
            "buffer_bytes": 2 * DEEPSPEED_BUCKET_ELEMENTS * compute_bytes if stack.mixed_precision == "deepspeed" and zero in (1, 2) else 0.0}


def memory_request(shape, run, layout, dtype: str = "bf16"):
    """The llmplan.systems.memory.estimate request for one layout under the run's stack: its mixed precision,
    what its "selective" recomputation keeps, the busiest pipeline stage's layers; fp8 runs keep 16-bit weights
    (Transformer Engine)."""
    from llmplan.systems.memory import estimate as mem

    stack = run.software
    busiest, _ = stage_layers(shape.layers, int(layout.pp), stack.pipeline_split)
    return mem.Request(
        shape=shape, train=True, precision=PRECISION_OF[stack.mixed_precision], dtype="bf16" if dtype == "fp8" else dtype,
        optimizer="adamw", batch=int(layout.micro_batch), seq=run.seq, recompute=layout.recompute,
        **stack_memory_fields(stack, int(layout.zero)),
        attention="eager" if run.attention == "eager" else "flash", zero=int(layout.zero), gpus=int(layout.gpus),
        tp=int(layout.tp), pp=int(layout.pp), sequence_parallel=bool(layout.sequence_parallel), cp=int(layout.cp),
        ep=int(layout.ep), stage_layers=int(busiest) if layout.pp > 1 else None,
    )


def memory_breakdown(shape, run, layout, dtype: str = "bf16"):
    """Per-GPU peak memory of one layout, from llmplan.systems.memory.estimate."""
    from llmplan.systems.memory import estimate as mem

    return mem.estimate(memory_request(shape, run, layout, dtype))


def states_lower_bound(shape, tp, pp, n_d, zero, ep):
    """Weights + gradients + optimizer states per GPU (16 B/param mixed Adam, ZeRO partitions; Rajbhandari
    et al. 2020 Fig. 1) plus the CUDA context: a lower bound of memory.estimate, on arrays of layouts."""
    from llmplan.model import arch
    from llmplan.systems.memory import allocator
    from llmplan.systems.memory import states
    from llmplan.systems._arith import where
    from llmplan.systems.step_time import _expert_params

    P = arch.params(shape)
    E = _expert_params(shape)
    dense = (P - E) / (tp * pp)
    experts = E / (tp * pp * ep)
    n_e = where(n_d // ep > 1, n_d // ep, 1)
    sb = states.state_bytes("mixed", "bf16", "adamw")

    def part(per_param, sharded):
        return per_param * (dense / where(sharded, n_d, 1) + experts / where(sharded, n_e, 1))

    return part(sb.weights, zero >= 3) + part(sb.gradients, zero >= 2) + part(sb.optimizer, zero >= 1) + allocator.CONTEXT_BYTES


# ---------------------------------------------------------------------------- the search

@record(frozen=False)
class Candidate:
    layout: Any  # throughput.Layout
    step: Any  # throughput.StepTime
    memory: Any  # memory.Breakdown


@record(frozen=False)
class SearchResult:
    best: list  # Candidate, fastest first (ties: less memory)
    evaluated: int  # valid layouts timed
    within_states: int  # of those, how many pass the model-state lower bound
    checked: int  # exact memory estimates made
    capacity: float
    least_memory: Any = None  # Candidate with the least memory, when nothing fits
    fastest: Any = None  # Candidate: the fastest layout regardless of memory


def enumerate_layouts(shape, run, gpus: int, gpus_per_node: int, tp_across_nodes: bool = False, fixed: dict | None = None,
                      every_zero: bool = False):
    """Every valid layout for `gpus` GPUs, as numpy arrays (one entry per layout).

    tp divides the heads (and stays within a node unless tp_across_nodes), pp divides the layers, vp
    divides the layers of a stage (interleaving needs pp > 1 and micro-batches a multiple of pp), cp
    divides the sequence, dp = gpus / (tp·pp·cp) divides the global batch, the micro-batch divides
    the per-replica batch, ep divides the experts and dp·cp, ZeRO 0-3 (the stack's searched stages unless
    `every_zero` or --zero is given), recompute none/selective/full, sequence parallelism on or off (tp > 1).
    `fixed` pins any of these to one value.
    """
    import numpy as np

    fixed = fixed or {}
    L, B = shape.layers, run.global_batch
    cols: dict[str, list] = {k: [] for k in ("tp", "pp", "vp", "dp", "cp", "ep", "zero", "micro_batch", "recompute", "sequence_parallel")}

    def allowed(name, values):
        return [v for v in values if name not in fixed or v == fixed[name]]

    grids: dict = {}
    stack = run.software  # the stack decides which layouts exist (presets/stacks.toml)
    tps = allowed("tp", [t for t in divisors(shape.heads) if gpus % t == 0 and (tp_across_nodes or t <= gpus_per_node)
                         and (stack.tp or t == 1)])
    recs = [RECOMPUTE.index(r) for r in allowed("recompute", list(RECOMPUTE))]
    for tp in tps:
        # any pp up to the layer count (uneven stages, split as the stack splits them)
        for pp in allowed("pp", [p for p in range(1, L + 1) if (gpus // tp) % p == 0 and (stack.pp or p == 1)]):
            zeros = allowed("zero", [z for z in (0, 1, 2, 3) if z in (stack.zero_with_pipeline if pp > 1 else stack.zero_stages)])
            if not zeros:
                continue
            for cp in allowed("cp", [c for c in divisors(gpus // (tp * pp)) if run.seq % c == 0 and (stack.cp or c == 1)]):
                dp = gpus // (tp * pp * cp)
                if B % dp or ("dp" in fixed and dp != fixed["dp"]):
                    continue
                # the stages the stack's search proposes unless --zero is given (presets/stacks.toml searched_zero_stages: Megatron
                # searches its distributed optimizer, what its calibration runs used, and Megatron-FSDP only when asked for)
                z = [v for v in zeros if every_zero or "zero" in fixed or not stack.searched_zero_stages or v in stack.searched_zero_stages]
                if not z:
                    continue
                mbs = allowed("micro_batch", divisors(B // dp))
                eps = allowed("ep", [e for e in divisors(shape.experts) if (dp * cp) % e == 0 and (stack.ep or e == 1)] if shape.experts else [1])
                sp_all = {"optional": [False, True], "always": [True], "never": [False]}[stack.sequence_parallel]
                sps = allowed("sequence_parallel", sp_all if tp > 1 else [False])
                per_stage = int(max(stage_layers(L, pp, stack.pipeline_split)))
                vps_all = allowed("vp", divisors(per_stage) if pp > 1 else [1])
                for mb in mbs:
                    m = B // (dp * mb)
                    vps = tuple(v for v in vps_all if v == 1 or m % pp == 0)
                    if not vps:
                        continue
                    key = (vps, tuple(eps), tuple(sps), tuple(z))
                    if key not in grids:
                        grids[key] = np.array(np.meshgrid(vps, eps, z, recs, sps, indexing="ij")).reshape(5, -1)
                    grid = grids[key]
                    n = grid.shape[1]
                    cols["tp"].append(np.full(n, tp)); cols["pp"].append(np.full(n, pp)); cols["cp"].append(np.full(n, cp))
                    cols["dp"].append(np.full(n, dp)); cols["micro_batch"].append(np.full(n, mb))
                    cols["vp"].append(grid[0]); cols["ep"].append(grid[1]); cols["zero"].append(grid[2])
                    cols["recompute"].append(grid[3]); cols["sequence_parallel"].append(grid[4].astype(bool))
    if not cols["tp"]:
        return None
    return {k: np.concatenate(v) for k, v in cols.items()}


def _layout_at(arrays, i):
    from llmplan.systems.layout import Layout

    return Layout(tp=int(arrays["tp"][i]), pp=int(arrays["pp"][i]), vp=int(arrays["vp"][i]), dp=int(arrays["dp"][i]),
                  cp=int(arrays["cp"][i]), ep=int(arrays["ep"][i]), zero=int(arrays["zero"][i]),
                  micro_batch=int(arrays["micro_batch"][i]), recompute=RECOMPUTE[int(arrays["recompute"][i])],
                  sequence_parallel=bool(arrays["sequence_parallel"][i]))


def search(shape, run, cluster, gpus: int, top: int = 5, tp_across_nodes: bool = False, dtype: str = "bf16",
           capacity: float | None = None, fixed: dict | None = None, every_zero: bool = False) -> SearchResult:
    """The `top` fastest layouts that fit, fastest first (ties: less memory per GPU).

    Every valid layout is timed at once (throughput.step_time on arrays); layouts whose model states
    alone exceed the GPU are dropped; the rest are visited fastest first and their memory computed
    exactly by llmplan.systems.memory.estimate (once per distinct memory-relevant layout) until `top` fit.
    """
    import numpy as np

    from llmplan.systems.layout import Layout
    from llmplan.systems.step_time import step_time

    capacity = cluster.capacity_bytes if capacity is None else capacity
    arrays = enumerate_layouts(shape, run, gpus, cluster.gpus_per_node, tp_across_nodes, fixed, every_zero)
    if arrays is None:
        return SearchResult([], 0, 0, 0, capacity)
    lay = Layout(**arrays)
    st = step_time(shape, run, lay, cluster, check=False)
    step = np.asarray(st.step_seconds, dtype=float)
    lower = states_lower_bound(shape, arrays["tp"], arrays["pp"], arrays["dp"] * arrays["cp"], arrays["zero"], arrays["ep"])
    n = len(step)
    ok = lower <= capacity
    # fastest first; among equal times the least model state, then the simpler layout (no recompute,
    # no context parallelism, fewer virtual stages, lower ZeRO stage, no sequence parallelism)
    quantised = np.round(step / step.min(), 9)
    order = np.lexsort((arrays["sequence_parallel"], arrays["zero"], arrays["vp"], arrays["cp"], arrays["recompute"], lower, quantised))
    fastest_i = int(order[0])
    memo: dict = {}

    def exact(i):
        layout = _layout_at(arrays, i)
        key = (layout.tp, layout.pp, layout.cp, layout.dp, layout.zero, layout.micro_batch, layout.recompute, layout.sequence_parallel, layout.ep)
        if key not in memo:
            memo[key] = memory_breakdown(shape, run, layout, dtype)
        return layout, memo[key]

    def candidate(i, layout=None, memory=None):
        if layout is None:
            layout, memory = exact(i)
        return Candidate(layout, step_time(shape, run, layout, cluster, check=False), memory)

    best: list = []
    seen: set = set()
    for i in order[ok[order]]:
        layout, memory = exact(int(i))
        if memory.total_bytes <= capacity:
            # a layout that only differs from a faster-or-equal one by a setting with no effect on time
            # or memory (selective recompute under flash attention, cp x micro-batch swaps) is not shown
            same = (float(quantised[i]), round(memory.total_bytes))
            if same in seen:
                continue
            seen.add(same)
            best.append(candidate(int(i), layout, memory))
            if len(best) >= top:
                break
    # ties: less memory, then the simpler layout (fewer virtual stages, less context parallelism)
    tie = lambda c: (round(c.step.step_seconds, 9), c.memory.total_bytes, c.layout.cp, c.layout.vp, c.layout.zero)
    best.sort(key=tie)
    result = SearchResult(best, n, int(ok.sum()), len(memo), capacity, fastest=candidate(fastest_i))
    if not best and not every_zero and run.software.searched_zero_stages and "zero" not in (fixed or {}):
        # nothing the stack's usual stages run fits: every stage it can run, before saying nothing fits
        return search(shape, run, cluster, gpus, top, tp_across_nodes, dtype, capacity, fixed, every_zero=True)
    if not best:
        # the layouts with the least model state, checked exactly, for "what would fit"
        # the least memory: among the layouts with the most sharding (ZeRO), recomputation and the
        # smallest micro-batch, every distinct one checked exactly
        pick = ((arrays["zero"] == arrays["zero"].max()) & (arrays["recompute"] == arrays["recompute"].max())
                & (arrays["micro_batch"] == arrays["micro_batch"].min()) & (arrays["vp"] == arrays["vp"].min()))
        pool = np.flatnonzero(pick)
        least = min(pool, key=lambda i: exact(int(i))[1].total_bytes)
        result.least_memory = candidate(int(least))
    return result
