"""Kernel rates on the GPU this runs on, for llmplan's step-time and serving models (issue 21, item 8).

One prepared run of a few minutes on a lent GPU; its JSON lines go to tests/data/ and become measured
rates for that GPU. It measures what presets/kernels.toml takes from published kernel benchmarks:

- gemm:      time and TFLOP/s of the matmuls of transformer layers (QKV, attention output, MLP up and
             down) over token counts from a decode step (M = 1) to a training micro-batch (M = 16384),
             in bf16 and, where the GPU has it, fp8 (torch._scaled_mm, e4m3, per-tensor scales)
- attention: scaled_dot_product_attention by backend (flash, memory-efficient, cuDNN), causal, by
             sequence length and head dim, forward and forward+backward (FLOPs counted as the
             FlashAttention papers count them: causal halves them, backward = 2.5 x forward)
- bandwidth: element-wise kernels (copy, add, an eager RMSNorm, torch's fused rms_norm) in GB/s
- host:      PyTorch's eager cost per op (a one-element add issued back to back), in microseconds
- sustained: one bf16 8192^3 GEMM back to back for `seconds` (30 on a GPU), its TFLOP/s in each
             one-second window with the SM clock and power nvidia-smi reads then: the rate a training
             step keeps once the power limit holds the clock, against the first window's burst rate
             (every other measurement here, like the MAMF tables, is a burst of under a second)
- device:    the GPU's name, memory, clocks and power limit as nvidia-smi reports them

Run:  python benchmarks/gpu_kernels.py --out "$OUT/gpu_kernels.jsonl"     (on the GPU)
      python benchmarks/gpu_kernels.py --tiny --out /tmp/k.jsonl          (CPU smoke test, seconds)

Needs torch (not a dependency of llmplan). Timing: CUDA events around `repeat` launches after
`warmup`, the median of `trials`; inputs are random normal (a GEMM's power draw, and with it the
sustained clock, depends on the data: zeros run faster than randn).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

# (name, d_model, heads, kv_heads, ffn): the layer shapes whose GEMMs are timed (presets/models.toml).
LAYERS = [("llama-3.1-8b", 4096, 32, 8, 14336), ("llama-2-13b", 5120, 40, 40, 13824), ("llama-3.1-70b", 8192, 64, 8, 28672)]
TOKENS = [1, 8, 64, 256, 1024, 4096, 16384]
SEQS = [512, 1024, 2048, 4096, 8192, 16384]
HEAD_DIMS = [64, 128]


def emit(out, record: dict) -> None:
    line = json.dumps(record, sort_keys=True)
    print(line, flush=True)
    if out:
        out.write(line + "\n")
        out.flush()


class Timer:
    """Median seconds per call of `fn` (CUDA events on a GPU, perf_counter on the CPU)."""

    def __init__(self, torch, device: str, warmup: int, repeat: int, trials: int):
        self.torch, self.device, self.warmup, self.repeat, self.trials = torch, device, warmup, repeat, trials

    def __call__(self, fn) -> float:
        torch = self.torch
        for _ in range(self.warmup):
            fn()
        times = []
        for _ in range(self.trials):
            if self.device == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(self.repeat):
                    fn()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1e3 / self.repeat)
            else:
                t = time.perf_counter()
                for _ in range(self.repeat):
                    fn()
                times.append((time.perf_counter() - t) / self.repeat)
        return statistics.median(times)


def _smi(query: str) -> dict | None:
    """GPU 0's fields as nvidia-smi reports them (numbers without units), or None without nvidia-smi."""
    try:
        text = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits", "-i", "0"], capture_output=True,
                              text=True, timeout=20).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return dict(zip(query.split(","), (v.strip() for v in text[0].split(",")))) if text else None


def device_info(torch, device: str) -> dict:
    info = {"kind": "device", "torch": torch.__version__, "device": device}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(name=props.name, memory_bytes=props.total_memory, sms=props.multi_processor_count,
                    capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda)
        info["nvidia_smi"] = _smi("clocks.max.sm,clocks.sm,power.limit,power.max_limit,memory.total")
    return info


