"""`llmplan data filter|domain|mix` as functions: how hard to filter a pool, how to size a domain model,
which mixture.

`data("filter", pool="15T", budget="1e24")` is `filter(pool="15T", budget="1e24")`: the dispatcher the
Python API exposes (llmplan.data); `filter`, `domain` and `mix` are the subcommands."""

from __future__ import annotations

import builtins
from typing import Any

from llmplan.commands import args
from llmplan.commands.budgets import hardware_texts, hardware_title
from llmplan.commands.notes import note, warn
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError

ACTIONS = ("filter", "domain", "mix")

# Said with the rows of `data filter` (a table prints the priors themselves, after its own).
PRIORS_NOTE = "published filtering points (priors, not predictions): llmplan data filter --priors"


def _joined(value: Any) -> Any:
    """A comma-separated option (--keep, data's --budget) given as a list: its text."""
    if isinstance(value, (builtins.list, tuple)):
        return ",".join(args.text(v) for v in value)
    return args.text(value)


def _budget(budget: Any, hardware: tuple, presets: Any, default_goodput: Any = None) -> tuple[builtins.list[float], str]:
    """(FLOPs, title words) from --budget or from hardware time (llmplan.systems.budget)."""
    gpu, gpus, days, hours, gpu_hours, mfu, goodput, dtype = hardware
    from llmplan.presets import catalog
    from llmplan.systems.budget import hardware_budget, parse_mfu, wants_hardware_budget
    from llmplan.units import format_flops, parse_compute

    if wants_hardware_budget(days, hours, gpu_hours):
        if budget is not None:
            raise InputError("give --budget or hardware time (--gpu-hours, or --gpus with --days), not both")
        hw = hardware_budget(catalog(presets), gpu, gpus, days, hours, gpu_hours, parse_mfu(mfu), goodput if goodput is not None else default_goodput, dtype)
        return [hw.flops], f"{hardware_title(hw)} = {format_flops(hw.flops)}"
    if gpu is not None or gpus is not None or mfu is not None or goodput is not None:
        raise InputError("--gpu, --gpus, --mfu and --goodput make a budget from hardware time: add --gpu-hours or --days")
    if budget is None:
        raise InputError("give a budget: --budget 1e24, or hardware time such as --gpu h100 --gpu-hours 1M")
    values = [parse_compute(part) for part in budget.split(",") if part.strip()]
    if not values:
        raise InputError("--budget is empty; e.g. --budget 1e24")
    return values, ", ".join(format_flops(v) for v in values)


def _fractions(text: str) -> builtins.list[float]:
    from llmplan.scaling.data_filtering import check_keep

    out = []
    for part in text.split(","):
        part = part.strip()
        percent = part.endswith("%")
        try:
            value = round(float(part.rstrip("%")) / (100.0 if percent else 1.0), 12)  # 1.4% is 0.014, not 0.013999999999999999
        except ValueError:
            raise InputError(f"--keep {part!r} is not a number; give fractions of the pool, e.g. --keep 0.014,0.03,0.2") from None
        out.append(check_keep(value))
    return out


def priors_rows() -> builtins.list[dict]:
    """The published filtering points (priors, with sources): what `data filter --priors` lists."""
    from llmplan.scaling.data_priors import filter_priors

    return [{k: p[k] for k in ("prior", "keep", "gain", "model", "paper", "source", "evidence")} for p in filter_priors()]


