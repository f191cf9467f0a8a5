"""Load and validate the presets: models, laws and GPUs, as TOML data.

The shipped files live in `presets/` at the top of the repository and inside the wheel (as the
package `llmplan._presets`). A user's folder (`--presets DIR` or `LLMPLAN_PRESETS`) may hold
`models.toml`, `laws.toml` and `gpus.toml`; its entries add to the shipped ones or replace an entry
of the same id whole (keeping the shipped aliases unless it gives its own). Nothing in a preset is
executed: files are parsed as TOML and every field is checked against the schema below; a bad one
is an InputError naming file, entry and field. Numbers are bounded (MAX_VALUE), so that a typo such
as layers = 1e300 is refused rather than computed with.
"""

from __future__ import annotations

import difflib
import re
import math
import os
from dataclasses import field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from llmplan.errors import InputError, cut, quote
from llmplan.records import record

KINDS = ("models", "laws", "gpus", "hparams", "engines", "runs", "stacks")
KIND_NOUN = {"models": "model", "laws": "law", "gpus": "GPU", "hparams": "hyperparameter law", "engines": "serving engine", "runs": "published run",
             "stacks": "software stack"}

# Field specs: name -> (type, required, allowed values or None). "int" accepts an integral float.
_STR, _INT, _FLOAT, _BOOL, _STRS = "str", "int", "float", "bool", "list[str]"
_INTS = "list[int]"
_COUNTS = "list[count]"  # positive whole numbers
_REAL = "real"  # any finite number, negative included (an exponent)

_COMMON = {
    "name": (_STR, True, None),
    "aliases": (_STRS, False, None),
    "source": (_STR, True, None),
    "notes": (_STR, False, None),
}

MODEL_FIELDS: dict[str, tuple[str, bool, tuple[str, ...] | None]] = {
    **_COMMON,
    "organisation": (_STR, False, None),
    "year": (_INT, False, None),
    "architecture": (_STR, True, ("decoder", "encoder", "encoder-decoder")),
    "objective": (_STR, True, ("clm", "mlm", "span-corruption")),
    "params": (_INT, True, None),
    "params_exact": (_INT, False, None),
    "active_params": (_INT, False, None),
    "tokens": (_INT, False, None),
    "dataset_tokens": (_INT, False, None),
    "flops_reported": (_FLOAT, False, None),
    "pf_days_reported": (_FLOAT, False, None),
    "gpu_hours": (_FLOAT, False, None),
    "gpu": (_STR, False, None),  # the catalog GPU of gpu_hours (presets/gpus.toml id), for compare's implied MFU
    "gpu_hours_source": (_STR, False, None),
    "training_gpus": (_INT, False, None),  # GPUs of the published run, for compare's throughput prediction
    "global_batch": (_INT, False, None),  # sequences per step of the published run (at train_context or context)
    "training_setup_source": (_STR, False, None),
    "hardware": (_STR, False, None),
    "layers": (_INT, False, None),
    "encoder_layers": (_INT, False, None),
    "decoder_layers": (_INT, False, None),
    "d_model": (_INT, False, None),
    "heads": (_INT, False, None),
    "kv_heads": (_INT, False, None),
    "head_dim": (_INT, False, None),
    "ffn": (_INT, False, None),
    "mlp": (_STR, False, ("swiglu", "geglu", "gelu", "relu")),
    "vocab": (_INT, False, None),
    "context": (_INT, False, None),
    "train_context": (_INT, False, None),  # sequence length of pre-training, where it differs from `context`
    "tied_embeddings": (_BOOL, False, None),
    "positions": (_STR, False, ("learned", "rotary", "relative", "alibi")),
    "norm": (_STR, False, ("rmsnorm", "layernorm")),
    "bias": (_BOOL, False, None),
    "experts": (_INT, False, None),
    "experts_per_token": (_INT, False, None),
    "shared_experts": (_INT, False, None),
    "moe_ffn": (_INT, False, None),
    "dense_layers": (_INT, False, None),
    "q_lora_rank": (_INT, False, None),
    "kv_lora_rank": (_INT, False, None),
    "qk_rope_head_dim": (_INT, False, None),
    "qk_nope_head_dim": (_INT, False, None),
    "v_head_dim": (_INT, False, None),
    # Shape details some published counts need (llmplan.model.arch.Shape documents each).
    "qkv_bias": (_BOOL, False, None),
    "norm_bias": (_BOOL, False, None),
    "layer_norms": (_INT, False, None),
    "embedding_norm": (_BOOL, False, None),
    "final_norm": (_BOOL, False, None),
    "token_types": (_INT, False, None),
    "pooler": (_BOOL, False, None),
    "position_rows": (_INT, False, None),
    "attn_out_bias": (_BOOL, False, None),
    "mlp_bias": (_BOOL, False, None),
    "head_bias": (_BOOL, False, None),
    "qk_norm": (_STR, False, ("head", "full")),
    "norm_weights": (_BOOL, False, None),
    "router_bias": (_BOOL, False, None),
}

_PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")

GPU_FIELDS: dict[str, tuple[str, bool, tuple[str, ...] | None]] = {
    **_COMMON,
    "vendor": (_STR, False, ("nvidia", "amd", "google")),
    "memory_bytes": (_INT, True, None),  # the datasheet's figure (decimal GB)
    "device_memory_bytes": (_INT, False, None),  # what the device itself reports (total_memory), where measured
    "device_memory_source": (_STR, False, None),
    "bandwidth": (_FLOAT, True, None),
    "tdp_watts": (_FLOAT, False, None),  # board power limit (datasheet), for `plan`'s energy estimate
    "tdp_source": (_STR, False, None),
    "node_power_watts": (_FLOAT, False, None),  # rated maximum power of the reference system (DGX) of gpus_per_node GPUs
    "node_power_source": (_STR, False, None),
    **{f"peak_{d}": (_FLOAT, False, None) for d in _PEAK_DTYPES},
    **{f"sparse_{d}": (_FLOAT, False, None) for d in _PEAK_DTYPES},
    # Interconnect and achievable matmul rate, for llmplan.systems.gpu (bytes/s per GPU per direction).
    "gpus_per_node": (_INT, False, None),  # scale-up domain: 8 for DGX/HGX, 72 for NVL72
    "intra_node_bandwidth": (_FLOAT, False, None),
    "inter_node_bandwidth": (_FLOAT, False, None),
    "intra_node_link": (_STR, False, ("nvlink", "pcie", "infinity-fabric", "ici")),
    "intra_node_busbw": (_FLOAT, False, None),  # measured all-reduce bus bandwidth inside a node (nccl-tests), for serving
    "server_source": (_STR, False, None),
    "interconnect_source": (_STR, False, None),
    "matmul_efficiency": (_FLOAT, False, None),  # fraction of the dense peak a large matmul reaches (0, 1]
    "boost_clock_mhz": (_FLOAT, False, None),  # the SM clock the kernel rates were measured at (a burst)
    "sustained_clock_mhz": (_FLOAT, False, None),  # the SM clock a sustained training load holds under the power limit
    "sustained_clock_source": (_STR, False, None),
    "matmul_efficiency_source": (_STR, False, None),
    "sms": (_INT, False, None),  # streaming multiprocessors (AMD: compute units), for GEMM wave quantisation
    "sms_source": (_STR, False, None),
}

# Laws: the common fields and a form; the numeric constants of each form are checked by
# llmplan.lawforms (the forms as data).
LAW_FIELDS: dict[str, tuple[str, bool, tuple[str, ...] | None]] = {
    **_COMMON,
    "form": (_STR, True, None),
    "convention": (_STR, False, None),
    "fitted_range": (_STR, False, None),
    "loss_unit": (_STR, False, None),  # what the loss is measured in (nats per token)
    "dataset": (_STR, False, None),  # the data the loss was measured on
    "tokenizer": (_STR, False, None),  # ... and its tokenizer: losses on other data or tokens do not compare
}

