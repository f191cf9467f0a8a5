"""The machine-output schema: each command's keys, JSON types and units, generated from the code.

`python -m llmplan.cli.schema > docs/schema.md` (or `make schema`) runs each command on representative
inputs with `--format json`, collects every key it emits with the JSON types seen, and names the
unit by the key's suffix (the same conventions the table uses to humanise). tests/test_schema.py
regenerates it and fails when a key changes without docs/schema.md changing with it.
"""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout

# Representative invocations: together they must reach every key a command can emit.
EXAMPLES: dict[str, list[list[str]]] = {
    "plan": [
        ["plan", "--gpu", "h100", "--gpus", "256", "--days", "30", "--price", "2"],
        ["plan", "--gpu", "h100", "--gpus", "256", "--days", "30", "--unique-tokens", "200B"],
        ["plan", "--gpu", "h100", "--gpus", "512", "--target-loss", "2.0238", "--inference-tokens", "2T", "--law", "chinchilla"],
    ],
    "optimal": [
        ["optimal", "--budget", "1e23"],
        ["optimal", "--budget", "1e23", "--law", "all", "--shape"],
        ["optimal", "--params", "7B"],
        ["optimal", "--budget", "9.26e21", "--unique-tokens", "25B"],
        ["optimal", "--target-loss", "2.0238", "--inference-tokens", "2T"],
        ["optimal", "--gpu", "h100", "--gpus", "256", "--days", "30"],
        ["optimal", "--target-loss", "2.0238", "--inference-tokens", "2T", "--serve-gpu", "h100"],
        ["optimal", "--target-loss", "2.0238", "--inference-tokens", "2T", "--serve-gpu", "h100", "--serve-price", "2.5"],
    ],
    "loss": [["loss", "--params", "7B", "--tokens", "1T", "--law", "all"], ["loss", "--params", "6.34B", "--tokens", "242B", "--unique-tokens", "25B"]],
    "compute": [
        ["compute", "--params", "7B", "--tokens", "2T", "--gpu", "a100", "--gpus", "1024", "--price", "2"],
        ["compute", "--preset", "llama-2-7b", "--tokens", "2T"],
        ["compute", "--budget", "3000pfd", "--gpu", "h100"],
        ["compute", "--gpu", "h100", "--gpus", "256", "--days", "30", "--price", "2"],
    ],
    "compare": [["compare"], ["compare", "--law", "tokens-per-param"]],
    "fit": [["fit", "tests/data/fit_runs_noisy.csv"], ["fit", "tests/data/fit_runs_noisy.csv", "--bootstrap", "20", "--seed", "1"], ["fit", "tests/data/fit_runs_noisy.csv", "--residuals"], ["fit", "tests/data/isoflop_runs.csv", "--method", "isoflop"], ["fit", "tests/data/isoflop_runs.csv", "--method", "isoflop", "--minima"]],
    "arch": [["arch", "--preset", "llama-2-7b"], ["arch", "--preset", "deepseek-v3"], ["arch", "--preset", "t5-11b"], ["arch", "--target", "7B"], ["arch", "--safetensors", "tests/data/tiny_llama_checkpoint"]],
    "memory": [
        ["memory", "--params", "7B", "--dtype", "bf16"],
        ["memory", "--preset", "llama-2-7b", "--batch", "8", "--context", "4096", "--gpu", "h100"],
        ["memory", "--preset", "llama-2-7b", "--train", "--seq", "4096", "--gpu", "a100"],
        ["memory", "--preset", "llama-2-7b", "--train", "--seq", "4096", "--phases"],
    ],
    "throughput": [["throughput", "--preset", "llama-2-70b", "--gpu", "h100", "--gpus", "64", "--global-batch", "128", "--tp", "8", "--pp", "2", "--sequence-parallel", "--zero", "1"]],
    "layout": [["layout", "--preset", "llama-2-13b", "--gpu", "h100", "--gpus", "16", "--global-batch", "64", "--top", "2"]],
    "serve": [["serve", "--preset", "llama-3-8b", "--gpu", "h100", "--batch", "1:4", "--price", "2"]],
    "data filter": [
        ["data", "filter", "--pool", "15T", "--budget", "1e24"],
        ["data", "filter", "--priors"],
        ["data", "filter", "--buckets", "tests/data/bucket_runs.csv", "--bucket-tokens", "100B", "--tokens", "1T"],
    ],
    "data domain": [
        ["data", "domain", "--domain-tokens", "363B", "--general-tokens", "345B", "--gpu-hours", "1.3M", "--gpu", "a100-40gb", "--mfu", "0.327", "--trained-tokens", "569B"],
        ["data", "domain", "--domain-tokens", "50B", "--budget", "1e22,1e23"],
    ],
    "data mix": [["data", "mix", "tests/data/mix_runs.csv"]],
    "dtypes": [["dtypes"], ["dtypes", "--params", "7B"]],
    "gpus": [["gpus"]],
    "presets list": [["presets", "list", "--kind", "models"], ["presets", "list", "--kind", "laws"], ["presets", "list", "--kind", "gpus"], ["presets", "list", "--kind", "hparams"], ["presets", "list", "--kind", "runs"], ["presets", "list"]],
    "presets show": [["presets", "show", "llama-2-7b"], ["presets", "show", "chinchilla", "--kind", "laws"], ["presets", "show", "h100"]],
}

