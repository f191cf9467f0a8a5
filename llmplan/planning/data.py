"""`llmplan data`: how hard to filter a pool, and how to size a domain model, as rows.

Composes the repetition law and the per-bucket utility decay (llmplan.scaling.data_filtering), the
BloombergGPT recipe (llmplan.scaling.domain) and Levine et al.'s shape (llmplan.model.depth_width).
A budget from GPU-hours is resolved before (llmplan.systems.budget); these take FLOPs.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from llmplan.errors import InputError
from llmplan.model import depth_width as dw
from llmplan.scaling import data_filtering as df
from llmplan.scaling import domain as dom

# The model sizes these recipes are answered for, as `plan` proposes shapes (1M to 10T parameters).
MIN_PARAMS, MAX_PARAMS = 1e6, 1e13
# --round-to: a hidden size is rounded to a multiple of a head or tile size, not of the width itself.
MAX_ROUND_TO = 1024


def _check_params(N: float, C: float, what: str) -> None:
    from llmplan.units import format_count, format_flops

    if N < MIN_PARAMS:
        raise InputError(f"a budget of {format_flops(C)} trains a {format_count(N)}-parameter model {what}, below the {format_count(MIN_PARAMS)} "
                         "these answers are made for; give a larger budget")
    if N > MAX_PARAMS:
        raise InputError(f"a budget of {format_flops(C)} trains a {format_count(N)}-parameter model {what}, beyond the {format_count(MAX_PARAMS)} "
                         "these answers are made for (as `plan`); give a smaller budget")


def filter_rows(C: float, pool: float, keeps: Sequence[float], tokens: float | None = None, max_cost: float = df.DEFAULT_MAX_COST,
                hours_per_trillion: float | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per keep fraction (see data_filtering.filter_point), and a summary: the epochs where
    repetition costs more than max_cost and the smallest keep fraction that stays below it."""
    if not (pool > 0 and math.isfinite(pool)):
        raise InputError(f"--pool must be a positive number of tokens, not {pool!r}")
    if not (C > 0 and math.isfinite(C)):
        raise InputError(f"the budget must be a positive, finite number of FLOPs, not {C!r}")
    if tokens is not None and not (tokens > 0 and math.isfinite(tokens)):
        raise InputError(f"--tokens must be a positive number of tokens, not {tokens!r}")
    for f in keeps:
        df.check_keep(f)
    if tokens is None:
        _check_params(df.optimal_unlimited(C)[0], C, "(compute-optimal)")
    else:
        _check_params(C / (6.0 * tokens), C, f"on {tokens:.3g} tokens (N = budget / 6D)")
    max_epochs = df.epochs_at_cost(max_cost)
    rows = []
    for f in keeps:
        p = df.filter_point(C, pool, f, tokens)
        rows.append({
            "law": df.MUENNIGHOFF_2023.id,
            "keep": f,
            "unique_tokens": p.unique_tokens,
            "params": p.params,
            "tokens": p.tokens,
            "epochs": p.epochs,
            "effective_tokens": p.effective_tokens,
            "repetition_cost": p.repetition_cost,
            "within_max_cost": p.repetition_cost <= max_cost,
            "loss": p.loss,
            "loss_unlimited_data": p.loss_unlimited_data,
            "optimal_params": p.optimal_params,
            "optimal_tokens": p.optimal_tokens,
            "optimal_loss": p.optimal_loss,
        })
    D = rows[0]["tokens"]
    summary = {"max_cost": max_cost, "max_epochs": max_epochs, "min_keep": df.min_keep(D, pool, max_epochs), "tokens": D,
               "scoring_gpu_hours": df.scoring_gpu_hours(pool, hours_per_trillion) if hours_per_trillion else None}
    for row in rows:
        row["min_keep"] = summary["min_keep"]
        row["scoring_gpu_hours"] = summary["scoring_gpu_hours"]
    return rows, summary


def bucket_rows(fit: df.BucketFit, target_tokens: float, bucket_tokens: float) -> list[dict[str, Any]]:
    """One row per number of top buckets kept: epochs and the fitted error at target_tokens; `best` marks the least."""
    if not (target_tokens > 0 and bucket_tokens > 0):
        raise InputError("the target and the bucket size must be positive numbers of tokens")
    found = df.best_buckets(fit, target_tokens, bucket_tokens)
    best = min(found, key=lambda t: t[2])[0]
    return [{
        "buckets": p,
        "bucket_names": ",".join(fit.buckets[:p]),
        "unique_tokens": p * bucket_tokens,
        "tokens": target_tokens,
        "epochs": epochs,
        "loss": err,
        "best": p == best,
    } for p, epochs, err in found]