# Hyperparameter laws (llmplan.scaling.hparams): batch size and learning rate as power laws in C, N and D.
HPARAM_FIELDS: dict[str, tuple[str, bool, tuple[str, ...] | None]] = {
    **_COMMON,
    "batch_coef": (_FLOAT, True, None),
    "lr_coef": (_FLOAT, True, None),
    **{f"{q}_exp_{v}": (_REAL, False, None) for q in ("batch", "lr") for v in ("flops", "params", "tokens")},
    **{f"fitted_{end}_{v}": (_FLOAT, False, None) for end in ("min", "max") for v in ("flops", "params", "tokens")},
    "convention": (_STR, False, ("total", "non-embedding")),
    "compute": (_STR, False, ("6ND", "MD")),  # what C counts: 6ND, or M·D with M non-embedding FLOPs/token (DeepSeek)
    "fitted_range": (_STR, False, None),
}

# Serving engines (llmplan.systems.engines, `serve --engine`): how an engine runs a decoder, each field sourced
# (presets/engines.toml documents every field).
_GEMM_DTYPES = ("bf16", "fp16", "fp8", "int8", "int4", "nf4")
ENGINE_FIELDS: dict[str, tuple[str, bool, tuple[str, ...] | None]] = {
    **_COMMON,
    "version": (_STR, True, None),
    "batching": (_STR, True, ("continuous", "static")),
    # zero allowed (no cap, no graphs cap, no reserve, no overhead): checked >= 0 by llmplan.systems.engines
    "max_batch": (_REAL, True, None),
    "max_batch_large_gpu": (_REAL, False, None),
    "activation_tokens_large_gpu": (_REAL, False, None),
    "large_gpu_min_memory_bytes": (_FLOAT, False, None),
    "large_gpu_excluded": (_STRS, False, None),
    "cuda_graphs": (_BOOL, True, None),
    "cuda_graph_max_batch": (_REAL, True, None),
    "decode_attention": (_STR, True, ("flashinfer", "paged-attention-v2")),
    "decode_attention_name": (_STR, False, None),
    "prefill_attention": (_STR, True, ("fa2", "fa3")),
    "kv_reads": (_STR, True, ("used", "allocated")),
    "decode_attention_gqa": (_STR, True, ("shared", "per-query-head")),
    "decode_attention_shared_groups": (_COUNTS, False, None),
    "decode_attention_shared_head_dims": (_COUNTS, False, None),
    "memory_fraction": (_FLOAT, True, None),
    **{f"memory_fraction_tp{n}": (_FLOAT, False, None) for n in (2, 4, 8, 16)},
    "memory_fraction_of": (_STR, True, ("total", "static", "free")),
    "activation_tokens": (_REAL, True, None),
    "small_kernels_per_layer": (_INT, True, None),
    "step_overhead_seconds": (_REAL, True, None),
    "sequence_overhead_seconds": (_REAL, True, None),
    "expert_parallel": (_BOOL, True, None),
    **{f"gemm_{d}": (_STR, False, None) for d in _GEMM_DTYPES},
    **{f"gemm_{d}_compute_ceiling": (_FLOAT, False, None) for d in _GEMM_DTYPES},
    **{f"gemm_{d}_group_size": (_INT, False, None) for d in _GEMM_DTYPES},
    **{f"{k}_source": (_STR, True, None) for k in ("batching", "cuda_graphs", "attention", "decode_attention_gqa", "memory", "small_kernels", "step_overhead", "gemm", "expert_parallel")},
}

# Published runs (presets/runs.toml): the batch and peak learning rate a run used at its scale, for `plan`.
RUN_FIELDS: dict[str, tuple[str, bool, tuple[str, ...] | None]] = {
    **_COMMON,
    "model": (_STR, False, None),  # the models.toml id of the run's model
    "params": (_INT, True, None),
    "active_params": (_INT, False, None),
    "tokens": (_INT, True, None),
    "flops": (_FLOAT, True, None),
    "flops_basis": (_STR, True, None),
    "seq": (_INT, True, None),
    "max_batch_tokens": (_FLOAT, True, None),
    "batch_schedule": (_STR, False, None),
    "learning_rate": (_FLOAT, False, None),
}

