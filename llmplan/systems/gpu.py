"""The GPU: its dense peak per dtype, HBM, memory, how it is wired, and how fast its kernels really run.

One record (`GPU`), the GPU type and how it is wired, for training (llmplan.systems.step_time) and serving (llmplan.systems.serving):
peak of the compute dtype, HBM bandwidth and the fraction memory-bound kernels reach, the achievable
matmul rate (calibrated on a measured GEMM, with tile and wave quantisation over the SMs), the
scale-up domain and the per-GPU link bandwidths collectives cross.
"""

from __future__ import annotations

from typing import Any

from llmplan.errors import InputError
from llmplan.records import record
from llmplan.systems._arith import ceil_to

# Achievable fraction of the dense peak used when the catalog has no measured matmul_efficiency:
# our H100 measurement (797.86 of 989.4 TFLOP/s, tests/data/gpu_memory_calibration.jsonl), assumed
# to carry over to other GPUs.
DEFAULT_MATMUL_EFFICIENCY = 797.8646535989881 / 989.4
# The GEMM our matmul_efficiency was measured on: bf16 8192 x 8192 x 8192 (tests/data/gpu_memory_calibration.jsonl,
# case matmul, timed as torch `a @ b`).
REFERENCE_GEMM = 8192
# Memory-bound kernels reach about 88-90% of the datasheet HBM bandwidth, the best of them ~90% (NVIDIA
# Developer Forums, "Trouble to reach peak bandwidth of A100" (topic 339083): 1.80 of 2.04 TB/s on an A100
# 80GB SXM, 88% by Nsight Compute, citing a GTC talk where no kernel passed ~90%): DRAM refresh, bank and
# read/write turnaround overheads.
HBM_EFFICIENCY = 0.88
# Output tile of a large cuBLAS GEMM: partial tiles cost a whole one (NVIDIA Deep Learning Performance
# guide, "Matrix Multiplication Background", tile quantisation; 128x128 is a typical Ampere/Hopper tile).
TILE = 128
# NCCL's topology model takes an NVLink at 20 GB/s per direction (src/graph/topo.h, SM80_NVLINK_BW 20.0;
# SM90 20.6) of the 25 GB/s a NVLink 3/4 link signals (A100/H100 datasheets: 12 or 18 links, 300/450 GB/s):
# the packet overhead of the link protocol. Collectives inside a node run at this fraction of the
# catalog's (datasheet) intra-node bandwidth.
NVLINK_EFFICIENCY = 20.0 / 25.0


def link_efficiency(link: str | None) -> float:
    """The fraction of the datasheet intra-node rate collectives reach: NVLINK_EFFICIENCY on NVLink (the
    derate NCCL's topology model applies); other links (PCIe, Infinity Fabric) at their datasheet rate,
    for which llmplan has no measured derate (an optimistic bound)."""
    return NVLINK_EFFICIENCY if link == "nvlink" else 1.0


def sustained_clock_ratio(gpu: Any) -> float:
    """The SM clock a sustained training load holds under the power limit over the clock the kernel rates were
    measured at (gpus.toml sustained_clock_mhz / boost_clock_mhz, with their source); 1 where none is given."""
    boost, held = gpu.get("boost_clock_mhz"), gpu.get("sustained_clock_mhz")
    return float(held) / float(boost) if boost and held else 1.0


def peak_flops(gpu: Any, dtype: str = "bf16") -> tuple[float, str]:
    """The GPU preset's dense peak FLOP/s for dtype; bf16 falls back to fp16 (V100 has no bf16)."""
    value = gpu.get(f"peak_{dtype}")
    if value is None and dtype == "bf16" and gpu.get("peak_fp16") is not None:
        return float(gpu.get("peak_fp16")), "fp16"
    if value is None:
        have = [k[5:] for k in gpu.data if k.startswith("peak_")]
        raise InputError(f"GPU {gpu.id!r} has no {dtype} peak in the catalog; use --dtype {' or '.join(have) or 'another GPU'}")
    return float(value), dtype


