"""`llmplan gpus` as a function: the accelerator catalog (dense peak throughput)."""

from __future__ import annotations

from typing import Any

from llmplan.commands.result import Rows, command

PEAKS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")


def gpu_row(preset: Any) -> dict:
    row = {"gpu": preset.id, "name": preset.name, "memory_bytes": preset["memory_bytes"], "bandwidth_bytes_per_second": preset["bandwidth"]}
    for dtype in PEAKS:
        row[f"peak_{dtype}_flops_per_second"] = preset.get(f"peak_{dtype}")
    row["gpus_per_node"] = preset.get("gpus_per_node")
    row["intra_node_bandwidth_bytes_per_second"] = preset.get("intra_node_bandwidth")
    row["inter_node_bandwidth_bytes_per_second"] = preset.get("inter_node_bandwidth")
    row["matmul_efficiency"] = preset.get("matmul_efficiency")
    row["device_memory_bytes"] = preset.get("device_memory_bytes")
    row["source"] = preset["source"]
    return row


@command
def gpus(*, presets: Any = None) -> Rows:
    """The GPU and TPU catalog (`llmplan gpus`): memory, bandwidth and dense peak FLOP/s per dtype,
    one row per accelerator (with `presets`, a folder whose gpus.toml adds to the shipped ones).

    Example: [r["gpu"] for r in llmplan.gpus() if r["memory_bytes"] >= 80e9]
    """
    from llmplan.presets import catalog

    return Rows([gpu_row(p) for p in catalog(presets).all("gpus")])