def gemms(torch, device: str, timer: Timer, out, layers, tokens, fp8: bool) -> None:
    for name, d, heads, kv, ffn in layers:
        head = d // heads
        shapes = {"qkv": (d, d + 2 * kv * head), "attn_out": (d, d), "mlp_up": (d, 2 * ffn), "mlp_down": (ffn, d)}
        for which, (k, n) in shapes.items():
            w16 = torch.randn(n, k, device=device, dtype=torch.bfloat16)
            for m in tokens:
                x16 = torch.randn(m, k, device=device, dtype=torch.bfloat16)
                seconds = timer(lambda: torch.matmul(x16, w16.t()))
                emit(out, {"kind": "gemm", "layer": name, "gemm": which, "dtype": "bf16", "m": m, "n": n, "k": k,
                           "seconds": seconds, "tflops": 2 * m * n * k / seconds / 1e12})
                if fp8:
                    x8, w8 = x16.to(torch.float8_e4m3fn), w16.to(torch.float8_e4m3fn)
                    one = torch.ones((), device=device)
                    if m % 16 == 0:  # cuBLASLt fp8 needs dimensions that are multiples of 16
                        seconds = timer(lambda: torch._scaled_mm(x8, w8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
                        emit(out, {"kind": "gemm", "layer": name, "gemm": which, "dtype": "fp8", "m": m, "n": n, "k": k,
                                   "seconds": seconds, "tflops": 2 * m * n * k / seconds / 1e12})


def attention(torch, device: str, timer: Timer, out, seqs, head_dims, tokens_per_call: int) -> None:
    import torch.nn.functional as F

    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "mem-efficient": SDPBackend.EFFICIENT_ATTENTION}
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        backends["cudnn"] = SDPBackend.CUDNN_ATTENTION
    if device != "cuda":
        backends = {"math": SDPBackend.MATH}
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    for hd in head_dims:
        heads = max(1, 2048 // hd)  # a 2048-wide model's heads
        for s in seqs:
            b = max(1, tokens_per_call // s)
            q, k, v = (torch.randn(b, heads, s, hd, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
            grad = torch.randn(b, heads, s, hd, device=device, dtype=dtype)
            forward_flops = 4 * b * heads * s * s * hd / 2  # causal: half the scores (FlashAttention-2 paper's count)
            for name, backend in backends.items():
                try:
                    with sdpa_kernel(backend):
                        fwd = timer(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
                        both = timer(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(grad))
                except RuntimeError as error:  # the backend does not take this shape or dtype on this GPU
                    emit(out, {"kind": "attention", "backend": name, "seq": s, "head_dim": hd, "error": str(error).splitlines()[0][:200]})
                    continue
                emit(out, {"kind": "attention", "backend": name, "seq": s, "head_dim": hd, "batch": b, "heads": heads, "causal": True,
                           "fwd_seconds": fwd, "fwd_tflops": forward_flops / fwd / 1e12,
                           "fwd_bwd_seconds": both, "fwd_bwd_tflops": 3.5 * forward_flops / both / 1e12})


def bandwidth(torch, device: str, timer: Timer, out, elements: int) -> None:
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    size = torch.tensor([], dtype=dtype).element_size()
    rows = elements // 4096
    x = torch.randn(rows, 4096, device=device, dtype=dtype)
    y = torch.empty_like(x)
    w = torch.randn(4096, device=device, dtype=dtype)

    def eager_rms_norm():
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6).to(dtype) * w

    kernels = {"copy": (lambda: y.copy_(x), 2), "add": (lambda: torch.add(x, 1, out=y), 2), "rms_norm_eager": (eager_rms_norm, 2)}
    if hasattr(torch.nn.functional, "rms_norm"):
        kernels["rms_norm"] = (lambda: torch.nn.functional.rms_norm(x, (4096,), w), 2)
    for name, (fn, passes) in kernels.items():
        seconds = timer(fn)
        emit(out, {"kind": "bandwidth", "kernel": name, "bytes": passes * x.numel() * size, "seconds": seconds,
                   "gb_per_second": passes * x.numel() * size / seconds / 1e9})


def host(torch, device: str, out, ops: int) -> None:
    a = torch.ones(1, device=device)
    for _ in range(100):
        a.add_(1)
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(ops):
        a.add_(1)
    issue = time.perf_counter() - t
    if device == "cuda":
        torch.cuda.synchronize()
    emit(out, {"kind": "host", "op": "add_ one element, eager", "ops": ops, "us_per_op": issue / ops * 1e6,
               "us_per_op_with_sync": (time.perf_counter() - t) / ops * 1e6})


def sustained(torch, device: str, out, n: int, seconds: float) -> None:
    """A GEMM back to back for `seconds`: TFLOP/s per one-second window (the clock settles under the power limit)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    b = torch.randn(n, n, device=device, dtype=a.dtype)
    flops = 2 * n ** 3
    end = time.perf_counter() + seconds
    window = 0
    while time.perf_counter() < end:
        calls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < min(1.0, seconds):
            for _ in range(8):
                torch.matmul(a, b)
            calls += 8
            if device == "cuda":
                torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        record = {"kind": "sustained", "window": window, "n": n, "seconds": dt, "calls": calls, "tflops": calls * flops / dt / 1e12}
        if device == "cuda":
            record["nvidia_smi"] = _smi("clocks.sm,power.draw,temperature.gpu")
        emit(out, record)
        window += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the JSON lines here too")
    parser.add_argument("--tiny", action="store_true", help="small shapes and few repeats: a smoke test on the CPU")
    options = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("gpu_kernels.py needs torch (pip install torch); llmplan itself does not", file=sys.stderr)
        return 2
    device = "cuda" if torch.cuda.is_available() and not options.tiny else "cpu"
    out = open(options.out, "w", encoding="utf-8") if options.out else None
    try:
        emit(out, device_info(torch, device))
        if options.tiny:
            timer = Timer(torch, device, warmup=1, repeat=2, trials=3)
            layers, tokens, seqs, head_dims, attn_tokens, elements, ops = [("tiny", 256, 4, 2, 512)], [1, 64], [128, 256], [64], 512, 1 << 16, 1000
        else:
            timer = Timer(torch, device, warmup=5, repeat=20, trials=5)
            layers, tokens, seqs, head_dims, attn_tokens, elements, ops = LAYERS, TOKENS, SEQS, HEAD_DIMS, 16384, 1 << 28, 20000
        fp8 = device == "cuda" and torch.cuda.get_device_capability() >= (8, 9) and hasattr(torch, "float8_e4m3fn")
        gemms(torch, device, timer, out, layers, tokens, fp8)
        attention(torch, device, timer, out, seqs, head_dims, attn_tokens)
        bandwidth(torch, device, timer, out, elements)
        host(torch, device, out, ops)
        sustained(torch, device, out, *((256, 0.2) if options.tiny else (8192, 30.0)))
    finally:
        if out:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