# Upper bounds of numeric fields: far beyond any real model or GPU, and small enough that every
# formula stays in floating-point range (a preset with layers = 1e300 is a typo, not a model).
MAX_INT = 10**15
MAX_FLOAT = 1e40
MAX_VALUE = {"params": 10**18, "params_exact": 10**18, "active_params": 10**18, "tokens": 10**18, "dataset_tokens": 10**18, "year": 3000}

# Training software stacks (llmplan.systems.stack): what a framework runs, each choice with its source
# (the framework's file or documentation at a named version) in the matching *_source field.
STACK_FIELDS: dict[str, tuple[str, bool, tuple[str, ...] | None]] = {
    **_COMMON,
    "framework": (_STR, True, None),
    "version": (_STR, True, None),
    "attention": (_STR, True, ("te", "fa2", "fa3", "cudnn", "sdpa", "fa-triton")),  # te: TE fused attention (cuDNN on Hopper, FA2 on Ampere); sdpa: PyTorch SDPA (FA2); fa-triton: the Triton FlashAttention
    "attention_source": (_STR, True, None),
    "elementwise": (_STR, True, ("fused", "eager")),  # fused kernels (TE/Apex) or one kernel per PyTorch op
    "elementwise_source": (_STR, True, None),
    "norm": (_STR, False, ("fused", "eager")),  # the norm kernel where it differs from `elementwise` (torchtitan's fused_rmsnorm)
    "compiled": (_BOOL, True, None),  # torch.compile / CUDA graphs: no per-op host overhead, element-wise fused
    "compile_option": (_BOOL, False, None),  # the stack offers --compile
    "compile_source": (_STR, False, None),
    "fp8_recipe": (_STR, True, ("te-delayed", "te-current", "torchao-tensorwise", "torchao-rowwise", "none")),
    "fp8_source": (_STR, True, None),
    "overlap_grad_reduce": (_BOOL, True, None),
    "overlap_param_gather": (_BOOL, True, None),
    "tp_comm_overlap": (_BOOL, True, None),
    "overlap_source": (_STR, True, None),
    "selective_recompute": (_STR, True, ("attention-core", "op-level", "per-block")),
    "recompute_source": (_STR, True, None),
    "mixed_precision": (_STR, True, ("megatron", "fsdp", "amp", "deepspeed")),
    "mixed_precision_source": (_STR, True, None),
    "fused_loss": (_BOOL, False, None),  # one cross-entropy kernel on the 16-bit logits (no fp32 copy or log-probs)
    "loss_source": (_STR, False, None),
    "zero2_gradients": (_STR, False, ("reduce-scatter-per-micro-batch", "accumulate-full")),
    "logits_kept_for_backward": (_BOOL, False, None),  # the 16-bit logits stay referenced through backward (the caller holds them)
    "logits_source": (_STR, False, None),
    "optimizer_impl": (_STR, False, ("for-loop", "foreach", "fused")),  # how the Adam step runs (its temporaries)
    "optimizer_source": (_STR, False, None),
    "grad_reduce_bytes": (_INT, False, None),  # bytes per gradient value on the wire (4: reduced in fp32)
    "grad_reduce_source": (_STR, False, None),
    "zero_stages": (_INTS, True, None),
    "zero_with_pipeline": (_INTS, False, None),  # ZeRO stages allowed together with pp > 1 (default: zero_stages)
    "searched_zero_stages": (_INTS, False, None),  # the stages layout and plan search unless --zero is given (default: zero_stages)
    "searched_zero_stages_source": (_STR, False, None),
    "tp": (_BOOL, True, None),
    "pp": (_BOOL, True, None),
    "cp": (_BOOL, True, None),
    "ep": (_BOOL, True, None),
    "sequence_parallel": (_STR, True, ("optional", "always", "never")),
    "pipeline_split": (_STR, True, ("even", "embedding-and-loss")),
    "layouts_source": (_STR, True, None),
    "zero3_model_parallel_caveat": (_STR, False, None),  # what is not modelled when ZeRO-3 meets tp or cp > 1
    "calibrated": (_STRS, False, None),  # GPU ids the stack's end-to-end calibration covers
    "gqa_repeat_kv": (_BOOL, False, None),  # the model copies K and V to every query head (repeat_kv)
    "gqa_repeat_kv_source": (_STR, False, None),
    "separate_projections": (_BOOL, False, None),  # q, k, v (gate, up) are separate matmuls of one input
    "separate_projections_source": (_STR, False, None),
    "gather_copy_bytes": (_FLOAT, False, None),  # bytes per parameter copied around each FSDP all-gather
    "reduce_copy_bytes": (_FLOAT, False, None),  # bytes per parameter copied around each gradient reduce-scatter
    "copy_source": (_STR, False, None),
    "calibration": (_STRS, False, None),  # per calibrated GPU: "GPU: N runs, -a% to +b%, mean c%" (tests/test_calibration.py checks them)
}

