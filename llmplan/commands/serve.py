"""`llmplan serve` as a function: prefill and decode time, throughput per GPU, KV capacity and cost per token."""

from __future__ import annotations

from typing import Any, Optional

from llmplan.commands import args
from llmplan.commands.notes import note, warn
from llmplan.commands.result import Rows, command
from llmplan.errors import InputError

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


class Detail:
    """What the command line's table title says: the model, the GPU, the engine, the formats, the largest batch."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


@command
def serve(
    *, dtype: str = "bf16", kv_dtype: Optional[str] = None, group_size: Any = None, gpu: str = "h100", tp: Any = 1, ep: Any = False,
    gpus_per_node: Any = None, input_tokens: Any = 2048, output_tokens: Any = 256, batch: Any = None, max_batch: Any = False,
    price: Any = None, engine: Optional[str] = None, memory_fraction: Any = None, matmul_efficiency: Any = None, plot: Any = None,
    presets: Any = None, **model_options: Any,
) -> Rows:
    """Serving a model as an engine runs it (`llmplan serve`): time to first token, time per output token,
    tokens/s per GPU, KV capacity and cost per token, one row per batch size. `batch` is a size, a range
    "1:256" (doubling), "START:STOP:STEP", a list "1,8,64", or a list of these; max_batch=True serves at the
    largest batch that fits. input= and output= are --input and --output (input_tokens=, output_tokens=).

    Example: llmplan.serve(preset="llama-3-8b", gpu="h100", batch="1:128", price=2.5)[-1]["output_tokens_per_second_per_gpu"]
    """
    from llmplan.model.source import resolve_model
    from llmplan.presets import catalog
    from llmplan.systems import engines, serving
    from llmplan.systems.memory import states

    input_tokens = args.renamed(model_options, "input", "input_tokens", input_tokens, 2048)
    output_tokens = args.renamed(model_options, "output", "output_tokens", output_tokens, 256)
    source, shape_flags = args.model_flags(model_options, "serve")
    group_size, tp, gpus_per_node, input_tokens, output_tokens = (args.integer(value, name) for value, name in (
        (group_size, "--group-size"), (tp, "--tp"), (gpus_per_node, "--gpus-per-node"), (input_tokens, "--input"), (output_tokens, "--output")))
    price, memory_fraction, matmul_efficiency = (args.number(value, name) for value, name in (
        (price, "--price"), (memory_fraction, "--memory-fraction"), (matmul_efficiency, "--matmul-efficiency")))
    ep, max_batch = args.switch(ep, "--ep"), args.switch(max_batch, "--max-batch")
    batch = args.listed(batch)
    for value, name in ((tp, "--tp"), (input_tokens, "--input"), (output_tokens, "--output"), (group_size, "--group-size")):
        args.positive(value, name)
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
    dtype_name = args.parse_dtype(dtype, states.WEIGHT_DTYPES)
    if kv_dtype is None:
        kv_name = "fp32" if dtype_name == "fp32" else ("fp16" if dtype_name == "fp16" else "bf16")
    else:
        kv_name = args.parse_dtype(kv_dtype, args.KV_DTYPES, "--kv-dtype")
    eng = engines.load(catalog(presets), engine)
    path = eng.gemm(dtype_name)
    if group_size is None:
        group_size = path.group_size or (64 if dtype_name == "nf4" else 128)
    resolved = resolve_model(**source, presets=presets, command="llmplan serve", need_shape=True, **shape_flags)
    for line in resolved.notes:
        note(line)
    if resolved.shape is None:
        raise InputError(f"serving needs the model's shape (layers, widths, KV heads); {resolved.name} has none: give --preset, --hf-config, shape flags, or --safetensors with its config.json beside it")
    shape, model = resolved.shape, resolved.name
    served = serving.Served(shape, int(resolved.params), dtype_name, kv_name, tp, group_size, eng, ep)
    g = catalog(presets).get("gpus", gpu)
    args.positive(gpus_per_node, "--gpus-per-node")
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
        batches = [b for text in batch or ["1"] for b in parse_batches(text)]
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
        at_once = min(biggest, eng.batch_cap(hw) or biggest)
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
    return Rows(rows, detail=Detail(model=model, params=served.params, gpu=g.id, tp=tp, engine=eng.label, dtype=dtype_name,
                                    kv_dtype=kv_name, input_tokens=input_tokens, output_tokens=output_tokens, biggest=biggest, price=price))
