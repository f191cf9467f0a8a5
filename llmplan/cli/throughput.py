"""`llmplan throughput`: step time, MFU and where the time goes, for one parallel layout.

Also the options and row building that `llmplan layout` shares (model, run, cluster).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Optional

import typer

from llmplan.cli import model_options as mo
from llmplan.cli.common import FormatOption, PresetsOption, catalog, emit, note, output_format
from llmplan.errors import InputError
from llmplan.systems.layout import RECOMPUTE

app = typer.Typer()

# ----- options shared with `llmplan layout` ---------------------------------------------------------
SeqOption = Annotated[Optional[int], typer.Option("--seq", help="Training sequence length (default: the model's pre-training context).", show_default=False)]
GlobalBatchOption = Annotated[Optional[int], typer.Option("--global-batch", help="Sequences per optimizer step (all replicas).", show_default=False)]
BatchTokensOption = Annotated[Optional[str], typer.Option("--batch-tokens", help="Tokens per optimizer step instead of --global-batch (e.g. 16M); a multiple of --seq.", show_default=False)]
DtypeOption = Annotated[str, typer.Option("--dtype", help="Compute precision: bf16, fp16 or fp8 (fp8 matmuls at the fp8 peak; weights and states as bf16 mixed precision).")]
GpuOption = Annotated[str, typer.Option("--gpu", "-g", help="GPU from the catalog (llmplan gpus): peak, HBM, scale-up domain, link bandwidths.")]
GpusOption = Annotated[Optional[int], typer.Option("--gpus", "-k", help="GPUs in all (data parallel = gpus / (tp * pp * cp)).", show_default=False)]
GpusPerNodeOption = Annotated[Optional[int], typer.Option("--gpus-per-node", help="Override the scale-up domain (8 for DGX/HGX, 72 for NVL72).", show_default=False)]
IntraBwOption = Annotated[Optional[str], typer.Option("--intra-bw", help="Override the intra-node bandwidth per GPU per direction: 450GB (bytes/s), 3.6Tb/s (bits/s) or a number of bytes/s.", show_default=False)]
InterBwOption = Annotated[Optional[str], typer.Option("--inter-bw", help="Override the inter-node bandwidth per GPU per direction, e.g. 400Gb/s or 50GB.", show_default=False)]
MatmulEffOption = Annotated[Optional[float], typer.Option("--matmul-efficiency", help="Override the achievable fraction of the dense peak for large matmuls (catalog: measured, else 0.806 from our H100 measurement).", show_default=False)]
AttentionOption = Annotated[str, typer.Option("--attention", help="flash (FlashAttention kernels) or eager (Megatron fused softmax: s^2 scores in HBM).")]
DropoutOption = Annotated[bool, typer.Option("--dropout/--no-dropout", help="Dropout on attention probabilities and residuals (GPT-3/Megatron 0.1); modern LLMs train without.")]
OverlapOption = Annotated[bool, typer.Option("--overlap-dp/--no-overlap-dp", help="Gradient reduction overlaps backward (DDP buckets, Megatron --overlap-grad-reduce).")]
TpAcrossOption = Annotated[bool, typer.Option("--tp-across-nodes", help="Allow tensor parallelism beyond one node (slow; off by default).")]

DTYPES = ("bf16", "fp16", "fp8")


def parse_bandwidth(text: str | None, option: str) -> float | None:
    """'450GB', '450GB/s', '400Gb/s', '400Gbps', '1.8TB/s' or a plain number, to bytes per second."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgtp]?)(b|B|bit|bits|byte|bytes)?\s*(/s|ps)?\s*", text)
    if not m:
        raise InputError(f"{option} {text!r} is not a bandwidth; give bytes/s such as 450GB or 50e9, or bits/s such as 400Gb/s")
    value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15}[m.group(2).lower()]
    unit = m.group(3) or "B"
    if unit in ("b", "bit", "bits"):
        value /= 8
    if not value > 0:
        raise InputError(f"{option} must be positive, not {text!r}")
    return value


def choice(value: str, allowed, option: str) -> str:
    import difflib

    key = value.strip().lower()
    if key not in allowed:
        close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
        raise InputError(f"{option} {value!r} is not one of {', '.join(allowed)}" + (f"; did you mean {close[0]}?" if close else ""))
    return key


