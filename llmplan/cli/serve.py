"""`llmplan serve`: prefill and decode time, throughput per GPU, KV capacity and cost per token."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from llmplan.cli import model_options as mo
from llmplan.cli import options
from llmplan.cli.common import catalog, emit, expand, note, output_format, warn
from llmplan.errors import InputError

app = typer.Typer()

PlotOption = options.plot_option('the frontier (tokens/s per GPU against time per output token)')

MAX_BATCHES = 4096  # rows of one sweep


def parse_batches(text: str) -> list[int]:
    """'64' -> [64]; '1:256' -> 1, 2, 4, ..., 256 (doubling, the stop included); '1:64:8' -> 1, 9, ..., 57, 64 (step 8);
    '1,8,64' -> a list."""
    text = str(text).strip()
    try:
        if "," in text:
            values = [int(v) for v in text.split(",") if v.strip()]
        elif ":" in text:
            parts = [int(v) for v in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop = parts[0], parts[1]
            if start < 1 or stop < start:
                raise InputError(f"--batch {text!r}: a range needs 1 <= START <= STOP, e.g. 1:256")
            values = []
            b = start
            step = parts[2] if len(parts) == 3 else None
            if step is not None and step < 1:
                raise InputError(f"--batch {text!r}: the step must be at least 1")
            while b < stop and len(values) <= MAX_BATCHES:
                values.append(b)
                b = b + step if step else b * 2
            values.append(stop)
        else:
            values = [int(text)]
    except ValueError:
        raise InputError(f"--batch {text!r} is not a batch size; give N, a range START:STOP (doubling) or START:STOP:STEP, or a list 1,8,64") from None
    if any(v < 1 for v in values):
        raise InputError(f"--batch {text!r}: batch sizes must be positive whole numbers")
    return values


@app.command(help="""Serving a model: time to first token, time per output token, tokens/s per GPU, KV capacity, cost per token.

As an engine runs it (--engine vllm|sglang|trtllm|llamacpp|gpt-fast; default vllm, presets/engines.toml): each phase is the sum of the kernels the engine launches at their measured rates (decode GEMMs with M = batch, decode attention by KV bytes, prefill attention by prompt length, all-reduces at small-message latency), the host's launches where the step is not a CUDA graph, and the engine's per-step overhead. Every row names its engine and keeps the roofline (roofline_*, weights_floor_seconds) beside it; memory_fraction, weights_bytes and reserved_bytes recompute kv_capacity_tokens. The batch's prompts are prefilled together, then decoded together.

Examples:

  llmplan serve --preset llama-3-8b --gpu h100 --input 2048 --output 256 --batch 1:128

  llmplan serve --preset llama-2-70b --gpu h100 --tp 4 --dtype fp8 --kv-dtype fp8 --batch 64

  llmplan serve --preset llama-2-7b --gpu h100 --dtype fp8 --kv-dtype fp8 --input 128 --output 128 --engine trtllm

  llmplan serve --preset mixtral-8x7b --gpu h100 --tp 2 --batch 1:64

  llmplan serve --preset llama-3-8b --gpu a100 --max-batch --price 2.0   # the largest batch that fits, $/M tokens

  llmplan serve --preset mistral-7b --gpu l40s --dtype int4 --batch 1,8,32 -f csv

  llmplan serve --preset llama-3-8b --gpu h100 --batch 1:256 --plot frontier.png