# Keys renamed so that one quantity has one name across commands (CHANGELOG.md says when):
# (commands, old key, new key).
RENAMED: list[tuple[str, str, str]] = [
    ("gpus", "id", "gpu"),
    ("gpus", "peak_<dtype>_flops", "peak_<dtype>_flops_per_second"),
    ("presets list, presets show (GPUs)", "id", "gpu"),
    ("presets list, presets show (GPUs)", "bandwidth", "bandwidth_bytes_per_second"),
    ("presets list, presets show (GPUs)", "intra_node_bandwidth", "intra_node_bandwidth_bytes_per_second"),
    ("presets list, presets show (GPUs)", "inter_node_bandwidth", "inter_node_bandwidth_bytes_per_second"),
    ("presets list, presets show (GPUs)", "peak_<dtype>", "peak_<dtype>_flops_per_second"),
    ("presets list, presets show (GPUs)", "sparse_<dtype>", "sparse_<dtype>_flops_per_second"),
    ("presets list, presets show (models)", "id", "model"),
    ("presets list, presets show (laws)", "id", "law"),
    ("compare", "id", "model"),
    ("arch", "family", "architecture"),
    ("arch", "kv_cache_per_token_bytes", "kv_cache_bytes_per_token"),
    ("dtypes", "name", "dtype"),
    ("dtypes", "bytes", "bytes_per_value"),
    ("fit --method isoflop --minima", "opt_params", "optimal_params"),
    ("fit --method isoflop --minima", "opt_tokens", "optimal_tokens"),
    ("fit --method isoflop --minima", "min_loss", "optimal_loss"),
]

# Unit by key, most specific first: (predicate on the key, unit).
_UNIT_RULES: list[tuple[object, str]] = [
    (lambda k: k.endswith("flops_per_second_per_gpu"), "FLOP/s per GPU"),
    (lambda k: k.endswith("_per_second_per_gpu"), "per second per GPU"),
    (lambda k: k.endswith("_per_second") or k.endswith("_per_s") or "_per_second_per_" in k, "per second"),
    (lambda k: k == "bandwidth", "bytes per second"),
    (lambda k: k.endswith("_bytes") or k == "bytes", "bytes"),
    (lambda k: "flops" in k and "per_token" in k, "FLOPs per token"),
    (lambda k: "bytes_per_token" in k, "bytes per token"),
    (lambda k: k.startswith("peak_") or k.startswith("sparse_"), "FLOP/s"),
    (lambda k: k.endswith("flops") or k.startswith("flops") or k == "saving_flops", "FLOPs"),
    (lambda k: k.endswith("pf_days") or k == "pf_days_reported", "PF-days"),
    (lambda k: k.endswith("_seconds") or k == "seconds", "seconds"),
    (lambda k: k.endswith("gpu_hours"), "GPU-hours"),
    (lambda k: k.endswith("_fraction") or k.endswith("_share") or k.endswith("mfu") or k in ("hfu", "matmul_efficiency", "goodput"), "fraction (0 to 1)"),
    (lambda k: k.endswith("_joules"), "joules"),
    (lambda k: k.endswith("_kwh"), "kWh"),
    (lambda k: k.endswith("_watts"), "watts"),
    (lambda k: k.endswith("_watts_per_gpu"), "watts per GPU"),
    (lambda k: k.endswith("_usd_per_gpu_hour"), "USD per GPU-hour"),
    (lambda k: k.endswith("_usd"), "USD"),
    (lambda k: k.endswith("_mfu") or k.endswith("_efficiency"), "fraction (0 to 1)"),
    (lambda k: k == "cost" or k.startswith("cost_"), "currency (as --price)"),
    (lambda k: "_per_param" in k or k.endswith("_ratio") or k == "ratio", "ratio"),
    (lambda k: k in ("params", "tokens") or k.endswith("_params") or k.endswith("_tokens") or k.startswith("params_") or k.startswith("tokens_"), "count"),
    (lambda k: k == "loss" or k.endswith("_loss") or k.startswith("loss_"), "nats per token"),
    (lambda k: k in ("seq", "context", "max_context"), "tokens (sequence length)"),
]


