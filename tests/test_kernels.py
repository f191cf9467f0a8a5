"""Kernel rates (llmplan.systems.serving_kernels) against the kernel-level measurements they come from.

Each fitted constant is re-fitted here from the points kept beside it (read from the FlashInfer blog's
Figure 6, DeepGEMM's README, XLA's sm_90 GEMM table), so a constant cannot drift from its source; each
point is then held to the stated error. Nothing here is an end-to-end serving figure.
"""

from __future__ import annotations

import math
import statistics

import pytest

from llmplan.systems import serving_kernels

scipy_optimize = pytest.importorskip("scipy.optimize")


def _fit(points, bytes_of, seconds_of, bandwidth, start=(5e-6, 0.9)):
    """Least squares in log time of t = t0 + bytes / (eta x bandwidth)."""
    def residuals(p):
        return [math.log(p[0] * 1e-6 + bytes_of(x) / (p[1] * bandwidth)) - math.log(seconds_of(x)) for x in points]

    r = scipy_optimize.least_squares(residuals, [start[0] * 1e6, start[1]], bounds=([0, 0.3], [100, 1.0]))
    return r.x[0] * 1e-6, r.x[1]


def _attention_bytes(x):
    batch, length, _ = x
    return batch * length * serving_kernels.DECODE_ATTENTION_BYTES_PER_TOKEN


def _attention_seconds(x):
    # utilisation = bytes / latency / bandwidth (the blog's metric), so latency = bytes / (utilisation x bandwidth)
    return _attention_bytes(x) / (x[2] / 100 * serving_kernels.DECODE_ATTENTION_BANDWIDTH)


@pytest.mark.parametrize("name", ["flashinfer", "paged-attention-v2"])
def test_decode_attention_constants_refit_from_the_figure(name):
    points = serving_kernels.DECODE_ATTENTION_POINTS[name]
    t0, eta = _fit(points, _attention_bytes, _attention_seconds, serving_kernels.DECODE_ATTENTION_BANDWIDTH)
    k = serving_kernels.DECODE_ATTENTION[name]
    assert k.latency_seconds == pytest.approx(t0, rel=0.01) and k.bandwidth_share == pytest.approx(eta, rel=0.005)


@pytest.mark.parametrize("name,median,worst", [("flashinfer", 0.06, 0.25), ("paged-attention-v2", 0.05, 0.50)])
def test_decode_attention_meets_every_point(name, median, worst):
    """The blog's bandwidth utilisation by batch and KV length, point by point: median |error| 5-6%, the worst at
    batch 1 and short KV (where a split-KV kernel's fixed costs dominate) within the stated bound."""
    k = serving_kernels.DECODE_ATTENTION[name]
    errors = []
    for point in serving_kernels.DECODE_ATTENTION_POINTS[name]:
        t = serving_kernels.memory_kernel_seconds(k, _attention_bytes(point), serving_kernels.DECODE_ATTENTION_BANDWIDTH)
        errors.append(abs(t / _attention_seconds(point) - 1))
    assert statistics.median(errors) <= median and max(errors) <= worst


def test_decode_attention_by_batch_and_length():
    """Longer KV and bigger batches read more bytes at a higher share of bandwidth (Fig. 6's curves rise): at 64k
    tokens FlashInfer reaches 86% of bandwidth, at 1k tokens 22-28%, as the blog's H100 panel shows."""
    k, bw = serving_kernels.DECODE_ATTENTION["flashinfer"], serving_kernels.DECODE_ATTENTION_BANDWIDTH
    share = lambda tokens: tokens * serving_kernels.DECODE_ATTENTION_BYTES_PER_TOKEN / serving_kernels.memory_kernel_seconds(k, tokens * serving_kernels.DECODE_ATTENTION_BYTES_PER_TOKEN, bw) / bw  # noqa: E731
    assert 0.82 < share(65536) < 0.86 and 0.20 < share(1024) < 0.35
    assert serving_kernels.memory_kernel_seconds(k, 0, bw) == 0


def _gemm_bytes(x):
    M, N, K, _ = x
    return N * K + M * K + 2 * M * N  # FP8 weights and input, bf16 output


def _gemm_seconds(x):
    M, N, K, tflops = x
    return 2 * M * N * K / (tflops * 1e12)


def test_weight_streaming_gemm_refits_from_deepgemm():
    t0, eta = _fit(serving_kernels.GEMM_STREAM_POINTS, _gemm_bytes, _gemm_seconds, serving_kernels.GEMM_STREAM_BANDWIDTH)
    assert serving_kernels.GEMM_STREAM.latency_seconds == pytest.approx(t0, rel=0.01)
    assert serving_kernels.GEMM_STREAM.bandwidth_share == pytest.approx(eta, rel=0.005)
    errors = [serving_kernels.memory_kernel_seconds(serving_kernels.GEMM_STREAM, _gemm_bytes(x), serving_kernels.GEMM_STREAM_BANDWIDTH) / _gemm_seconds(x) - 1
              for x in serving_kernels.GEMM_STREAM_POINTS]
    assert sum(abs(e) <= 0.02 for e in errors) == 4 and max(abs(e) for e in errors) <= 0.23