""")
@options.grouped(source=options.MODEL_SOURCE, shape_flags=options.SHAPE)
def serve(
    source: options.Flags = None,
    shape_flags: options.Flags = None,
    dtype: options.ServeDtypeOption = "bf16",
    kv_dtype: options.KvDtypeOption = None,
    group_size: options.GroupSizeOption = None,
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="GPU catalog id or alias (see 'llmplan gpus').")] = "h100",
    tp: Annotated[int, typer.Option("--tp", help="Tensor-parallel GPUs per model replica.")] = 1,
    ep: Annotated[bool, typer.Option("--ep", help="Expert parallelism: each of the --tp GPUs holds experts/tp whole experts (SGLang --enable-ep-moe, TensorRT-LLM moe_tp_mode); attention stays tensor-parallel.")] = False,
    gpus_per_node: Annotated[Optional[int], typer.Option("--gpus-per-node", help="GPUs sharing the intra-node link (default: the catalog's server, e.g. 8 for HGX); beyond it --tp crosses the network.", show_default=False)] = None,
    input_tokens: Annotated[int, typer.Option("--input", help="Prompt tokens per request.")] = 2048,
    output_tokens: Annotated[int, typer.Option("--output", help="Generated tokens per request.")] = 256,
    batch: Annotated[Optional[List[str]], typer.Option("--batch", "-b", help="Sequences decoded together: N, a range 1:256 (doubling; one row each: the latency/throughput frontier), START:STOP:STEP, or a list 1,8,64; '-' reads stdin. Default 1.", show_default=False)] = None,
    max_batch: Annotated[bool, typer.Option("--max-batch", help="Serve at the largest batch whose KV cache fits (one row).")] = False,
    price: options.ServePriceOption = None,
    engine: Annotated[Optional[str], typer.Option("--engine", "-e", help="Serving engine: vllm (default), sglang, trtllm, llamacpp or gpt-fast (presets/engines.toml; 'llmplan presets list --kind engines').", show_default=False)] = None,
    memory_fraction: Annotated[Optional[float], typer.Option("--memory-fraction", help="The engine's memory setting in its own meaning (vLLM gpu_memory_utilization, SGLang mem_fraction_static, TensorRT-LLM kv_cache_free_gpu_mem_fraction); default: the engine's.", show_default=False)] = None,
    matmul_efficiency: Annotated[Optional[float], typer.Option("--matmul-efficiency", help="Achievable fraction of the dense peak for matmuls (default: the GPU preset's measured value, else 0.81).", show_default=False)] = None,
    plot: PlotOption = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.systems.memory import states
    from llmplan.systems import engines, serving
    fmt = output_format(fmt)
    for value, name in ((tp, "--tp"), (input_tokens, "--input"), (output_tokens, "--output"), (group_size, "--group-size")):
        options.positive(value, name)
    if price is not None and not (price >= 0 and price < float("inf")):
        raise InputError(f"--price {price} must be a non-negative USD amount per GPU-hour, e.g. --price 2.5")
    if memory_fraction is not None and not 0 < memory_fraction <= 1:
        raise InputError(f"--memory-fraction {memory_fraction} must be in (0, 1], e.g. 0.9")
    if matmul_efficiency is not None and not 0 < matmul_efficiency <= 1:
        raise InputError(f"--matmul-efficiency {matmul_efficiency} must be in (0, 1], e.g. 0.8")
    if max_batch and batch:
        raise InputError("give --batch or --max-batch, not both")
    if plot is not None:
        from llmplan.io.plots import check_plot_path, require_matplotlib

        check_plot_path(plot)
        require_matplotlib()
    dtype_name = options.parse_dtype(dtype, states.WEIGHT_DTYPES)
    if kv_dtype is None:
        kv_name = "fp32" if dtype_name == "fp32" else ("fp16" if dtype_name == "fp16" else "bf16")
    else:
        kv_name = options.parse_dtype(kv_dtype, options.KV_DTYPES, "--kv-dtype")
    eng = engines.load(catalog(presets), engine)
    path = eng.gemm(dtype_name)
    if group_size is None:
        group_size = path.group_size or (64 if dtype_name == "nf4" else 128)
    resolved = mo.resolve_model(**source, presets=presets, command="llmplan serve", need_shape=True, **shape_flags)
    for line in resolved.notes:
        note(line)
    if resolved.shape is None:
        raise InputError(f"serving needs the model's shape (layers, widths, KV heads); {resolved.name} has none: give --preset, --hf-config, shape flags, or --safetensors with its config.json beside it")
    shape, model = resolved.shape, resolved.name
    served = serving.Served(shape, int(resolved.params), dtype_name, kv_name, tp, group_size, eng, ep)
    g = catalog(presets).get("gpus", gpu)
    options.positive(gpus_per_node, "--gpus-per-node")
    hw = serving.hardware_from_gpu(g, dtype_name, matmul_efficiency, gpus_per_node)
    if tp > 1 and not hw.intra_node_bandwidth:
        raise InputError(f"the catalog has no interconnect bandwidth for {g.id}, so --tp {tp} cannot be timed; use --tp 1 or add intra_node_bandwidth to your gpus.toml (--presets)")
    if tp > hw.gpus_per_node:
        raise InputError(f"--tp {tp} spans more than one {g.id} server of {hw.gpus_per_node} GPUs, which serving does not model; use --tp {hw.gpus_per_node} or less, or --gpus-per-node if your server holds more")
    context = input_tokens + output_tokens
    biggest = serving.max_batch(served, hw, context, memory_fraction)
    if max_batch:
        if biggest < 1:
            raise InputError(f"not one sequence of {context:,} tokens fits on {g.id} after the weights; try --tp {2 * tp}, --dtype int4, --kv-dtype fp8 or shorter --input/--output")
        batches = [biggest]
    else:
        batches = [b for group in expand(batch or ["1"], parse_batches) for b in group]
        if len(batches) > MAX_BATCHES:
            raise InputError(f"{len(batches):,} batch sizes are more than {MAX_BATCHES:,}; use a doubling range such as 1:4096")
    rows = []
    for b in batches:
        row = {"model": model, "params": served.params, **serving.serve(served, hw, b, input_tokens, output_tokens, price, memory_fraction)}
        rows.append(row)

    too_big = [r["batch"] for r in rows if not r["fits"]]
    if too_big and biggest == 0:
        from llmplan.units import format_bytes

        warn(f"the weights alone ({format_bytes(rows[0]['weights_bytes'], binary=False)} per GPU) leave no room for the KV cache "
             f"on {g.id} at memory fraction {rows[0]['memory_fraction']:g} ({rows[0]['engine']}): no batch fits (rows kept, fits = no); try a larger --tp or a smaller --dtype")
    elif too_big:
        at_once = min(biggest, eng.max_batch or biggest)
        waves = f"; {eng.name} runs them {at_once:,} at a time (running_batch)" if eng.batching == "continuous" else ""
        warn(f"batch {', '.join(map(str, too_big[:5]))}{' ...' if len(too_big) > 5 else ''} does not fit: the KV cache of "
             f"{context:,}-token sequences holds at most {biggest:,} on {g.id}{waves} (rows kept, fits = no)")
    if hw.dtype != dtype_name and dtype_name in states.QUANTISED:
        note(f"{dtype_name} weights are read at {dtype_name} and multiplied in {hw.dtype} ({path.kernel})")
    first = rows[0]
    ms = 1e3
    note(f"{eng.label}: a decode step at batch {first['running_batch']} takes {first['decode_step_seconds'] * ms:.3g} ms = GEMMs "
         f"{first['decode_gemm_seconds'] * ms:.3g} ({path.kernel}) + attention {first['decode_attention_seconds'] * ms:.3g} "
         f"+ small kernels {first['decode_small_kernels_seconds'] * ms:.3g} + all-reduce {first['decode_comm_seconds'] * ms:.3g} "
         f"+ launches {first['decode_launch_seconds'] * ms:.3g} + engine overhead {first['decode_overhead_seconds'] * ms:.3g}; "
         f"the roofline allows {first['roofline_time_per_output_token_seconds'] * ms:.3g} ms; the first token "
         f"{first['prefill_seconds'] * ms:.3g} ms = GEMMs {first['prefill_gemm_seconds'] * ms:.3g} + attention "
         f"{first['prefill_attention_seconds'] * ms:.3g} + elementwise {first['prefill_small_kernels_seconds'] * ms:.3g} + all-reduce "
         f"{first['prefill_comm_seconds'] * ms:.3g} + launches {first['prefill_launch_seconds'] * ms:.3g} + engine overhead "
         f"{first['prefill_overhead_seconds'] * ms:.3g} (roofline {first['roofline_prefill_seconds'] * ms:.3g} ms)")
    if first["decode_kv_head_reads"] > 1:
        note(f"{eng.label}'s decode attention runs one thread block per query head, so each KV head is read "
             f"{first['decode_kv_head_reads']} times per step (once per query head of its group); what the L2 cache keeps "
             f"between them is not modelled, so the attention time is an upper bound")
    note(f"KV room = ({first['memory_fraction']:.6g} x {first['memory_bytes']:,.0f} - weights {first['weights_bytes']:,} - reserved "
         f"{first['reserved_bytes']:,}) / {first['kv_cache_bytes_per_token']:,} bytes per token = {first['kv_capacity_tokens']:,} tokens per GPU")
    if plot is not None:
        from llmplan.io.plots import plot_serving_frontier

        plot_serving_frontier(plot, rows, title=f"{model} on {g.id}" + (f" x{tp}" if tp > 1 else "") + f", {eng.label}, {input_tokens} in + {output_tokens} out, {dtype_name}")
        note(f"wrote {plot}")

    from llmplan.units import format_count

    title = (f"Serving {model} ({format_count(served.params)} params) on {g.id}" + (f" x {tp} (tp)" if tp > 1 else "") + f" with {eng.label}"
             + f": {dtype_name} weights, {kv_name} KV, {input_tokens:,} in + {output_tokens:,} out; KV room "
             f"{format_count(rows[0]['kv_capacity_tokens'])} tokens per GPU, at most batch {biggest:,}")
    columns = ["batch", "prefill_seconds", "time_per_output_token_seconds", "output_tokens_per_second_per_sequence",
               "output_tokens_per_second_per_gpu", "requests_per_second", "latency_seconds", "decode_bound", "kv_cache_bytes", "fits"]
    if price is not None:
        columns += ["cost_usd_per_million_input_tokens", "cost_usd_per_million_output_tokens"]
    labels = {
        "prefill_seconds": "first token", "time_per_output_token_seconds": "per token",
        "output_tokens_per_second_per_sequence": "tok/s per seq", "output_tokens_per_second_per_gpu": "tok/s per GPU",
        "requests_per_second": "req/s", "latency_seconds": "latency", "decode_bound": "decode bound",
        "kv_cache_bytes": "KV/GPU", "cost_usd_per_million_input_tokens": "$/M in", "cost_usd_per_million_output_tokens": "$/M out",
    }
    # The table gives each time column one unit (ms for first token and per token; render.format_column).
    # At 80 columns the batch, whether it fits, its speed per user and per GPU and its cost stay.
    priority = ["batch", "fits", "time_per_output_token_seconds", "output_tokens_per_second_per_gpu", "prefill_seconds",
                "cost_usd_per_million_output_tokens", "latency_seconds", "decode_bound", "requests_per_second",
                "output_tokens_per_second_per_sequence", "cost_usd_per_million_input_tokens", "kv_cache_bytes"]
    emit(rows, fmt, title=title, columns=columns, labels=labels, priority=priority)