def unit_of(key: str) -> str:
    for predicate, unit in _UNIT_RULES:
        if predicate(key):  # type: ignore[operator]
            return unit
    return ""


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def run_json(argv: list[str]) -> list[dict]:
    """Run one command in this process with --format json and return its rows."""
    from llmplan.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main([*argv, "--format", "json"])
    except SystemExit as exit_:
        if exit_.code not in (0, None, 3):
            raise RuntimeError(f"`llmplan {' '.join(argv)}` exited {exit_.code}: {err.getvalue().strip()}") from None
    return json.loads(out.getvalue() or "[]")


def collect() -> dict[str, dict[str, dict]]:
    """command -> key -> {"types": JSON types seen, "seen_in": indices of the invocations emitting it}."""
    schema: dict[str, dict[str, dict]] = {}
    for command, invocations in EXAMPLES.items():
        keys: dict[str, dict] = {}
        for index, argv in enumerate(invocations):
            for row in run_json(argv):
                for key, value in row.items():
                    entry = keys.setdefault(key, {"types": set(), "seen_in": set()})
                    entry["types"].add(_json_type(value))
                    entry["seen_in"].add(index)
        schema[command] = keys
    return schema


def _type_text(types: set[str]) -> str:
    order = ["integer", "number", "string", "boolean", "array", "object"]
    if "integer" in types and "number" in types:
        types = (types - {"integer"})
    named = [t for t in order if t in types]
    return " | ".join(named) + (" or null" if "null" in types else "") if named else "null"


def markdown() -> str:
    lines = [
        "# Machine-output schema",
        "",
        "Generated by `python -m llmplan.cli.schema` (`make schema`) from the code: each command's keys in",
        "`--format json|jsonl|csv|tsv`, their JSON types and units. Values are in base units (counts,",
        "FLOPs, bytes, seconds). tests/test_schema.py fails when a key changes and this page does not.",
        "A key that is null in some rows is marked `or null`; `present` says whether every",
        "invocation emits it or, for keys that depend on options, one invocation that does.",
        "",
        "Counts (`params`, `tokens`, `*_params`, `*_tokens`) and sizes in bytes (`*_bytes`) are integers",
        "in every format. Where a count is derived rather than given (a law's optimal N and D, the tokens",
        "a budget buys, bytes that are a fraction of a model) it is rounded to the nearest whole number,",
        "so `6 * params * tokens` matches `flops` to within 1/params + 1/tokens. Ratios and rates",
        "(`tokens_per_param`, `*_per_token`, `*_per_second`) stay real numbers. Renamed keys are listed",
        "in CHANGELOG.md and below.",
        "",
        "## Renamed keys",
        "",
        "| command | old key | new key |",
        "| --- | --- | --- |",
        *(f"| {command} | `{old}` | `{new}` |" for command, old, new in RENAMED),
        "",
    ]
    for command, keys in collect().items():
        invocations = EXAMPLES[command]
        lines += [f"## llmplan {command}", "", "| key | type | unit | present |", "| --- | --- | --- | --- |"]
        for key, entry in keys.items():
            types = entry["types"]
            unit = unit_of(key) if types & {"integer", "number"} else ""
            if len(entry["seen_in"]) == len(invocations):
                present = "always"
            else:
                first = invocations[min(entry["seen_in"])]
                present = "e.g. with `" + " ".join(first[len(command.split()):]) + "`"
            lines.append(f"| `{key}` | {_type_text(types)} | {unit} | {present} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown())
