"""`llmplan gpus`: the accelerator catalog (dense peak throughput)."""

from __future__ import annotations

import typer

from llmplan.cli.common import FormatOption, PresetsOption, catalog, emit, output_format

app = typer.Typer()

PEAKS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")


def gpu_row(preset) -> dict:
    row = {"id": preset.id, "name": preset.name, "memory_bytes": preset["memory_bytes"], "bandwidth_bytes_per_second": preset["bandwidth"]}
    for dtype in PEAKS:
        row[f"peak_{dtype}_flops"] = preset.get(f"peak_{dtype}")
    row["gpus_per_node"] = preset.get("gpus_per_node")
    row["intra_node_bandwidth_bytes_per_second"] = preset.get("intra_node_bandwidth")
    row["inter_node_bandwidth_bytes_per_second"] = preset.get("inter_node_bandwidth")
    row["matmul_efficiency"] = preset.get("matmul_efficiency")
    row["device_memory_bytes"] = preset.get("device_memory_bytes")
    row["source"] = preset["source"]
    return row


@app.command(help="""The GPU and TPU catalog: memory, bandwidth and DENSE peak FLOP/s per dtype.

Peaks are dense figures (NVIDIA datasheets print 2:4-sparse ones; dense is half). Memory in bytes:
memory_bytes is the datasheet's decimal figure, device_memory_bytes what the device itself reports
where it was measured (the H100 SXM reports 85,017,493,504 bytes: 6% more than 80e9).

Examples:

  llmplan gpus

  llmplan gpus -f json | jq '.[] | select(.memory_bytes >= 80e9) | .id'
""")
def gpus(fmt: FormatOption = None, presets: PresetsOption = None) -> None:
    fmt = output_format(fmt)
    rows = [gpu_row(p) for p in catalog(presets).all("gpus")]
    labels = {"memory_bytes": "memory", "bandwidth_bytes_per_second": "bandwidth"}
    for dtype in PEAKS:
        labels[f"peak_{dtype}_flops"] = dtype
    if fmt == "table":
        from llmplan.units import format_bytes

        rows = [
            {
                **r,
                "memory_bytes": format_bytes(r["memory_bytes"], binary=False),
                "bandwidth_bytes_per_second": f"{r['bandwidth_bytes_per_second'] / 1e12:.2f} TB/s",
                **{f"peak_{d}_flops": "-" if r[f"peak_{d}_flops"] is None else f"{r[f'peak_{d}_flops'] / 1e12:g}" for d in PEAKS},
            }
            for r in rows
        ]
    columns = ["id", "memory_bytes", "bandwidth_bytes_per_second"] + [f"peak_{d}_flops" for d in PEAKS]
    emit(rows, fmt, title="Accelerators: memory, bandwidth, dense peak TFLOP/s (TOP/s for int8)", columns=columns, labels=labels)