def domain_rows(budgets: Sequence[float], domain_tokens: float, general_tokens: float | None = None, max_domain_epochs: float = 1.0,
                buffer: float = dom.BUFFER, checkpointing: bool = True, trained_tokens: float | None = None,
                vocab: int = dw.BLOOMBERG_VOCAB, multiple: int = 128) -> list[dict[str, Any]]:
    """The BloombergGPT recipe at each budget C (FLOPs before checkpointing's share), one row each:

    C_eff = 0.75 C; N_opt = the smaller of the two regressions' N (BloombergGPT's 50B sits at
    Approach 2's 49.8B); available tokens = e_max U_domain + U_general; planned D = the available
    tokens, or fewer where N_opt cannot train on all of them within (1 - buffer) of C_eff;
    N = min(N_opt, the largest N that trains on D within the buffer); domain share = min(1, e_max U / D);
    shape by Levine et al. 2020."""
    if not (domain_tokens > 0 and math.isfinite(domain_tokens)):
        raise InputError(f"--domain-tokens must be a positive number of tokens, not {domain_tokens!r}")
    if general_tokens is not None and not (general_tokens >= 0 and math.isfinite(general_tokens)):
        raise InputError(f"--general-tokens must be a non-negative number of tokens, not {general_tokens!r}")
    if not (max_domain_epochs > 0 and math.isfinite(max_domain_epochs)):
        raise InputError(f"--max-domain-epochs must be positive, not {max_domain_epochs!r}")
    dom.check_buffer(buffer)
    if not (1 <= multiple <= MAX_ROUND_TO):
        raise InputError(f"--round-to {multiple} is not a multiple a hidden size is rounded to; give 1 to {MAX_ROUND_TO} (e.g. 128, or a head size)")
    rows = []
    for C in budgets:
        if not (C > 0 and math.isfinite(C)):
            raise InputError(f"the budget must be a positive, finite number of FLOPs, not {C!r}")
        C_eff = dom.effective_budget(C, checkpointing)
        n1, d1 = dom.approach1_params(C_eff), dom.approach1_tokens(C_eff)
        n2, d2 = dom.approach2_params(C_eff), dom.approach2_tokens(C_eff)
        n_opt = min(n1, n2)
        available = max_domain_epochs * domain_tokens + (general_tokens if general_tokens is not None else math.inf)
        planned = min(available, dom.buffer_tokens(C_eff, n_opt, buffer))
        n_max = dom.buffer_params(C_eff, planned, buffer)
        N = min(n_opt, n_max)
        _check_params(N, C, "by the recipe")
        share = dom.domain_share(domain_tokens, planned, max_domain_epochs)
        D = trained_tokens if trained_tokens is not None else planned
        layers, width = dw.levine_shape(N, vocab)
        d_model = dw.round_width(width, multiple)
        rows.append({
            "budget_flops": C,
            "effective_flops": C_eff,
            "params_approach1": n1,
            "tokens_approach1": d1,
            "params_approach2": n2,
            "tokens_approach2": d2,
            "domain_tokens": domain_tokens,
            "general_tokens": general_tokens,
            "available_tokens": None if math.isinf(available) else available,
            "data_limited": available < min(d1, d2),
            "params_buffer_max": n_max,
            "params": N,
            "planned_tokens": planned,
            "tokens": D,
            "flops": 6.0 * N * D,
            "budget_used_share": 6.0 * N * D / C_eff,
            "domain_share": share,
            "domain_epochs": dom.domain_epochs(share, D, domain_tokens),
            "general_epochs": (1.0 - share) * D / general_tokens if general_tokens else None,
            "shape_layers": layers,
            "shape_d_model_levine": width,
            "shape_d_model": d_model,
            "shape_params": dw.decoder_params(layers, d_model, vocab),
        })
    return rows


def mix_rows(fit: Any, R: Sequence[Sequence[float]], losses: Sequence[Sequence[float]], weights: Sequence[float]) -> list[dict[str, Any]]:
    """One row per training domain: its share in the mixture that minimises sum_i s_i L_i under the
    fitted mixing law (llmplan.scaling.data_mixing), the range of shares the runs explored, the
    predicted target loss and the best run's observed one."""
    from llmplan.scaling.data_mixing import optimal_mixture

    if len(weights) != len(fit.targets) or any(not (w >= 0 and math.isfinite(w)) for w in weights) or sum(weights) <= 0:
        raise InputError("validation weights must be one non-negative number per loss column, not all zero")
    total = sum(weights)
    s = [w / total for w in weights]
    r, L = optimal_mixture(fit, s)
    observed = [sum(si * losses[i][n] for i, si in enumerate(s)) for n in range(len(R))]
    best = min(range(len(R)), key=observed.__getitem__)
    rows = []
    for j, name in enumerate(fit.domains):
        seen = [run[j] for run in R]
        rows.append({
            "domain": name,
            "mixture_share": r[j],
            "runs_min_share": min(seen),
            "runs_max_share": max(seen),
            "best_run_share": R[best][j],
            "loss": L,
            "loss_best_run": observed[best],
            "extrapolated": not (min(seen) - 1e-9 <= r[j] <= max(seen) + 1e-9),
        })
    return rows
