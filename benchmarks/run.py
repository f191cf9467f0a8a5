"""`make bench`: run every benchmarks/bench_*.py and print one table of ratios against in-run baselines.

Each bench module defines `run() -> list[dict]` with keys `benchmark`, `seconds`, `baseline`,
`baseline_seconds` (measured in the same run) and optionally `note`. Ratios, not absolute times,
are what to compare across machines.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))  # benchmarks/timing.py
    only = sys.argv[1:]
    rows = []
    for path in sorted(HERE.glob("bench_*.py")):
        if only and not any(o in path.stem for o in only):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        for row in module.run():
            row["ratio"] = row["seconds"] / row["baseline_seconds"] if row.get("baseline_seconds") else None
            rows.append(row)
    header = f"{'benchmark':44} {'seconds':>10} {'baseline':34} {'base s':>10} {'ratio':>9}  note"
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else "-"
        print(f"{r['benchmark']:44} {r['seconds']:10.4f} {r['baseline']:34} {r['baseline_seconds']:10.4f} {ratio:>9}  {r.get('note', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