@command
def data_filter(
    *, pool: Any = None, keep: Any = None, budget: Any = None, tokens: Any = None, max_cost: Any = "0.05", classifier_hours: Any = None,
    priors: Any = False, buckets: Any = None, bucket_tokens: Any = None, gpu: Any = None, gpus: Any = None, days: Any = None,
    hours: Any = None, gpu_hours: Any = None, mfu: Any = None, goodput: Any = None, dtype: Any = "bf16", presets: Any = None,
) -> Rows:
    """How hard to filter a raw `pool` of tokens for a `budget` (or hardware time) (`llmplan data filter`):
    the cost of repetition for each `keep` fraction (comma-separated text or a list); priors=True: the
    published filtering points alone; `buckets` (a runs file) with `bucket_tokens`: the best number of
    top quality buckets. `detail`: {"mode": "filter" | "priors" | "buckets", and what the title says}
    (filter: "pool", "budget" words and the "priors" rows; buckets: "tokens", "bucket_tokens").

    Example: llmplan.data("filter", pool="15T", budget="1e24")[0]["keep"]
    """
    from llmplan.units import parse_count, parse_positive

    pool, keep, budget, tokens, max_cost, classifier_hours, bucket_tokens = (
        _joined(v) for v in (pool, keep, budget, tokens, max_cost, classifier_hours, bucket_tokens))
    priors = args.switch(priors, "--priors")
    hardware = hardware_texts(gpu, gpus, days, hours, gpu_hours, mfu, goodput, dtype)
    if priors:
        if any(v is not None for v in (pool, keep, budget, tokens, buckets, bucket_tokens, *hardware[2:5])):
            raise InputError("--priors prints the published points alone; drop the other options")
        from llmplan.scaling.data_priors import NO_MULTIPLIER_LAW

        rows = priors_rows()
        note(NO_MULTIPLIER_LAW)
        return Rows(rows, detail={"mode": "priors"})
    if buckets is not None:
        return _buckets(buckets, bucket_tokens, tokens, pool, keep, budget, hardware, presets)
    if bucket_tokens is not None:
        raise InputError("--bucket-tokens goes with --buckets FILE")
    if pool is None:
        raise InputError("give the raw pool: --pool 15T (tokens before filtering)")
    P = parse_count(pool, "a pool size in tokens (e.g. 15T)")
    keeps = _fractions(keep) if keep is not None else None
    budgets, title = _budget(budget, hardware, presets)
    if len(budgets) > 1:
        raise InputError("data filter takes one budget; run it once per budget")
    D = parse_count(tokens, "a token count") if tokens is not None else None
    cost = parse_positive(max_cost, "a repetition cost (a fraction such as 0.05)")
    from llmplan.scaling.data_filtering import DEFAULT_KEEP
    from llmplan.scaling.data_priors import classifier_cost
    from llmplan.units import format_count

    prior_cost = classifier_cost()
    per_t = parse_positive(classifier_hours, "GPU-hours per 1T tokens scored") if classifier_hours is not None else prior_cost["gpu_hours_per_trillion"]
    from llmplan.planning.data import filter_rows

    rows, summary = filter_rows(budgets[0], P, keeps or builtins.list(DEFAULT_KEEP), D, cost, per_t)
    where = "your classifier" if classifier_hours is not None else f"{prior_cost['gpu'].upper()} at FineWeb-Edu's rate, {prior_cost['source']}"
    note(f"repetition costs more than {cost:.0%} of the data's worth beyond {summary['max_epochs']:.2f} epochs: "
         f"at {format_count(summary['tokens'])} tokens keep at least {summary['min_keep']:.3g} of the pool")
    note(f"scoring the pool with a classifier: {summary['scoring_gpu_hours']:,.0f} GPU-hours ({where})")
    note(PRIORS_NOTE)
    return Rows(rows, detail={"mode": "filter", "pool": P, "budget": title, "priors": priors_rows()})