# presets/stacks.toml `calibration`: one line per calibrated GPU (what a training row's note says of how sure it is)
_CALIBRATION_LINE = re.compile(r"[\w.-]+: \d+ runs?, [+-]\d+(\.\d+)?% to [+-]\d+(\.\d+)?%, mean \d+(\.\d+)?%")

SCHEMAS = {"models": MODEL_FIELDS, "laws": LAW_FIELDS, "gpus": GPU_FIELDS, "hparams": HPARAM_FIELDS, "engines": ENGINE_FIELDS, "runs": RUN_FIELDS,
           "stacks": STACK_FIELDS}

# Kinds whose entries may carry extra numeric fields (law constants), checked elsewhere.
_OPEN_NUMERIC = {"laws"}


@record
class Preset:
    """One entry of a preset file: its kind, id, validated fields and the file it came from."""

    kind: str
    id: str
    data: Mapping[str, Any]
    path: str = ""

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: str) -> bool:
        return key in self.data

    @property
    def name(self) -> str:
        return self.data.get("name", self.id)

    @property
    def aliases(self) -> list[str]:
        return list(self.data.get("aliases", []))


@record(frozen=False)
class Catalog:
    """Presets of every kind, with lookup by id or alias (case-insensitive)."""

    entries: dict[str, dict[str, Preset]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def all(self, kind: str) -> list[Preset]:
        return list(self.entries[kind].values())

    def ids(self, kind: str) -> list[str]:
        return list(self.entries[kind])

    def __iter__(self) -> Iterator[Preset]:
        for kind in KINDS:
            yield from self.entries[kind].values()

    def find(self, kind: str, name: str) -> Preset | None:
        key = name.strip().lower()
        table = self.entries[kind]
        if key in table:
            return table[key]
        for preset in table.values():
            if key in (a.lower() for a in preset.aliases):
                return preset
        return None

    def get(self, kind: str, name: str) -> Preset:
        preset = self.find(kind, name)
        if preset is None:
            raise InputError(self.unknown_message(kind, name))
        return preset

    def unknown_message(self, kind: str, name: str) -> str:
        names = self.ids(kind) + [a for p in self.all(kind) for a in p.aliases]
        key = name.strip().lower()
        # An exact, case-insensitive match of an id or alias (of the name after a Hub org, too) comes first.
        exact = [key.rsplit("/", 1)[-1]] if "/" in key else []
        close = exact + difflib.get_close_matches(key, names, n=3, cutoff=0.5)
        ids = []
        for c in close:
            target = self.find(kind, c)
            if target and target.id not in ids:
                ids.append(target.id)
        hint = f"; did you mean {', '.join(ids[:3])}?" if ids else f"; see 'llmplan presets list --kind {kind}'"
        if kind == "models" and re.fullmatch(r"[\w.-]+/[\w.-]+(@\S+)?", name.strip()):
            hint += f" (a Hugging Face Hub id goes to --hf {name.strip()})"
        return f"unknown {KIND_NOUN[kind]} {name!r}{hint}"


def model_params(preset: Preset) -> tuple[int, int]:
    """(the count to compute with, the headline count) of a model preset.

    The exact count (`params_exact`, from its shape or checkpoint) where the preset records it, else
    the headline; for a mixture of experts the active parameters (the ones a token passes through).
    The headline (7e9 for llama-2-7b, whose exact count is 6,738,415,616) is kept as `nominal_params`."""
    nominal = preset["params"]
    if preset.get("active_params"):
        return preset["active_params"], nominal
    return preset.get("params_exact") or nominal, nominal


def builtin_dir() -> Path:
    """The shipped presets: inside the installed package, or `presets/` beside the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_presets", here.parent / "presets"):
        if (candidate / "models.toml").is_file():
            return candidate
    try:
        from importlib.resources import files

        return Path(str(files("llmplan._presets")))
    except (ModuleNotFoundError, TypeError):
        return here.parent / "presets"


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise InputError(f"cannot read preset file {path}: {error.strerror or error}") from None


def _load_toml(path: Path, raw: bytes | None = None) -> dict[str, Any]:
    """The TOML file as a dict: from the parse cache (PARSE_CACHE) when this exact content was parsed
    before, else parsed (and cached). The dict is validated by the caller either way."""
    if raw is None:
        raw = _read(path)
    cached = PARSE_CACHE.get(raw) if PARSE_CACHE is not None else None
    if cached is not None:
        return cached
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid TOML: {cut(str(error))}") from None
    except RecursionError:
        raise InputError(f"{path}: not valid presets: arrays or tables nested too deeply") from None
    except ValueError as error:  # an integer of more than 4,300 digits
        raise InputError(f"{path}: not valid TOML: {cut(str(error))}") from None
    if PARSE_CACHE is not None:
        PARSE_CACHE.put(raw, data)
    return data


_STAMP: list[bytes] = []


def _validator_stamp() -> bytes:
    """What the validation rules are, for the parse cache's key: the source of this module and of
    lawforms.py, so an edited rule validates every file again instead of trusting an old result."""
    if not _STAMP:
        try:
            stamp = b""
            for source in (__file__, os.path.join(os.path.dirname(__file__), "lawforms.py")):
                with open(source, "rb") as handle:
                    stamp += handle.read()
        except (OSError, TypeError):
            stamp = b""
        _STAMP.append(stamp)
    return _STAMP[0]


# The parse cache (llmplan.io.parse_cache), wired in by the command line: ground reads and writes no
# cache of its own. None: every file is parsed.
PARSE_CACHE: Any = None


def _check_value(path: Path, entry: str, name: str, value: Any, spec: tuple[str, bool, Any]) -> Any:
    kind, _required, allowed = spec
    where = f"{path}: entry [{entry}] field '{name}'"
    if kind == _STR:
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where} must be a non-empty string, not {quote(value)}")
        if allowed and value not in allowed:
            raise InputError(f"{where} is {value!r}; expected one of {', '.join(allowed)}")
        return value
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, not {quote(value)}")
        return value
    if kind == _STRS:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise InputError(f"{where} must be a list of strings")
        return value
    if kind == _COUNTS:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise InputError(f"{where} must be a list of positive whole numbers")
        return value
    if kind == _INTS:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 3 for v in value):
            raise InputError(f"{where} must be a list of ZeRO stages (whole numbers 0-3)")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} must be a number, not {quote(value)}")
    if kind == _REAL:
        if value != value or value in (float("inf"), float("-inf")):
            raise InputError(f"{where} must be a finite number, not {quote(value)}")
        return float(value)
    if value != value or value in (float("inf"), float("-inf")) or value <= 0:
        raise InputError(f"{where} must be a positive, finite number, not {quote(value)}")
    limit = MAX_VALUE.get(name, MAX_INT if kind == _INT else MAX_FLOAT)
    if value > limit:
        raise InputError(f"{where} is {value:.4g}, beyond any real model or GPU (at most {limit:.0e})")
    if kind == _INT:
        if isinstance(value, float):
            if not value.is_integer():
                raise InputError(f"{where} must be a whole number, not {quote(value)}")
            return int(value)
        return value
    return float(value)


def validate_entry(kind: str, entry: str, raw: Any, path: Path) -> Preset:
    """Check one entry against its kind's schema; return it as a Preset."""
    if not isinstance(raw, dict):
        raise InputError(f"{path}: [{entry}] must be a table of fields")
    schema = SCHEMAS[kind]
    data: dict[str, Any] = {}
    for name, value in raw.items():
        spec = schema.get(name)
        if spec is None and kind in _OPEN_NUMERIC and not isinstance(value, (dict, list, str)):
            spec = (_FLOAT, False, None)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise InputError(f"{path}: entry [{entry}] field '{name}' must be a number, not {quote(value)}")
            number = float(value)
            if not math.isfinite(number) or (name.startswith("fitted_") and not number > 0):
                raise InputError(f"{path}: entry [{entry}] field '{name}' must be a positive, finite number, not {quote(value)}")
            data[name] = number
            continue
        if spec is None:
            close = difflib.get_close_matches(name, list(schema), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(f"{path}: entry [{entry}] has unknown field '{name}'{hint}")
        data[name] = _check_value(path, entry, name, value, spec)
    for name, (_kind, required, _allowed) in schema.items():
        if required and name not in data:
            raise InputError(f"{path}: entry [{entry}] is missing the required field '{name}'")
    if kind == "stacks":
        for line in data.get("calibration", ()):
            if not _CALIBRATION_LINE.fullmatch(line):
                raise InputError(f"{path}: entry [{entry}] field 'calibration' has {line!r}; write each GPU's as "
                                 f"'GPU: N runs, -a% to +b%, mean c%' (e.g. 'h100-sxm: 11 runs, -28.9% to +6.6%, mean 10.7%')")
    if kind == "stacks":
        stray = [line.split(":")[0] for line in data.get("calibration", ()) if line.split(":")[0] not in data.get("calibrated", ())]
        if stray:
            raise InputError(f"{path}: entry [{entry}] gives a calibration for {', '.join(stray)}, which its 'calibrated' list does not name; add it there")
        extra = sorted(set(data.get("searched_zero_stages", ())) - set(data["zero_stages"]))
        if extra:
            raise InputError(f"{path}: entry [{entry}] field 'searched_zero_stages' has ZeRO {extra}, which its zero_stages {data['zero_stages']} do not run")
    if kind == "gpus" and ("sustained_clock_mhz" in data) != ("boost_clock_mhz" in data):
        raise InputError(f"{path}: entry [{entry}] gives one of boost_clock_mhz and sustained_clock_mhz; give both (their ratio scales the kernel rates)")
    if kind == "gpus" and data.get("sustained_clock_mhz", 0) > data.get("boost_clock_mhz", float("inf")):
        raise InputError(f"{path}: entry [{entry}] field 'sustained_clock_mhz' is above its boost_clock_mhz")
    if kind == "gpus" and data.get("matmul_efficiency", 0) > 1:
        raise InputError(f"{path}: entry [{entry}] field 'matmul_efficiency' is a fraction of the peak, at most 1, not {data['matmul_efficiency']!r}")
    if kind == "models" and data.get("train_context") and data.get("context") and data["train_context"] > data["context"]:
        raise InputError(f"{path}: entry [{entry}] field 'train_context' ({data['train_context']:,}) is above 'context' ({data['context']:,}); pre-training cannot use more than the model's context")
    for quantity in ("params", "tokens", "flops"):
        low, high = data.get(f"fitted_min_{quantity}"), data.get(f"fitted_max_{quantity}")
        if low is not None and high is not None and low > high:
            raise InputError(f"{path}: entry [{entry}] field 'fitted_min_{quantity}' ({low:.4g}) is above 'fitted_max_{quantity}' ({high:.4g})")
    if kind == "laws":
        from llmplan.lawforms import validate_law

        validate_law(entry, data, path)
    return Preset(kind=kind, id=entry.lower(), data=data, path=str(path))


def load_file(kind: str, path: Path) -> dict[str, Preset]:
    """A file's entries, validated. With the parse cache, what validation made of these exact bytes under
    these exact rules is kept too (start-up: checking every entry costs more than reading the cache)."""
    raw = _read(path)
    stamp = _validator_stamp() if PARSE_CACHE is not None else b""
    key = raw + b"\0validated " + kind.encode() + b" " + stamp
    cached = PARSE_CACHE.get(key) if stamp else None
    if cached is not None and isinstance(cached.get("entries"), dict):
        return {entry: Preset(kind=kind, id=entry, data=data, path=str(path)) for entry, data in cached["entries"].items()}
    entries = {entry.lower(): validate_entry(kind, entry, value, path) for entry, value in _load_toml(path, raw).items()}
    if stamp:
        PARSE_CACHE.put(key, {"entries": {entry: dict(preset.data) for entry, preset in entries.items()}})
    return entries


def load_catalog(user_dir: str | os.PathLike[str] | None = None, lazy: bool = False) -> Catalog:
    """The shipped presets, extended or overridden by `user_dir` (else LLMPLAN_PRESETS).

    With lazy=True (the CLI) each kind's files are read and checked when that kind is first used:
    `arch --preset` parses models.toml only. The folder itself is checked at once either way."""
    base = builtin_dir()
    folder = user_dir if user_dir is not None else (os.environ.get("LLMPLAN_PRESETS") or None)
    folder_path = None
    if folder is not None:
        folder_path = Path(folder)
        try:  # a name too long for the OS or with a NUL byte is not a folder either
            is_folder = folder_path.is_dir()
            found = is_folder and any((folder_path / f"{kind}.toml").is_file() for kind in KINDS)
        except (OSError, ValueError):
            is_folder = found = False
        if not is_folder:
            raise InputError(f"presets folder {quote(str(folder))} does not exist or is not a folder")
        if not found:
            raise InputError(f"presets folder {quote(str(folder))} has none of models.toml, laws.toml, gpus.toml, hparams.toml, engines.toml, runs.toml, stacks.toml")

    def load_kind(kind: str) -> dict[str, Preset]:
        entries: dict[str, Preset] = {}
        path = base / f"{kind}.toml"
        if path.is_file():
            entries.update(load_file(kind, path))
        if folder_path is not None and (folder_path / f"{kind}.toml").is_file():
            entries.update(_keep_aliases(entries, load_file(kind, folder_path / f"{kind}.toml")))
        _check_aliases_of(kind, entries.values())
        return entries

    catalog = Catalog(entries=_Kinds(load_kind))
    if not lazy:
        for kind in KINDS:
            catalog.entries[kind]
    return catalog


class _Kinds(dict):
    """kind -> entries, each kind loaded on first use."""

    def __init__(self, loader: Any) -> None:
        super().__init__()
        self._loader = loader

    def __missing__(self, kind: str) -> dict[str, Preset]:
        if kind not in KINDS:
            raise KeyError(kind)
        self[kind] = entries = self._loader(kind)
        return entries


def _keep_aliases(shipped: dict[str, Preset], user: dict[str, Preset]) -> dict[str, Preset]:
    """A user entry that replaces a shipped one keeps the shipped aliases unless it lists its own
    (overriding [h100-sxm] must not make `--gpu h100` unknown)."""
    out = {}
    for key, preset in user.items():
        old = shipped.get(key)
        if old is not None and "aliases" not in preset.data and old.aliases:
            preset = Preset(preset.kind, preset.id, {**preset.data, "aliases": old.aliases}, preset.path)
        out[key] = preset
    return out


def _check_aliases_of(kind: str, presets: Iterable[Preset]) -> None:
    presets = list(presets)
    owner: dict[str, str] = {preset.id: preset.id for preset in presets}
    for preset in presets:
        for alias in preset.aliases:
            key = alias.lower()
            if key in owner and owner[key] != preset.id:
                raise InputError(f"{preset.path}: entry [{preset.id}] alias '{alias}' is already used by [{owner[key]}]")
            owner[key] = preset.id


_CACHE: dict[str | None, Catalog] = {}


def catalog(user_dir: str | os.PathLike[str] | None = None) -> Catalog:
    """load_catalog, cached per process (the CLI may ask more than once)."""
    key = str(user_dir) if user_dir is not None else os.environ.get("LLMPLAN_PRESETS") or None
    if key not in _CACHE:
        _CACHE[key] = load_catalog(user_dir, lazy=True)
    return _CACHE[key]