def test_gemm_math_latency_refits_from_xla_table():
    """t = t_c + 2MNK / (0.8064 x 989.4 TFLOP/s) through XLA's sm_90 points: t_c re-fitted, every point within
    -11%..+17% of the measured fraction of peak."""
    peak = 989.4e12

    def residuals(p):
        return [math.log(2 * M * N * K / (p[0] * 1e-6 + 2 * M * N * K / (serving_kernels.GEMM_M_EFFICIENCY * peak)) / peak / f)
                for M, N, K, f in serving_kernels.GEMM_M_POINTS]

    r = scipy_optimize.least_squares(residuals, [5.0])
    assert serving_kernels.GEMM_COMPUTE_LATENCY == pytest.approx(r.x[0] * 1e-6, rel=0.01)
    for M, N, K, f in serving_kernels.GEMM_M_POINTS:
        t = serving_kernels.gemm_seconds(M, N, K, 0.0, 3.35e12, serving_kernels.GEMM_M_EFFICIENCY * peak)
        assert -0.11 <= 2 * M * N * K / t / peak / f - 1 <= 0.17


def test_decode_gemm_is_weight_bound_and_small_m_far_below_peak():
    """A decode GEMM (M = batch) of Llama-2-7B's MLP on an H100: at batch 1 it streams 2 bytes per weight at 83%
    of 3.35 TB/s; at M = 256 its math runs at a third of peak or less (XLA's 256-row points: 29-33%)."""
    N, K, rate, bw = 22016, 4096, 0.8064 * 989.4e12, 3.35e12
    one = serving_kernels.gemm_seconds(1, N, K, 2 * N * K, bw, rate)
    assert one == pytest.approx(2.12e-6 + 2 * N * K / (0.832 * bw), rel=1e-9)
    t = serving_kernels.gemm_seconds(256, 4096, 2048, 0.0, bw, rate)
    assert 2 * 256 * 4096 * 2048 / t / 989.4e12 < 0.40
    assert serving_kernels.gemm_seconds(0, N, K, 2 * N * K, bw, rate) == 0  # an expert no token reaches


def test_fp8_over_bf16_from_mamf():
    assert serving_kernels.FP8_OVER_BF16_EFFICIENCY == pytest.approx((1402.6 / 1979) / (794.5 / 989), rel=1e-12)
    assert 0.88 < serving_kernels.FP8_OVER_BF16_EFFICIENCY < 0.89


def test_prefill_attention_curve_interpolates_the_measured_points():
    """At the measured lengths the FA3 paper's numbers exactly (FA2, causal hdim 128, H100: 191 TFLOP/s at 512,
    335 at 16k); between them linear in log2(n); held at the ends."""
    assert serving_kernels.prefill_attention_efficiency("fa2", 512) == pytest.approx(191 / 989)
    assert serving_kernels.prefill_attention_efficiency("fa2", 16384) == pytest.approx(335 / 989)
    assert serving_kernels.prefill_attention_efficiency("fa3", 4096) == pytest.approx(579 / 989)
    assert serving_kernels.prefill_attention_efficiency("fa2", 128) == pytest.approx(191 / 989)
    assert serving_kernels.prefill_attention_efficiency("fa2", 10**6) == pytest.approx(335 / 989)
    mid = serving_kernels.prefill_attention_efficiency("fa2", 724)  # about halfway between 512 and 1024 in log2
    assert 191 / 989 < mid < 260 / 989
    curve = [serving_kernels.prefill_attention_efficiency("fa2-ampere", n) for n in (256, 700, 3000, 9000, 20000)]
    assert curve == sorted(curve)


def test_all_reduce_by_hand():
    """Ring all-reduce at NCCL's LL latency: 8 GPUs on NVLink: 6.6 us + 14 x 0.6 us + 2·7/8·S / busbw."""
    size = 8 * 8192 * 2
    assert serving_kernels.all_reduce_seconds(size, 8, 370e9, "nvlink") == pytest.approx(6.6e-6 + 14 * 0.6e-6 + 1.75 * size / 370e9)
    # PCIe: 3.4 us per step (Simple; no PCIe LL figure found), nccl-tests' 24 GB/s bus bandwidth on PCIe Gen4
    assert serving_kernels.all_reduce_seconds(size, 4, 24e9, "pcie") == pytest.approx(6.6e-6 + 6 * 3.4e-6 + 1.5 * size / 24e9)
    assert serving_kernels.all_reduce_seconds(size, 1, 24e9, "pcie") == 0