def _buckets(path, bucket_tokens, tokens, pool, keep, budget, hardware, presets) -> Rows:
    from llmplan.io.bucket_runs import read_bucket_runs
    from llmplan.units import format_count, parse_count

    if keep is not None or pool is not None:
        raise InputError("--buckets ranks whole buckets; drop --keep and --pool (give --bucket-tokens, each bucket's size)")
    if bucket_tokens is None:
        raise InputError("--buckets needs --bucket-tokens: the unique tokens in each bucket at the target scale (e.g. 100B)")
    S = parse_count(bucket_tokens, "a token count")
    if tokens is not None:
        if budget is not None or any(value is not None for value in hardware[2:5]):  # --days, --hours, --gpu-hours
            raise InputError("give --tokens (the target) or a budget, not both")
        D = parse_count(tokens, "a token count")
    else:
        from llmplan.scaling.data_constrained import optimal_unlimited

        budgets, _ = _budget(budget, hardware, presets)
        D = optimal_unlimited(budgets[0])[1]
    runs = read_bucket_runs(str(path))
    from llmplan.planning.data import bucket_rows
    from llmplan.scaling.data_filtering import fit_buckets

    fit = fit_buckets(runs.bucket, runs.tokens, runs.unique_tokens, runs.loss)
    rows = bucket_rows(fit, D, S)
    for name, b, tau in zip(fit.buckets, fit.b, fit.tau):
        note(f"bucket {name}: utility b = {b:.4g}, half-life tau = {tau:.3g} epochs (fitted)")
    lo, hi = min(runs.tokens), max(runs.tokens)
    note(f"Goyal et al. 2024 utility-decay form fitted to {fit.runs} runs ({format_count(lo)}-{format_count(hi)} tokens seen), "
         f"a = {fit.a:.4g}, d = {fit.d:.4g}, RMSE {fit.rmse:.3g}; the mixture rule tau_hat = p tau assumes equal-size buckets")
    if fit.at_bound:
        warn(f"the fit put {', '.join(fit.at_bound)} at the edge of the range searched: the runs do not fix "
             f"{'it' if len(fit.at_bound) == 1 else 'them'}; give runs at more epoch counts per bucket")
    if D > 10 * hi:
        warn(f"the target {format_count(D)} tokens is more than 10x the largest run ({format_count(hi)}): an extrapolation")
    return Rows(rows, detail={"mode": "buckets", "tokens": D, "bucket_tokens": S})


@command
def data_domain(
    *, domain_tokens: Any = None, general_tokens: Any = None, budget: Any = None, max_domain_epochs: Any = "1", buffer: Any = "0.3",
    no_checkpointing: Any = False, trained_tokens: Any = None, vocab: Any = 131_072, round_to: Any = 128, gpu: Any = None,
    gpus: Any = None, days: Any = None, hours: Any = None, gpu_hours: Any = None, mfu: Any = None, goodput: Any = None,
    dtype: Any = "bf16", presets: Any = None,
) -> Rows:
    """Size a domain model from scratch with BloombergGPT's recipe (`llmplan data domain`): `domain_tokens`
    of domain text (and `general_tokens`, default unlimited), for a `budget` (comma-separated or a list:
    a row each) or hardware time (goodput 1 by default: the recipe's buffer covers failures).
    `detail`: {"budget": title words, "domain_tokens", "general_tokens"}.

    Example: llmplan.data("domain", domain_tokens="363B", general_tokens="345B", budget=4.733e23)[0]["params"]
    """
    from llmplan.units import format_count, parse_count, parse_positive

    domain_tokens, general_tokens, budget, max_domain_epochs, buffer, trained_tokens = (
        _joined(v) for v in (domain_tokens, general_tokens, budget, max_domain_epochs, buffer, trained_tokens))
    no_checkpointing = args.switch(no_checkpointing, "--no-checkpointing")
    vocab, round_to = args.integer(vocab, "--vocab"), args.integer(round_to, "--round-to")
    args.positive(vocab, "--vocab")
    args.positive(round_to, "--round-to")
    hardware = hardware_texts(gpu, gpus, days, hours, gpu_hours, mfu, goodput, dtype)
    if domain_tokens is None:
        raise InputError("give the domain text: --domain-tokens 363B")
    U = parse_count(domain_tokens, "a token count")
    G = parse_count(general_tokens, "a token count") if general_tokens is not None else None
    e_max = parse_positive(max_domain_epochs, "a number of epochs")
    try:
        b = float(buffer)
    except ValueError:
        raise InputError(f"--buffer {buffer!r} is not a number; e.g. --buffer 0.3") from None
    trained = parse_count(trained_tokens, "a token count") if trained_tokens is not None else None
    budgets, title = _budget(budget, hardware, presets, default_goodput="1")
    from llmplan.planning.data import domain_rows

    rows = domain_rows(budgets, U, G, e_max, b, not no_checkpointing, trained, vocab, round_to)
    for row in rows:
        if trained is not None and trained > row["planned_tokens"]:
            warn(f"--trained-tokens {format_count(trained)} is more than the {format_count(row['planned_tokens'])} tokens planned")
    note("the recipe plans one pass over all tokens with a compute buffer; BloombergGPT trained 50.6B params (70 layers, 40 x 192 = 7,680) "
         "on 569B of 708B tokens (Table 4)")
    return Rows(rows, detail={"budget": title, "domain_tokens": U, "general_tokens": G})