def quantised_tiles(M, N, batch, sms):
    """Output tiles a GEMM pays for: partial tiles count whole (tile quantisation) and the tiles run in
    waves of one per SM, a partial last wave costing a whole one (wave quantisation; NVIDIA Deep Learning
    Performance guide, "Matrix Multiplication Background": e.g. 1.33 waves of tiles take as long as 2)."""
    tiles = ceil_to(M, TILE) // TILE * (ceil_to(N, TILE) // TILE) * batch
    if not sms:
        return tiles
    return ceil_to(tiles, sms)


@record
class GPU:
    """A GPU type and how it is wired: peak, HBM, scale-up domain, link bandwidths (per GPU per direction)."""

    gpu: str
    peak_flops_per_second: float
    bandwidth: float  # HBM bytes/s
    memory_bytes: float
    gpus_per_node: int
    intra_node_bandwidth: float
    inter_node_bandwidth: float | None
    matmul_efficiency: float = DEFAULT_MATMUL_EFFICIENCY
    dtype: str = "bf16"
    sms: int = 0  # streaming multiprocessors (CUs): output tiles run in waves of this many; 0 = unknown, no wave quantisation
    intra_link_efficiency: float = NVLINK_EFFICIENCY  # what NCCL reaches of the datasheet intra-node rate
    arch: str = ""  # measured kernel family (presets/kernels.toml [arch]): sm80, sm90, or "" (none measured)
    bf16_peak: float = 0.0  # dense 16-bit peak (bf16, else fp16): the rate of GEMMs left in 16 bits under fp8
    bf16_matmul_efficiency: float = DEFAULT_MATMUL_EFFICIENCY
    device_memory_bytes: float = 0.0  # what the device reports (torch total_memory) where measured; 0 = the datasheet's
    # Compute-bound kernels run at this fraction of their measured (burst) rate: the SM clock a sustained training load
    # holds under the power limit over the boost clock they were measured at (gpus.toml sustained_clock_mhz); 1 where
    # no source gives it, and for serving, whose prefill bursts and memory-bound decode are not that load.
    clock_ratio: float = 1.0
    matmul_clock_ratio: float = 1.0  # the same for matmuls; 1 where --matmul-efficiency gives the rate a step sees

    @classmethod
    def from_preset(cls, gpu: Any, dtype: str = "bf16", gpus_per_node: int | None = None,
                    intra_bw: float | None = None, inter_bw: float | None = None,
                    matmul_efficiency: float | None = None, sustained: bool = True) -> "GPU":
        """From a gpus.toml entry, each interconnect field overridable (--gpus-per-node, --intra-bw, ...); `sustained`
        takes the kernel rates at the clock a training load holds (clock_ratio), where the catalog gives it."""
        peak, used = peak_flops(gpu, dtype)
        per_node = gpus_per_node or gpu.get("gpus_per_node")
        intra = intra_bw or gpu.get("intra_node_bandwidth")
        inter = inter_bw or gpu.get("inter_node_bandwidth")
        eff = matmul_efficiency or gpu.get("matmul_efficiency") or DEFAULT_MATMUL_EFFICIENCY
        if per_node is None:
            per_node = 1
        if intra is None:
            intra = inter or 0.0
        if not 0 < eff <= 1:
            raise InputError(f"--matmul-efficiency {eff} must be a fraction of the peak in (0, 1]")
        from llmplan.systems import kernels

        arch = kernels.arch_of(gpu.id)
        bf16_eff = float(eff)
        try:
            bf16_peak = peak_flops(gpu, "bf16")[0]
        except InputError:
            bf16_peak = peak
        if used == "fp8" and matmul_efficiency is None:
            # fp8 GEMMs reach a smaller fraction of the fp8 peak than bf16 of its (MAMF: 1402.6 of 1979 on H100 SXM);
            # a GPU with no fp8 measurement takes the H100's ratio of the two fractions.
            measured = kernels.fp8_matmul_efficiency(arch)
            eff = measured if measured else bf16_eff * kernels.fp8_matmul_efficiency("sm90") / DEFAULT_MATMUL_EFFICIENCY
        return cls(gpu.id, peak, float(gpu["bandwidth"]), float(gpu["memory_bytes"]), int(per_node),
                   float(intra), None if inter is None else float(inter), float(eff), used, int(gpu.get("sms") or 0),
                   link_efficiency(gpu.get("intra_node_link")), arch, float(bf16_peak), bf16_eff,
                   float(gpu.get("device_memory_bytes") or 0.0),
                   sustained_clock_ratio(gpu) if sustained else 1.0,
                   sustained_clock_ratio(gpu) if sustained and matmul_efficiency is None else 1.0)

    @property
    def capacity_bytes(self) -> float:
        """Memory a training process can fill: what the device reports where measured (an H100 80GB reports 85.0 GB),
        else the datasheet's; llmplan memory checks the same figure."""
        return self.device_memory_bytes or self.memory_bytes

    @property
    def hbm_rate(self) -> float:
        """Bytes/s a memory-bound kernel moves: the datasheet bandwidth x HBM_EFFICIENCY."""
        return self.bandwidth * HBM_EFFICIENCY

    @property
    def matmul_rate(self) -> float:
        """FLOP/s of the math side of a GEMM, calibrated so that the reference GEMM (REFERENCE_GEMM cubed,
        where matmul_efficiency was measured) takes exactly its measured time with its operand traffic added,
        at the sustained clock (clock_ratio)."""
        return self._rate(self.peak_flops_per_second, self.matmul_efficiency) * self.matmul_clock_ratio

    @property
    def bf16_matmul_rate(self) -> float:
        """The same for 16-bit GEMMs (those an fp8 run leaves in bf16): the bf16 peak at its measured fraction."""
        return self._rate(self.bf16_peak or self.peak_flops_per_second, self.bf16_matmul_efficiency) * self.matmul_clock_ratio

    @property
    def best_matmul_flops(self) -> float:
        """The GPU's best measured matmul rate in the compute dtype (MAMF), at the sustained clock: no layout may imply more."""
        return self.peak_flops_per_second * self.matmul_efficiency * self.matmul_clock_ratio

    @property
    def best_bf16_matmul_flops(self) -> float:
        """The best measured 16-bit matmul rate (the ceiling of GEMMs an fp8 run leaves in bf16)."""
        return (self.bf16_peak or self.peak_flops_per_second) * self.bf16_matmul_efficiency * self.matmul_clock_ratio

    def _rate(self, peak: float, efficiency: float) -> float:
        n = REFERENCE_GEMM
        measured = 2.0 * n ** 3 / (peak * efficiency)
        traffic = 3.0 * n * n * 2 / self.hbm_rate
        padded = 2.0 * quantised_tiles(n, n, 1, self.sms) * TILE * TILE * n
        return padded / max(measured - traffic, 0.5 * measured)

    def require_links(self, gpus: int) -> None:
        """A run across nodes needs the inter-node bandwidth, one inside a node the intra-node one."""
        if gpus > self.gpus_per_node and not self.inter_node_bandwidth:
            raise InputError(f"{gpus} GPUs span more than one node of {self.gpus_per_node} {self.gpu}, and the catalog has no inter-node "
                             f"bandwidth for it; give --inter-bw (bytes/s per GPU, e.g. 25GB for 200 Gb/s InfiniBand) or --gpus-per-node")
        if min(gpus, self.gpus_per_node) > 1 and not self.intra_node_bandwidth:
            raise InputError(f"the catalog has no intra-node bandwidth for {self.gpu}; give --intra-bw (bytes/s per GPU per direction)")

