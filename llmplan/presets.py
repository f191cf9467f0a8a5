"""Load and validate the presets: models, laws and GPUs, as TOML data.

The shipped files live in `presets/` at the top of the repository and inside the wheel (as the
package `llmplan._presets`). A user's folder (`--presets DIR` or `LLMPLAN_PRESETS`) may hold
`models.toml`, `laws.toml` and `gpus.toml`; its entries add to the shipped ones or replace an entry
of the same id whole. Nothing in a preset is executed: files are parsed as TOML and every field is
checked against the schema below; a bad one is an InputError naming file, entry and field.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from llmplan.errors import InputError

KINDS = ("models", "laws", "gpus")
KIND_NOUN = {"models": "model", "laws": "law", "gpus": "GPU"}

# Field specs: name -> (type, required, allowed values or None). "int" accepts an integral float.
_STR, _INT, _FLOAT, _BOOL, _STRS = "str", "int", "float", "bool", "list[str]"

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
    # Shape details some published counts need (llmplan.arch.Shape documents each).
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
    "memory_bytes": (_INT, True, None),
    "bandwidth": (_FLOAT, True, None),
    **{f"peak_{d}": (_FLOAT, False, None) for d in _PEAK_DTYPES},
    **{f"sparse_{d}": (_FLOAT, False, None) for d in _PEAK_DTYPES},
    # Interconnect and achievable matmul rate, for llmplan.throughput (bytes/s per GPU per direction).
    "gpus_per_node": (_INT, False, None),  # scale-up domain: 8 for DGX/HGX, 72 for NVL72
    "intra_node_bandwidth": (_FLOAT, False, None),
    "inter_node_bandwidth": (_FLOAT, False, None),
    "interconnect_source": (_STR, False, None),
    "matmul_efficiency": (_FLOAT, False, None),  # fraction of the dense peak a large matmul reaches (0, 1]
    "matmul_efficiency_source": (_STR, False, None),
    "sms": (_INT, False, None),  # streaming multiprocessors (AMD: compute units), for GEMM wave quantisation
    "sms_source": (_STR, False, None),
}

# Laws: the common fields and a form; the numeric constants of each form are checked by
# llmplan.laws (which knows the forms), through the `law_validator` hook below.
LAW_FIELDS: dict[str, tuple[str, bool, tuple[str, ...] | None]] = {
    **_COMMON,
    "form": (_STR, True, None),
    "convention": (_STR, False, None),
    "fitted_range": (_STR, False, None),
}

SCHEMAS = {"models": MODEL_FIELDS, "laws": LAW_FIELDS, "gpus": GPU_FIELDS}

# Kinds whose entries may carry extra numeric fields (law constants), checked elsewhere.
_OPEN_NUMERIC = {"laws"}


@dataclass(frozen=True)
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


@dataclass
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
        close = difflib.get_close_matches(name.strip().lower(), names, n=3, cutoff=0.5)
        ids = []
        for c in close:
            target = self.find(kind, c)
            if target and target.id not in ids:
                ids.append(target.id)
        hint = f"; did you mean {', '.join(ids)}?" if ids else f"; see 'llmplan presets list --kind {kind}'"
        return f"unknown {KIND_NOUN[kind]} {name!r}{hint}"


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


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise InputError(f"cannot read preset file {path}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid TOML: {error}") from None


def _check_value(path: Path, entry: str, name: str, value: Any, spec: tuple[str, bool, Any]) -> Any:
    kind, _required, allowed = spec
    where = f"{path}: entry [{entry}] field '{name}'"
    if kind == _STR:
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where} must be a non-empty string, not {value!r}")
        if allowed and value not in allowed:
            raise InputError(f"{where} is {value!r}; expected one of {', '.join(allowed)}")
        return value
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, not {value!r}")
        return value
    if kind == _STRS:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise InputError(f"{where} must be a list of strings")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} must be a number, not {value!r}")
    if value != value or value in (float("inf"), float("-inf")) or value <= 0:
        raise InputError(f"{where} must be a positive, finite number, not {value!r}")
    if kind == _INT:
        if isinstance(value, float):
            if not value.is_integer():
                raise InputError(f"{where} must be a whole number, not {value!r}")
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
                raise InputError(f"{path}: entry [{entry}] field '{name}' must be a number, not {value!r}")
            data[name] = float(value)
            continue
        if spec is None:
            close = difflib.get_close_matches(name, list(schema), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(f"{path}: entry [{entry}] has unknown field '{name}'{hint}")
        data[name] = _check_value(path, entry, name, value, spec)
    for name, (_kind, required, _allowed) in schema.items():
        if required and name not in data:
            raise InputError(f"{path}: entry [{entry}] is missing the required field '{name}'")
    if kind == "gpus" and data.get("matmul_efficiency", 0) > 1:
        raise InputError(f"{path}: entry [{entry}] field 'matmul_efficiency' is a fraction of the peak, at most 1, not {data['matmul_efficiency']!r}")
    if kind == "laws" and law_validator is not None:
        law_validator(entry, data, path)
    return Preset(kind=kind, id=entry.lower(), data=data, path=str(path))


# Set by llmplan.laws on import: checks a law's constants for its form.
law_validator = None


def load_file(kind: str, path: Path) -> dict[str, Preset]:
    raw = _load_toml(path)
    return {entry.lower(): validate_entry(kind, entry, value, path) for entry, value in raw.items()}


def load_catalog(user_dir: str | os.PathLike[str] | None = None) -> Catalog:
    """The shipped presets, extended or overridden by `user_dir` (else LLMPLAN_PRESETS)."""
    try:  # the law validator lives with the law forms
        import llmplan.laws  # noqa: F401
    except ModuleNotFoundError as error:
        if error.name != "llmplan.laws":
            raise
    catalog = Catalog()
    base = builtin_dir()
    for kind in KINDS:
        path = base / f"{kind}.toml"
        if path.is_file():
            catalog.entries[kind].update(load_file(kind, path))
    folder = user_dir if user_dir is not None else (os.environ.get("LLMPLAN_PRESETS") or None)
    if folder is not None:
        folder_path = Path(folder)
        try:  # a name too long for the OS or with a NUL byte is not a folder either
            is_folder = folder_path.is_dir()
        except (OSError, ValueError):
            is_folder = False
        if not is_folder:
            raise InputError(f"presets folder {str(folder)!r} does not exist or is not a folder")
        found = False
        for kind in KINDS:
            path = folder_path / f"{kind}.toml"
            if path.is_file():
                found = True
                catalog.entries[kind].update(load_file(kind, path))
        if not found:
            raise InputError(f"presets folder {str(folder)!r} has none of models.toml, laws.toml, gpus.toml")
    _check_aliases(catalog)
    return catalog


def _check_aliases(catalog: Catalog) -> None:
    for kind in KINDS:
        owner: dict[str, str] = {}
        for preset in catalog.all(kind):
            owner.setdefault(preset.id, preset.id)
        for preset in catalog.all(kind):
            for alias in preset.aliases:
                key = alias.lower()
                if key in owner and owner[key] != preset.id:
                    raise InputError(
                        f"{preset.path}: entry [{preset.id}] alias '{alias}' is already used by [{owner[key]}]"
                    )
                owner[key] = preset.id


_CACHE: dict[str | None, Catalog] = {}


def catalog(user_dir: str | os.PathLike[str] | None = None) -> Catalog:
    """load_catalog, cached per process (the CLI may ask more than once)."""
    key = str(user_dir) if user_dir is not None else os.environ.get("LLMPLAN_PRESETS") or None
    if key not in _CACHE:
        _CACHE[key] = load_catalog(user_dir)
    return _CACHE[key]
