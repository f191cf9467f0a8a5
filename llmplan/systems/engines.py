"""A serving engine as data (presets/engines.toml): its kernels, GEMM paths, CUDA graphs, batching,
memory fraction and per-step overhead, read into one record the serving model uses.

The engine decides *which* kernel runs; llmplan.systems.serving_kernels says how fast that kernel is (kernel-level
measurements). Nothing here is fitted to an end-to-end serving figure.
"""

from __future__ import annotations

from typing import Any

from llmplan.errors import InputError
from llmplan.records import record

# The engine `serve` uses when --engine is not given (README, `llmplan serve --help`).
DEFAULT_ENGINE = "vllm"


@record
class GemmPath:
    """How an engine multiplies by weights of one format: the kernel's name, the share of the 16-bit math
    rate its dequantisation leaves (1 = none), and the group size the format fixes (None = the user's)."""

    kernel: str
    compute_ceiling: float = 1.0
    group_size: int | None = None


@record
class Engine:
    id: str
    name: str
    version: str
    batching: str
    max_batch: int
    cuda_graphs: bool
    cuda_graph_max_batch: int
    decode_attention: str
    prefill_attention: str
    kv_reads: str
    memory_fraction: float
    memory_fraction_by_tp: tuple[tuple[int, float], ...]
    memory_fraction_of: str
    activation_tokens: int
    small_kernels_per_layer: int
    step_overhead_seconds: float
    sequence_overhead_seconds: float
    gemms: tuple[tuple[str, GemmPath], ...]
    expert_parallel: bool = False
    decode_gqa: str = "shared"  # "shared" or "per-query-head" (presets/engines.toml decode_attention_gqa)
    shared_groups: tuple[int, ...] = ()  # query heads per KV head served by a sharing kernel anyway (TensorRT-LLM's XQA)
    shared_head_dims: tuple[int, ...] = ()  # head sizes that sharing kernel has (empty: any)
    # Larger defaults on a "large" GPU (vLLM V1's get_batch_defaults: >= 70 GiB and not an A100); 0 = none.
    max_batch_large_gpu: int = 0
    activation_tokens_large_gpu: int = 0
    large_gpu_min_memory_bytes: float = 0.0
    large_gpu_excluded: tuple[str, ...] = ()
    decode_attention_name: str = ""  # the kernel run where its rate is another's (presets/engines.toml)

    @classmethod
    def from_preset(cls, p: Any) -> "Engine":
        def count(name: str) -> int:
            v = float(p[name])
            if v < 0 or not v.is_integer():
                raise InputError(f"{p.path}: engine [{p.id}] field '{name}' must be a whole number >= 0, not {v:g}")
            return int(v)

        overhead, per_sequence = float(p["step_overhead_seconds"]), float(p["sequence_overhead_seconds"])
        if overhead < 0 or per_sequence < 0:
            raise InputError(f"{p.path}: engine [{p.id}] fields 'step_overhead_seconds' and 'sequence_overhead_seconds' must be >= 0")
        for key in ["memory_fraction"] + [f"memory_fraction_tp{n}" for n in (2, 4, 8, 16)]:
            if p.get(key) is not None and not 0 < p.get(key) <= 1:
                raise InputError(f"{p.path}: engine [{p.id}] field '{key}' must be in (0, 1]")
        if (p.get("max_batch_large_gpu") or p.get("activation_tokens_large_gpu")) and not (p.get("large_gpu_min_memory_bytes") or 0) > 0:
            raise InputError(f"{p.path}: engine [{p.id}] sets large-GPU defaults; give 'large_gpu_min_memory_bytes' > 0 (what a GPU must report to count as large)")
        gemms = []
        for d in ("bf16", "fp16", "fp8", "int8", "int4", "nf4"):
            if p.get(f"gemm_{d}"):
                ceiling = p.get(f"gemm_{d}_compute_ceiling", 1.0)
                if not 0 < ceiling <= 1:
                    raise InputError(f"{p.path}: engine [{p.id}] field 'gemm_{d}_compute_ceiling' must be in (0, 1]")
                gemms.append((d, GemmPath(p[f"gemm_{d}"], float(ceiling), p.get(f"gemm_{d}_group_size"))))
        by_tp = tuple((n, float(p[f"memory_fraction_tp{n}"])) for n in (2, 4, 8, 16) if p.get(f"memory_fraction_tp{n}") is not None)
        return cls(p.id, p["name"], p["version"], p["batching"], count("max_batch"), bool(p["cuda_graphs"]),
                   count("cuda_graph_max_batch"), p["decode_attention"], p["prefill_attention"], p["kv_reads"],
                   float(p["memory_fraction"]), by_tp, p["memory_fraction_of"], count("activation_tokens"),
                   int(p["small_kernels_per_layer"]), overhead, per_sequence, tuple(gemms), bool(p["expert_parallel"]),
                   p["decode_attention_gqa"], tuple(p.get("decode_attention_shared_groups") or ()),
                   tuple(p.get("decode_attention_shared_head_dims") or ()),
                   count("max_batch_large_gpu") if p.get("max_batch_large_gpu") is not None else 0,
                   count("activation_tokens_large_gpu") if p.get("activation_tokens_large_gpu") is not None else 0,
                   float(p.get("large_gpu_min_memory_bytes") or 0.0), tuple(p.get("large_gpu_excluded") or ()),
                   p.get("decode_attention_name") or "")

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def gemm(self, dtype: str) -> GemmPath:
        """The GEMM path for weights in `dtype`; fp32 weights run the 16-bit path's kernel family (cuBLAS).
        An engine without a path for the format cannot serve it: InputError naming those it has."""
        table = dict(self.gemms)
        if dtype == "fp32" and "bf16" in table:
            return table["bf16"]
        if dtype not in table:
            raise InputError(f"{self.name} {self.version} has no GEMM path for {dtype} weights; use --dtype "
                             f"{' or '.join(table)} or another --engine")
        return table[dtype]

    def fraction(self, tp: int) -> float:
        """The engine's default memory fraction at this tensor parallelism (SGLang lowers it as TP grows)."""
        value = self.memory_fraction
        for n, f in self.memory_fraction_by_tp:
            if tp >= n:
                value = f
        return value

    def large_gpu(self, hw: Any) -> bool:
        """Whether the engine takes its large-GPU defaults on `hw` (a ServingGPU or None): vLLM V1 does where the
        device reports at least large_gpu_min_memory_bytes of total memory and is not an A100
        (vllm/engine/arg_utils.py get_batch_defaults)."""
        if hw is None or not (self.max_batch_large_gpu or self.activation_tokens_large_gpu):
            return False
        gpu = str(getattr(hw, "gpu", "")).lower()
        return (getattr(hw, "memory_bytes", 0.0) >= self.large_gpu_min_memory_bytes
                and not any(name in gpu for name in self.large_gpu_excluded))

    def batch_cap(self, hw: Any = None) -> int:
        """Most sequences decoded together on `hw` (vLLM max_num_seqs); 0 = no cap but the KV cache."""
        return self.max_batch_large_gpu if self.max_batch_large_gpu and self.large_gpu(hw) else self.max_batch

    def profile_tokens(self, hw: Any = None) -> int:
        """Tokens of the forward whose activations the engine reserves on `hw` (vLLM's profile run)."""
        return self.activation_tokens_large_gpu if self.activation_tokens_large_gpu and self.large_gpu(hw) else self.activation_tokens

    def overhead_seconds(self, batch: int) -> float:
        """Host time per decode step on the GPU's critical path: per step plus per running sequence."""
        return self.step_overhead_seconds + batch * self.sequence_overhead_seconds

    def kv_head_reads(self, group: int, head_dim: int) -> int:
        """How many times one decode step's attention reads each KV head whose `group` query heads share it: once
        where the kernel serves the whole group from one read (FlashInfer's GQA decode; TensorRT-LLM's XQA for the
        groups and head sizes it was built for), `group` times where it runs one thread block per query head,
        each reading its KV head (vLLM's PagedAttention, TensorRT-LLM's masked MHA: kv_head = head / group)."""
        if group <= 1 or self.decode_gqa == "shared":
            return 1
        if group in self.shared_groups and (not self.shared_head_dims or head_dim in self.shared_head_dims):
            return 1
        return group

    def graphed(self, batch: int) -> bool:
        """Whether a decode step of this batch replays a CUDA graph (captured up to cuda_graph_max_batch)."""
        return self.cuda_graphs and (self.cuda_graph_max_batch == 0 or batch <= self.cuda_graph_max_batch)


def load(catalog: Any, name: str | None) -> Engine:
    """The engine preset `name` (or the default) from a catalog."""
    return Engine.from_preset(catalog.get("engines", name or DEFAULT_ENGINE))
