"""What the training-step commands share (throughput, layout): the model, run and cluster from their
options, and a timed layout as a row."""

from __future__ import annotations

from typing import Any

from llmplan.commands import args
from llmplan.commands.notes import note
from llmplan.errors import InputError


def resolve_inputs(*, preset, hf_config, safetensors, flags, hf=None, presets, seq, global_batch, batch_tokens, dtype, gpu,
                   gpus_per_node, intra_bw, inter_bw, matmul_efficiency, attention, dropout, overlap_dp, command,
                   stack=None, compile_=None):
    """(model name, Shape, Run, GPU) from the shared options; the run carries the --stack."""
    from llmplan.model.source import resolve_model
    from llmplan.presets import catalog
    from llmplan.systems.gpu import GPU
    from llmplan.systems.layout import Run
    from llmplan.units import parse_count

    model = resolve_model(preset=preset, hf=hf, hf_config=hf_config, safetensors=safetensors, presets=presets,
                          command=command, need_shape=True, **flags)
    for line in model.notes:
        note(line)
    shape = model.shape
    if shape is None:
        raise InputError(f"{command} needs the model's shape (layers, width, heads): give --preset, --hf, --hf-config or shape flags")
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
    dtype = args.parse_dtype(dtype, args.TRAIN_DTYPES)
    if matmul_efficiency is not None and not 0 < matmul_efficiency <= 1:
        raise InputError(f"--matmul-efficiency {matmul_efficiency} must be a fraction of the peak in (0, 1]")
    if gpus_per_node is not None and gpus_per_node < 1:
        raise InputError(f"--gpus-per-node must be positive, not {gpus_per_node}")
    device = catalog(presets).get("gpus", gpu)
    cluster = GPU.from_preset(device, dtype, gpus_per_node, args.parse_bandwidth(intra_bw, "--intra-bw"),
                              args.parse_bandwidth(inter_bw, "--inter-bw"), matmul_efficiency)
    run = Run(seq=seq, global_batch=global_batch, attention=args.choice(attention, ("flash", "eager"), "--attention"),
              dropout=dropout, overlap_dp=overlap_dp, compute_bytes=2, stack=args.load_stack(stack, presets, compile_))
    return model.name, shape, run, cluster


def run_options(values: dict[str, Any]) -> dict[str, Any]:
    """The options of a model, run and cluster (`resolve_inputs`) as Python may give them, checked as the
    command line's parser checks them: whole numbers, numbers, switches, text."""
    checked = dict(values)
    for name in ("seq", "global_batch", "gpus_per_node"):
        checked[name] = args.integer(values[name], "--" + name.replace("_", "-"))
    checked["matmul_efficiency"] = args.number(values["matmul_efficiency"], "--matmul-efficiency")
    for name in ("dropout", "overlap_dp"):
        checked[name] = args.switch(values[name], "--" + name.replace("_", "-"))
    checked["compile_"] = None if values["compile_"] is None else args.switch(values["compile_"], "--compile")
    for name in ("batch_tokens", "intra_bw", "inter_bw"):
        checked[name] = args.text(values[name])
    return checked


def build_row(model: str, cluster, run, layout, step, memory) -> dict[str, Any]:
    """One row: the step, the layout's keys, memory per GPU and the breakdown (seconds and fractions)."""
    s = step.row()
    row: dict[str, Any] = {
        "model": model, "gpu": cluster.gpu, "gpus": int(layout.gpus), "dtype": cluster.dtype, "stack": run.software.id, "seq": run.seq,
        "global_batch": run.global_batch, "tokens": run.global_batch * run.seq,
        "step_seconds": s["step_seconds"], "tokens_per_second": s["tokens_per_second"],
        "tokens_per_second_per_gpu": s["tokens_per_second_per_gpu"],
        "model_flops_per_second_per_gpu": s["model_flops_per_second_per_gpu"],
        "hardware_flops_per_second_per_gpu": s["hardware_flops_per_second_per_gpu"],
        "mfu": s["mfu"], "hfu": s["hfu"],
        **layout.keys(),
        "micro_batches": int(round(s["micro_batches"])),
        "total_bytes": int(round(memory.total_bytes)), "fits": bool(memory.total_bytes <= cluster.capacity_bytes),
    }
    for part in step.PARTS:
        row[f"{part}_seconds"] = s[f"{part}_seconds"]
    for part in step.PARTS:
        row[f"{part}_fraction"] = s[f"{part}_fraction"]
    for part in step.COMPUTE_PARTS:  # compute_seconds, kernel by kernel
        row[f"{part}_seconds"] = s[f"{part}_seconds"]
    return row


class Step:
    """What a training-step command's table is drawn from (Rows.detail): the model's name, the run, the
    cluster, the GPUs, and the notes said after the table (`closing`: the table's own summary goes before them)."""

    def __init__(self, model: str, run: Any, cluster: Any, gpus: int, closing: list[str], **more: Any) -> None:
        self.model, self.run, self.cluster, self.gpus, self.closing = model, run, cluster, gpus, closing
        self.__dict__.update(more)


def close(messages: list[str]) -> list[str]:
    """Say the notes that come after a table (Step.closing), in order."""
    for message in messages:
        note(message)
    return messages


def split_notes(rows: Any) -> tuple[list, list]:
    """The notes a training-step command said (Rows.said) as (before its table's summary, after it)."""
    closing = set(rows.detail.closing)
    return [s for s in rows.said if s[1] not in closing], [s for s in rows.said if s[1] in closing]
