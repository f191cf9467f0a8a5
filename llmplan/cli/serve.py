"""`llmplan serve`: prefill and decode time, throughput per GPU, KV capacity and cost per token."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from llmplan.cli import options
from llmplan.cli.common import emit, expand, output_format, say

app = typer.Typer()

PlotOption = options.plot_option('the frontier (tokens/s per GPU against time per output token)')


@app.command(help="""Serving a model: time to first token, time per output token, tokens/s per GPU, KV capacity, cost per token.

As an engine runs it (--engine vllm|vllm-0.4|sglang|trtllm|llamacpp|gpt-fast; default vllm, the V1 engine; presets/engines.toml): each phase is the sum of the kernels the engine launches at their measured rates (decode GEMMs with M = batch, decode attention by KV bytes, prefill attention by prompt length, all-reduces at small-message latency), the host's launches where the step is not a CUDA graph, and the engine's per-step overhead. Every row names its engine and keeps the roofline (roofline_*, weights_floor_seconds) beside it; memory_fraction, weights_bytes and reserved_bytes recompute kv_capacity_tokens. The batch's prompts are prefilled together, then decoded together.

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
    engine: Annotated[Optional[str], typer.Option("--engine", "-e", help="Serving engine: vllm (default: vLLM's V1 engine), vllm-0.4, sglang, trtllm, llamacpp or gpt-fast (presets/engines.toml; 'llmplan presets list --kind engines').", show_default=False)] = None,
    memory_fraction: Annotated[Optional[float], typer.Option("--memory-fraction", help="The engine's memory setting in its own meaning (vLLM gpu_memory_utilization, SGLang mem_fraction_static, TensorRT-LLM kv_cache_free_gpu_mem_fraction); default: the engine's.", show_default=False)] = None,
    matmul_efficiency: Annotated[Optional[float], typer.Option("--matmul-efficiency", help="Achievable fraction of the dense peak for matmuls (default: the GPU preset's measured value, else 0.81).", show_default=False)] = None,
    plot: PlotOption = None,
    fmt: options.FormatOption = None,
    presets: options.PresetsOption = None,
) -> None:
    from llmplan.commands.serve import serve as compute

    fmt = output_format(fmt)
    rows = compute(dtype=dtype, kv_dtype=kv_dtype, group_size=group_size, gpu=gpu, tp=tp, ep=ep, gpus_per_node=gpus_per_node,
                   input_tokens=input_tokens, output_tokens=output_tokens, batch=expand(batch, str) if batch and not max_batch else batch,
                   max_batch=max_batch, price=price, engine=engine, memory_fraction=memory_fraction, matmul_efficiency=matmul_efficiency,
                   plot=plot, presets=presets, **source, **shape_flags)
    say(rows)
    d = rows.detail

    from llmplan.units import format_count

    title = (f"Serving {d.model} ({format_count(d.params)} params) on {d.gpu}" + (f" x {d.tp} (tp)" if d.tp > 1 else "") + f" with {d.engine}"
             + f": {d.dtype} weights, {d.kv_dtype} KV, {d.input_tokens:,} in + {d.output_tokens:,} out; KV room "
             f"{format_count(rows[0]['kv_capacity_tokens'])} tokens per GPU, at most batch {d.biggest:,}")
    columns = ["batch", "prefill_seconds", "time_per_output_token_seconds", "output_tokens_per_second_per_sequence",
               "output_tokens_per_second_per_gpu", "requests_per_second", "latency_seconds", "decode_bound", "kv_cache_bytes", "fits"]
    if d.price is not None:
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
