"""`llmplan gpus`: the accelerator catalog (dense peak throughput)."""

from __future__ import annotations

import typer

from llmplan.cli.common import emit, output_format, say
from llmplan.cli.options import FormatOption, PresetsOption
from llmplan.commands.gpus import PEAKS

app = typer.Typer()


@app.command(help="""The GPU and TPU catalog: memory, bandwidth and DENSE peak FLOP/s per dtype.

Peaks are dense figures (NVIDIA datasheets print 2:4-sparse ones; dense is half). Memory in bytes:
memory_bytes is the datasheet's decimal figure, device_memory_bytes what the device itself reports
where it was measured (the H100 SXM reports 85,017,493,504 bytes: 6% more than 80e9).

Examples:

  llmplan gpus

  llmplan gpus -f json | jq '.[] | select(.memory_bytes >= 80e9) | .gpu'
""")
def gpus(fmt: FormatOption = None, presets: PresetsOption = None) -> None:
    fmt = output_format(fmt)
    from llmplan.commands.gpus import gpus as compute

    rows = compute(presets=presets)
    say(rows)
    labels = {"memory_bytes": "memory", "bandwidth_bytes_per_second": "bandwidth"}
    for dtype in PEAKS:
        labels[f"peak_{dtype}_flops_per_second"] = dtype
    columns = ["gpu", "memory_bytes", "bandwidth_bytes_per_second"] + [f"peak_{d}_flops_per_second" for d in PEAKS]
    priority = ["gpu", "memory_bytes", "bandwidth_bytes_per_second"] + [f"peak_{d}_flops_per_second" for d in ("bf16", "fp8", "fp16", "tf32", "fp32", "int8")]
    emit(rows, fmt, title="Accelerators: memory, bandwidth, dense peak FLOP/s per dtype (OP/s for int8)", columns=columns, labels=labels, priority=priority)
