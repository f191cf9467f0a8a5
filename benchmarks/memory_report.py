"""Predicted vs measured GPU memory for every case of tests/data/gpu_memory_calibration.jsonl.

Run: python benchmarks/memory_report.py   (prints one table; the tests assert the tolerances)

Training cases: total_bytes with --overhead 0 against peak_step_bytes (torch.cuda.max_memory_allocated
over a whole step), with the AdamW implementation each case ran ("AdamW default" = fused=False with
foreach unset = the for-loop; "AdamW fused") and --attention auto; the phase the model puts the peak in;
and the saved activations against saved_activations_bytes (what one forward pass with loss holds).
Weights cases: weights_bytes against the allocator bytes added by building the model. Then every phase
of the recorded CPU timelines (tests/data/memory_timeline_cpu.json, benchmarks/torch_memory_timeline.py):
the worst error per phase.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmplan.model import arch  # noqa: E402
from llmplan.systems.memory import estimate as memory
from llmplan.systems.memory import allocator

SHAPES = {"llama-134m": arch.Shape(layers=12, d_model=768, heads=12, kv_heads=12, ffn=2048, vocab=32000, context=2048, name="llama-134m")}
MODES = {"fp32": ("fp32", "fp32"), "amp-bf16": ("amp", "bf16"), "bf16": ("pure", "bf16")}


def cases(path: Path = ROOT / "tests" / "data" / "gpu_memory_calibration.jsonl") -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        shape = SHAPES.get(row.get("model"))
        if row.get("case") == "weights" and shape is not None:
            predicted = allocator.weights_bytes(shape, arch.params(shape), row["dtype"])
            out.append({"case": f"weights {row['model']} {row['dtype']}", "quantity": "weights_bytes",
                        "predicted": predicted, "measured": row["weights_bytes"]})
        elif row.get("case") == "train" and shape is not None and row.get("ok"):
            precision, dtype = MODES[row["mode"]]
            req = memory.Request(shape=shape, dtype=dtype, train=True, precision=precision, batch=row["batch"],
                                 seq=row["seq"], recompute="full" if row["ckpt"] else "none",
                                 attention="eager" if row["attn"] == "eager" else "auto", overhead=0,
                                 optimizer_impl="fused" if row["optimizer"].endswith("fused") else "for-loop")
            b = memory.estimate(req)
            name = f"train {row['model']} {row['mode']} b{row['batch']}x{row['seq']}" + (" ckpt" if row["ckpt"] else "") + (" eager" if row["attn"] == "eager" else "")
            out.append({"case": name, "quantity": f"total_bytes ({b.phase})", "predicted": b.total_bytes, "measured": row["peak_step_bytes"]})
            # measured after autocast exits: the saved tensors plus the autocast weight copies they reference
            saved = b.activations_bytes + b.phases["start of backward"]["autocast_cache"]
            out.append({"case": name, "quantity": "saved activations + autocast copies", "predicted": saved, "measured": row["saved_activations_bytes"]})
    for row in out:
        row["error"] = row["predicted"] / row["measured"] - 1
    return out


def cpu_phases(path: Path = ROOT / "tests" / "data" / "memory_timeline_cpu.json") -> dict[str, tuple[float, int, int]]:
    """Worst relative error per phase over the CPU timelines, with how many runs and peak phases agreed."""
    modes = {"fp32": ("fp32", "fp32"), "amp": ("amp", "bf16"), "bf16": ("pure", "bf16")}
    worst: dict[str, float] = {}
    agree = total = 0
    for r in json.loads(path.read_text())["cases"]:
        if r["shape"] == "llama-134m":
            continue
        precision, dtype = modes[r["mode"]]
        shape = arch.Shape(layers=r["layers"], d_model=r["d_model"], heads=r["heads"], kv_heads=r["kv_heads"], ffn=r["ffn"],
                           vocab=r["vocab"], tied_embeddings=r["tied"], context=r["seq"],
                           experts=r.get("experts", 0), experts_per_token=r.get("top_k", 0))
        b = memory.estimate(memory.Request(shape=shape, dtype=dtype, precision=precision, train=True, batch=r["batch"],
                                           seq=r["seq"], recompute="full" if r["ckpt"] else "none",
                                           attention="flash" if r["attn"] == "auto" else r["attn"],
                                           optimizer_impl=r["optimizer_impl"], overhead=0, device="cpu"))
        base = b.weights_bytes + b.optimizer_bytes
        measured = r["phase_peaks_above_start_bytes"]
        for phase, value in b.phase_totals().items():
            worst[phase] = max(worst.get(phase, 0.0), abs((value - base) / measured[phase] - 1))
        total += 1
        agree += b.phase == r["peak_phase"] or measured[b.phase] >= (1 - 1e-4) * measured[r["peak_phase"]]
    return {phase: (err, agree, total) for phase, err in worst.items()}


def main() -> int:
    rows = cases()
    print(f"{'case':44} {'quantity':42} {'predicted':>16} {'measured':>16} {'error':>8}")
    for r in rows:
        print(f"{r['case']:44} {r['quantity']:42} {r['predicted']:16,.0f} {r['measured']:16,.0f} {r['error']:+8.2%}")
    worst = max(abs(r["error"]) for r in rows)
    print(f"\nworst |error|: {worst:.2%} over {len(rows)} comparisons (H100, PyTorch 2.11; tolerance 5% on peaks, 1% on weights)")
    if not (ROOT / "tests" / "data" / "memory_timeline_cpu.json").is_file():
        return 0
    phases = cpu_phases()
    agree, total = next(iter(phases.values()))[1:]
    print(f"\nCPU timelines (torch 2.13, {total} runs; peak phase right in {agree}): worst |error| per phase")
    for phase, (err, _, _) in phases.items():
        print(f"  {phase:28} {err:6.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