@command
def data_mix(runs: Any = None, *, weights: Any = None) -> Rows:
    """The data mixture that minimises a target loss (`llmplan data mix RUNS`), from Ye et al. 2024's data
    mixing law fitted to your small runs: `runs` a file (CSV, TSV, JSON lines, JSON) with r_<domain>
    proportions and loss_<domain> losses; `weights` of the validation losses (comma-separated or a list;
    default equal). `detail`: {"runs": how many runs were fitted}.

    Example: llmplan.data("mix", "runs.csv", weights="0.3,0.7")
    """
    from llmplan.io.mix_runs import read_mix_runs

    if runs is None:
        raise InputError("Missing argument 'RUNS'. (see 'llmplan data mix --help')")
    weights = _joined(weights)
    data = read_mix_runs(str(runs))
    if weights is not None:
        try:
            s = [float(part) for part in weights.split(",")]
        except ValueError:
            raise InputError(f"--weights {weights!r} is not a list of numbers; e.g. --weights 0.3,0.7") from None
        if len(s) != len(data.targets):
            raise InputError(f"--weights gives {len(s)} weights for {len(data.targets)} loss columns ({', '.join(data.targets)})")
    else:
        s = [1.0] * len(data.targets)
    from llmplan.planning.data import mix_rows
    from llmplan.scaling.data_mixing import CAVEAT, fit_mixture

    fit = fit_mixture(data.domains, data.targets, data.R, data.losses)
    rows = mix_rows(fit, data.R, data.losses, s)
    for name, c, k, t, rmse in zip(fit.targets, fit.c, fit.k, fit.t, fit.rmse):
        terms = ", ".join(f"{d} {v:+.3g}" for d, v in zip(fit.domains, t))
        note(f"loss_{name}: c = {c:.4g}, k = {k:.4g}, t = ({terms}), RMSE {rmse:.3g} over {len(data.R)} runs (fitted)")
    if any(row["extrapolated"] for row in rows):
        warn("the optimum lies outside the shares your runs explored (key 'extrapolated'): an extrapolation of the fitted law")
    warn(CAVEAT)
    return Rows(rows, detail={"runs": len(data.R)})


# The subcommands by their command-line names: llmplan.commands.data.filter(...), .domain(...), .mix(...).
filter = data_filter
domain = data_domain
mix = data_mix


def data(action: str, *args: Any, **options: Any) -> Rows:
    """Data (`llmplan data filter|domain|mix ...`): how hard to filter a pool, how to size a domain model,
    which mixture. The action is the subcommand; the rest are its options ('-' -> '_') and arguments.

    Example: data("filter", pool="15T", budget="1e24"); data("domain", domain_tokens="363B", budget="1e23");
    data("mix", "runs.csv", weights="0.3,0.7")
    """
    if action not in ACTIONS:
        raise InputError(f"no command 'llmplan data {action}'; the actions are filter, domain and mix")
    return {"filter": data_filter, "domain": data_domain, "mix": data_mix}[action](*args, **options)
