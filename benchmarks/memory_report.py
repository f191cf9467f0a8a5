"""Predicted vs measured GPU memory for every case of tests/data/gpu_memory_calibration.jsonl.

Run: python benchmarks/memory_report.py   (prints one table; the tests assert the tolerances)

Training cases: total_bytes with --overhead 0 against peak_step_bytes (torch.cuda.max_memory_allocated
over a whole step), and activations_bytes against saved_activations_bytes (what one forward pass with
loss holds). Weights cases: weights_bytes against the allocator bytes added by building the model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmplan import arch, memory  # noqa: E402

SHAPES = {"llama-134m": arch.Shape(layers=12, d_model=768, heads=12, kv_heads=12, ffn=2048, vocab=32000, context=2048, name="llama-134m")}
MODES = {"fp32": ("fp32", "fp32"), "amp-bf16": ("amp", "bf16"), "bf16": ("pure", "bf16")}


def cases(path: Path = ROOT / "tests" / "data" / "gpu_memory_calibration.jsonl") -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        shape = SHAPES.get(row.get("model"))
        if row.get("case") == "weights" and shape is not None:
            predicted = memory.weights_bytes(shape, arch.params(shape), row["dtype"])
            out.append({"case": f"weights {row['model']} {row['dtype']}", "quantity": "weights_bytes",
                        "predicted": predicted, "measured": row["weights_bytes"]})
        elif row.get("case") == "train" and shape is not None and row.get("ok"):
            precision, dtype = MODES[row["mode"]]
            req = memory.Request(shape=shape, dtype=dtype, train=True, precision=precision, batch=row["batch"],
                                 seq=row["seq"], recompute="full" if row["ckpt"] else "none",
                                 attention="eager" if row["attn"] == "eager" else "flash", overhead=0)
            b = memory.estimate(req)
            name = f"train {row['model']} {row['mode']} b{row['batch']}x{row['seq']}" + (" ckpt" if row["ckpt"] else "") + (" eager" if row["attn"] == "eager" else "")
            out.append({"case": name, "quantity": f"total_bytes ({b.phase})", "predicted": b.total_bytes, "measured": row["peak_step_bytes"]})
            out.append({"case": name, "quantity": "activations_bytes", "predicted": b.activations_bytes, "measured": row["saved_activations_bytes"]})
    for row in out:
        row["error"] = row["predicted"] / row["measured"] - 1
    return out


def main() -> int:
    rows = cases()
    print(f"{'case':44} {'quantity':34} {'predicted':>16} {'measured':>16} {'error':>8}")
    for r in rows:
        print(f"{r['case']:44} {r['quantity']:34} {r['predicted']:16,.0f} {r['measured']:16,.0f} {r['error']:+8.2%}")
    worst = max(abs(r["error"]) for r in rows)
    print(f"\nworst |error|: {worst:.2%} over {len(rows)} comparisons (H100, PyTorch 2.11; tolerance 10% on peaks, 1% on weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