def resolve_inputs(*, preset, hf_config, safetensors, flags, presets, seq, global_batch, batch_tokens, dtype, gpu,
                   gpus_per_node, intra_bw, inter_bw, matmul_efficiency, attention, dropout, overlap_dp, command):
    """(model name, Shape, Run, GPU) from the shared options."""
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Run
    from llmplan.units import parse_count

    model = mo.resolve_model(preset=preset, hf_config=hf_config, safetensors=safetensors, presets=presets,
                             command=command, need_shape=True, **flags)
    for line in model.notes:
        note(line)
    shape = model.shape
    if shape is None:
        raise InputError(f"{command} needs the model's shape (layers, width, heads): give --preset, --hf-config or shape flags")
    if shape.family != "decoder":
        raise InputError(f"{command} models decoder-only transformers; {model.name} is a {shape.family}")
    seq = seq or model.train_context or shape.context
    if seq < 1:
        raise InputError(f"--seq must be positive, not {seq}")
    if global_batch is not None and batch_tokens is not None:
        raise InputError("give --global-batch (sequences) or --batch-tokens (tokens), not both")
    if batch_tokens is not None:
        tokens = parse_count(batch_tokens, "a token count")
        if tokens % seq:
            raise InputError(f"--batch-tokens {batch_tokens} is not a multiple of --seq {seq}; try {max(1, round(tokens / seq)) * seq}")
        global_batch = int(tokens // seq)
    if global_batch is None:
        raise InputError("give the global batch: --global-batch SEQUENCES or --batch-tokens TOKENS (e.g. --global-batch 1024)")
    if global_batch < 1:
        raise InputError(f"--global-batch must be positive, not {global_batch}")
    dtype = choice(dtype, DTYPES, "--dtype")
    if matmul_efficiency is not None and not 0 < matmul_efficiency <= 1:
        raise InputError(f"--matmul-efficiency {matmul_efficiency} must be a fraction of the peak in (0, 1]")
    if gpus_per_node is not None and gpus_per_node < 1:
        raise InputError(f"--gpus-per-node must be positive, not {gpus_per_node}")
    device = catalog(presets).get("gpus", gpu)
    cluster = GPU.from_preset(device, dtype, gpus_per_node, parse_bandwidth(intra_bw, "--intra-bw"),
                              parse_bandwidth(inter_bw, "--inter-bw"), matmul_efficiency)
    run = Run(seq=seq, global_batch=global_batch, attention=choice(attention, ("flash", "eager"), "--attention"),
              dropout=dropout, overlap_dp=overlap_dp, compute_bytes=2)
    return model.name, shape, run, cluster


def build_row(model: str, cluster, run, layout, step, memory) -> dict[str, Any]:
    """One row: the step, the layout's keys, memory per GPU and the breakdown (seconds and fractions)."""
    s = step.row()
    row: dict[str, Any] = {
        "model": model, "gpu": cluster.gpu, "gpus": int(layout.gpus), "dtype": cluster.dtype, "seq": run.seq,
        "global_batch": run.global_batch, "tokens": run.global_batch * run.seq,
        "step_seconds": s["step_seconds"], "tokens_per_second": s["tokens_per_second"],
        "tokens_per_second_per_gpu": s["tokens_per_second_per_gpu"],
        "model_flops_per_second_per_gpu": s["model_flops_per_second_per_gpu"],
        "hardware_flops_per_second_per_gpu": s["hardware_flops_per_second_per_gpu"],
        "mfu": s["mfu"], "hfu": s["hfu"],
        **layout.keys(),
        "micro_batches": int(round(s["micro_batches"])),
        "total_bytes": int(round(memory.total_bytes)), "fits": bool(memory.total_bytes <= cluster.memory_bytes),
    }
    for part in step.PARTS:
        row[f"{part}_seconds"] = s[f"{part}_seconds"]
    for part in step.PARTS:
        row[f"{part}_fraction"] = s[f"{part}_fraction"]
    return row


TABLE_COLUMNS = ["tp", "pp", "vp", "dp", "cp", "ep", "zero", "micro_batch", "recompute", "total_bytes", "step_seconds", "mfu",
                 "compute_fraction", "tp_comm_fraction", "pp_comm_fraction", "bubble_fraction", "dp_comm_fraction",
                 "cp_comm_fraction", "ep_comm_fraction", "optimizer_fraction"]
# Most important first: at 80 columns the breakdown's smaller parts give way before the layout, time and MFU.
TABLE_PRIORITY = ["rank", "tp", "pp", "dp", "step_seconds", "mfu", "total_bytes", "vp", "cp", "ep", "zero", "micro_batch",
                  "recompute", "compute_fraction", "tp_comm_fraction", "dp_comm_fraction", "bubble_fraction",
                  "pp_comm_fraction", "cp_comm_fraction", "ep_comm_fraction", "optimizer_fraction"]
TABLE_LABELS = {"micro_batch": "mb", "recompute": "recomp", "total_bytes": "mem/GPU", "step_seconds": "step",
                "compute_fraction": "comp%", "tp_comm_fraction": "tp%", "pp_comm_fraction": "p2p%", "bubble_fraction": "bubble%",
                "dp_comm_fraction": "dp%", "cp_comm_fraction": "cp%", "ep_comm_fraction": "ep%", "optimizer_fraction": "optim%"}


def table_columns(rows) -> list[str]:
    """The table drops parallel dimensions and breakdown parts that are zero in every row."""
    keep = []
    for c in TABLE_COLUMNS:
        if c in ("cp", "ep", "vp") and all(r[c] == 1 for r in rows):
            continue
        if c.endswith("_fraction") and c != "compute_fraction" and all(r[c] < 0.0005 for r in rows):
            continue
        keep.append(c)
    return keep


@app.command(help="""Step time, tokens/s and MFU of one parallel layout, and where the time goes.

Counts, per micro-batch and per pipeline stage: matmuls at the GPU's achievable matmul rate plus their operand traffic (small GEMMs run slower), attention at the flash kernel's rate, element-wise work at HBM bandwidth, tensor-parallel collectives per layer, pipeline p2p and the bubble (pp-1)/(vp*m), data-parallel gradient reduction (exposed part), ZeRO-3 gathers, context-parallel ring exchange, expert-parallel all-to-all and the optimizer step. mfu counts 6N + 12*L*H*Q*T per token (PaLM App. B); hfu adds recomputation. total_bytes and fits come from llmplan memory.

Examples:

  llmplan throughput --preset llama-3.1-405b --gpu h100 --gpus 16384 --seq 8192 --global-batch 2048 --tp 8 --pp 2 --vp 21 --sequence-parallel --zero 1 --recompute full

  llmplan throughput --preset llama-2-7b --gpu a100 --gpus 64 --global-batch 512 --zero 3 --micro-batch 2

  llmplan throughput --layers 96 --d-model 12288 --heads 96 --vocab 51200 --mlp gelu --seq 2048 --global-batch 64 --gpu a100 --gpus 64 --tp 8 --pp 8 --attention eager --dropout --recompute selective --sequence-parallel -f json
""")
def throughput(
    preset: mo.PresetOption = None,
    hf_config: mo.HfConfigOption = None,
    safetensors: mo.SafetensorsOption = None,
    layers: mo.LayersOption = None,
    d_model: mo.DModelOption = None,
    heads: mo.HeadsOption = None,
    kv_heads: mo.KvHeadsOption = None,
    head_dim: mo.HeadDimOption = None,
    ffn: mo.FfnOption = None,
    mlp: mo.MlpOption = None,
    vocab: mo.VocabOption = None,
    tied: mo.TiedOption = None,
    experts: mo.ExpertsOption = None,
    experts_per_token: mo.ExpertsPerTokenOption = None,
    shared_experts: mo.SharedExpertsOption = None,
    moe_ffn: mo.MoeFfnOption = None,
    dense_layers: mo.DenseLayersOption = None,
    seq: SeqOption = None,
    global_batch: GlobalBatchOption = None,
    batch_tokens: BatchTokensOption = None,
    micro_batch: Annotated[int, typer.Option("--micro-batch", help="Sequences per micro-batch.")] = 1,
    dtype: DtypeOption = "bf16",
    gpu: GpuOption = "h100",
    gpus: GpusOption = None,
    tp: Annotated[int, typer.Option("--tp", help="Tensor-parallel degree (divides the heads).")] = 1,
    sequence_parallel: Annotated[bool, typer.Option("--sequence-parallel", help="Megatron sequence parallelism with tp: norms and dropout split too; all-gather + reduce-scatter instead of all-reduce.")] = False,
    pp: Annotated[int, typer.Option("--pp", help="Pipeline-parallel degree (divides the layers).")] = 1,
    vp: Annotated[int, typer.Option("--vp", help="Virtual stages per pipeline rank (interleaved 1F1B; divides the layers per stage).")] = 1,
    cp: Annotated[int, typer.Option("--cp", help="Context-parallel degree (ring attention; divides --seq).")] = 1,
    ep: Annotated[int, typer.Option("--ep", help="Expert-parallel degree (MoE; divides the experts and dp*cp).")] = 1,
    zero: Annotated[int, typer.Option("--zero", help="ZeRO stage 0-3 over the data-parallel ranks (FSDP = 3).")] = 0,
    recompute: Annotated[str, typer.Option("--recompute", help="Activation recomputation: none, selective (attention core) or full.")] = "none",
    attention: AttentionOption = "flash",
    dropout: DropoutOption = False,
    overlap_dp: OverlapOption = True,
    gpus_per_node: GpusPerNodeOption = None,
    intra_bw: IntraBwOption = None,
    inter_bw: InterBwOption = None,
    matmul_efficiency: MatmulEffOption = None,
    fmt: FormatOption = None,
    presets: PresetsOption = None,
) -> None:
    from llmplan.systems.layout_search import check_layout, memory_breakdown
    from llmplan.systems.layout import Layout
    from llmplan.systems.step_time import step_time

    fmt = output_format(fmt)
    model, shape, run, cluster = resolve_inputs(
        preset=preset, hf_config=hf_config, safetensors=safetensors, flags=mo.shape_flags(locals()), presets=presets,
        seq=seq, global_batch=global_batch, batch_tokens=batch_tokens, dtype=dtype, gpu=gpu, gpus_per_node=gpus_per_node,
        intra_bw=intra_bw, inter_bw=inter_bw, matmul_efficiency=matmul_efficiency, attention=attention, dropout=dropout,
        overlap_dp=overlap_dp, command="llmplan throughput")
    for value, name in ((tp, "--tp"), (pp, "--pp"), (vp, "--vp"), (cp, "--cp"), (ep, "--ep"), (micro_batch, "--micro-batch")):
        if value < 1:
            raise InputError(f"{name} must be a positive whole number, not {value}")
    mp = tp * pp * cp
    if gpus is None:
        gpus = mp
    if gpus < 1:
        raise InputError(f"--gpus must be positive, not {gpus}")
    layout = Layout(tp=tp, pp=pp, vp=vp, dp=max(1, gpus // mp), cp=cp, ep=ep, zero=zero, micro_batch=micro_batch,
                    recompute=choice(recompute, RECOMPUTE, "--recompute"), sequence_parallel=sequence_parallel and tp > 1)
    check_layout(shape, run, layout, gpus)
    cluster.require_links(gpus)
    step = step_time(shape, run, layout, cluster)
    memory = memory_breakdown(shape, run, layout, dtype)
    row = build_row(model, cluster, run, layout, step, memory)
    if fmt != "table":
        emit([row], fmt)
        return
    from llmplan.units import format_bytes

    title = (f"Training step: {model} on {gpus} x {cluster.gpu} ({cluster.dtype}), {run.global_batch} x {run.seq} tokens, "
             f"{row['micro_batches']} micro-batches of {micro_batch} per replica")
    emit([row], "table", title=title, columns=table_columns([row]), labels=TABLE_LABELS, priority=TABLE_PRIORITY)
    parts = sorted(step.PARTS, key=lambda p: -row[f"{p}_seconds"])
    note(f"{row['tokens_per_second']:,.0f} tokens/s; MFU {row['mfu']:.1%}, HFU {row['hfu']:.1%}; "
         f"largest costs: " + ", ".join(f"{p.replace('_', ' ')} {row[f'{p}_fraction']:.0%}" for p in parts[:3]))
    if not row["fits"]:
        note(f"does not fit: {format_bytes(row['total_bytes'], binary=False)} per GPU > {format_bytes(cluster.memory_bytes, binary=False)}; "
             f"'llmplan layout' searches the layouts that fit")
