"""benchmarks/gpu_kernels.py, the prepared run for a lent GPU: its CPU smoke test (--tiny) writes one JSON
line per measurement of every kind. Needs torch, which llmplan does not: skipped without it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO


def test_the_gpu_kernel_script_measures_every_kind(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "kernels.jsonl"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_kernels.py"), "--tiny", "--out", str(out)],
                   check=True, capture_output=True, timeout=600)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = {r["kind"] for r in records}
    assert kinds == {"device", "gemm", "attention", "bandwidth", "host", "sustained"}
    gemm = [r for r in records if r["kind"] == "gemm"]
    assert all(r["tflops"] > 0 and r["tflops"] == pytest.approx(2 * r["m"] * r["n"] * r["k"] / r["seconds"] / 1e12) for r in gemm)
    assert {r["gemm"] for r in gemm} == {"qkv", "attn_out", "mlp_up", "mlp_down"}
