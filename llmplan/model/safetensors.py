"""Count a checkpoint's parameters from its safetensors headers, never its tensors.

A `.safetensors` file is an 8-byte little-endian length N, then N bytes of UTF-8 JSON mapping each
tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (and an optional "__metadata__" of
strings), then the raw bytes (huggingface/safetensors README, "Format"). Only the 8 bytes and the
header are read; the header is capped at MAX_HEADER_BYTES (the reference implementation's own
limit) and parsed as JSON, so nothing in a file is executed and no tensor is loaded.

A checkpoint is one file, a folder of shards, or a `model.safetensors.index.json` whose weight_map
names its shards. Counts are of stored elements: a quantised checkpoint's packed integers are
counted as stored (4-bit weights packed eight to an int32 count as one element each), so such a
count is the file's, not the model's.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import field
from typing import Any

from llmplan.errors import InputError
from llmplan.records import record

# huggingface/safetensors src/tensor.rs: `const MAX_HEADER_SIZE: usize = 100_000_000;` (HeaderTooLarge).
MAX_HEADER_BYTES = 100_000_000
INDEX_NAME = "model.safetensors.index.json"

# Bits per element of each dtype the format defines (huggingface/safetensors src/tensor.rs, enum Dtype).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64,
    "C64": 64,
}

# Tensors that are buffers in the modelling code, not parameters, but that some checkpoints store:
# rotary inv_freq (older Llama/Falcon exports), GPT-2's causal-mask `attn.bias`/`attn.masked_bias`,
# BERT's `embeddings.position_ids`.
_BUFFER = re.compile(r"(^|\.)(inv_freq|masked_bias|position_ids)$|(^|\.)attn\.bias$")


@record
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    bytes: int  # data_offsets end - begin: bytes on disk
    file: str

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def is_buffer(self) -> bool:
        return bool(_BUFFER.search(self.name))


@record
class Checkpoint:
    """What the headers of one checkpoint say."""

    path: str  # what was given
    folder: str  # where its files (and a config.json) live
    files: tuple[str, ...]
    tensors: tuple[Tensor, ...]
    index_total_bytes: int | None = None  # model.safetensors.index.json metadata.total_size
    metadata: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # sentences for stderr (an index with an empty weight_map)

    @property
    def params(self) -> int:
        """Every stored element (buffers stored as tensors included)."""
        return sum(t.elements for t in self.tensors)

    @property
    def buffer_elements(self) -> int:
        return sum(t.elements for t in self.tensors if t.is_buffer)

    @property
    def tensor_bytes(self) -> int:
        return sum(t.bytes for t in self.tensors)

    def by_dtype(self) -> dict[str, dict[str, int]]:
        """dtype -> {"tensors", "params", "bytes"}, largest first."""
        out: dict[str, dict[str, int]] = {}
        for t in self.tensors:
            slot = out.setdefault(t.dtype, {"tensors": 0, "params": 0, "bytes": 0})
            slot["tensors"] += 1
            slot["params"] += t.elements
            slot["bytes"] += t.bytes
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["bytes"]))

    @property
    def name(self) -> str:
        base = os.path.basename(os.path.normpath(self.path))
        if base == INDEX_NAME or (os.path.isfile(self.path) and base.startswith("model")):
            base = os.path.basename(os.path.normpath(self.folder)) or base
        return re.sub(r"\.safetensors$", "", base) or "checkpoint"


def parse_header(prefix_and_header: bytes, size: int, where: str) -> dict[str, Any]:
    """The JSON header of a safetensors file of `size` bytes, from its first bytes (at least 8, the
    length, then the header); InputError naming `where` for anything that is not one. The header's
    length is checked against MAX_HEADER_BYTES before it is read, so a hostile length reads nothing."""
    length = header_length(prefix_and_header, size, where)
    raw = prefix_and_header[8:8 + length]
    if len(raw) < length:
        raise InputError(f"{where}: the header claims {length:,} bytes but only {len(raw):,} were read; truncated?")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InputError(f"{where}: the header is not JSON; not a safetensors file?") from None
    if not isinstance(header, dict):
        raise InputError(f"{where}: the header is not a JSON object; not a safetensors file?")
    header["\0data_bytes"] = size - 8 - length
    return header


def header_length(prefix: bytes, size: int, where: str) -> int:
    """The header length N the first 8 bytes state, checked against the file's size and MAX_HEADER_BYTES."""
    if len(prefix) < 8:
        raise InputError(f"{where}: {len(prefix)} bytes, too short for a safetensors file (8-byte header length, then JSON)")
    (length,) = struct.unpack("<Q", prefix[:8])
    if length > MAX_HEADER_BYTES:
        raise InputError(f"{where}: the header claims {length:,} bytes, more than the {MAX_HEADER_BYTES:,} allowed; not a safetensors file?")
    if length > size - 8:
        raise InputError(f"{where}: the header claims {length:,} bytes but the file holds {size - 8:,} after the length; truncated?")
    return length


def read_header(path: str) -> dict[str, Any]:
    """The JSON header of one .safetensors file (InputError for anything that is not one)."""
    where = f"--safetensors {path!r}"
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            length = header_length(prefix, size, where)
            raw = prefix + handle.read(length)
    except FileNotFoundError:
        raise InputError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{where}: is a folder with no .safetensors files") from None
    except OSError as error:
        raise InputError(f"{where}: cannot be read ({error.__class__.__name__})") from None
    return parse_header(raw, size, where)


def _tensors(path: str, header: dict[str, Any], label: str = "--safetensors") -> list[Tensor]:
    data_bytes = header.pop("\0data_bytes")
    out = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"{label} {path!r}: tensor {name[:80]!r}"
        if not isinstance(entry, dict):
            raise InputError(f"{where} is not a JSON object with dtype, shape and data_offsets")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPE_BITS:
            raise InputError(f"{where}: unknown dtype {str(dtype)[:20]!r} (known: {', '.join(DTYPE_BITS)})")
        if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise InputError(f"{where}: shape must be a list of whole numbers >= 0")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
            raise InputError(f"{where}: data_offsets must be [begin, end] within the file's {data_bytes:,} data bytes")
        tensor = Tensor(name, dtype, tuple(shape), offsets[1] - offsets[0], os.path.basename(path))
        expected = math.ceil(tensor.elements * DTYPE_BITS[dtype] / 8)
        if tensor.bytes != expected:
            raise InputError(f"{where}: {tensor.bytes:,} bytes on disk for {tensor.elements:,} {dtype} values ({expected:,} expected)")
        out.append(tensor)
    return out


def _index(path: str) -> tuple[list[str], int | None]:
    try:
        if os.path.getsize(path) > MAX_HEADER_BYTES:
            raise InputError(f"--safetensors {path!r}: larger than {MAX_HEADER_BYTES:,} bytes; not an index file?")
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InputError(f"--safetensors {path!r}: not a readable JSON index (model.safetensors.index.json)") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise InputError(f"--safetensors {path!r}: an index needs a 'weight_map' of tensor name -> shard file")
    shards = sorted(set(weight_map.values()))
    for shard in shards:
        if os.path.basename(shard) != shard:
            raise InputError(f"--safetensors {path!r}: shard {shard[:80]!r} must be a file name beside the index")
    total = (data.get("metadata") or {}).get("total_size") if isinstance(data.get("metadata"), dict) else None
    return shards, total if isinstance(total, int) and not isinstance(total, bool) else None


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read one .safetensors file, a folder of them, or an index.json beside its shards. An index whose
    weight_map is empty names no shard: the shards in its folder are counted instead, with a note, or
    the index is said to be empty when there are none."""
    p = os.fspath(path)
    total = None
    notes: list[str] = []
    if os.path.isdir(p):
        folder = p
        names = []
        if os.path.isfile(os.path.join(p, INDEX_NAME)):
            names, total = _index(os.path.join(p, INDEX_NAME))
            if not names:
                names = _shards_in(p, f"its {INDEX_NAME} has an empty weight_map and")
                notes.append(f"{INDEX_NAME} has an empty weight_map; counted the {len(names)} .safetensors file(s) in its folder")
        else:
            names = _shards_in(p, "the folder holds")
    elif p.endswith(".json"):
        folder = os.path.dirname(p) or "."
        if not os.path.isfile(p):
            raise InputError(f"--safetensors {p!r}: no such file")
        names, total = _index(p)
        if not names:
            names = _shards_in(folder, "the index has an empty weight_map and its folder holds", shown=p)
            notes.append(f"{os.path.basename(p)} has an empty weight_map; counted the {len(names)} .safetensors file(s) beside it")
    elif os.path.exists(p):
        folder, names = os.path.dirname(p) or ".", [os.path.basename(p)]
    else:
        raise InputError(f"--safetensors {p!r}: no such file or folder")
    return assemble(p, folder, names, total, lambda name: read_header(os.path.join(folder, name)), notes=notes)


def _shards_in(folder: str, saying: str, shown: str | None = None) -> list[str]:
    """The .safetensors files of a folder (InputError `saying` ... "no .safetensors files" when none)."""
    names = sorted(n for n in os.listdir(folder) if n.endswith(".safetensors"))
    consolidated = [n for n in names if n.startswith("consolidated")]
    if consolidated and len(consolidated) < len(names):
        # Mistral's repositories ship the same weights twice: consolidated.safetensors and HF shards.
        raise InputError(f"--safetensors {shown or folder!r}: the folder holds {consolidated[0]} and other shards, likely the same "
                         f"weights twice; give one file or the {INDEX_NAME}")
    if not names:
        raise InputError(f"--safetensors {shown or folder!r}: {saying} no .safetensors files")
    return names


def assemble(path: str, folder: str, names: list[str], total: int | None, header_of: Any, label: str = "--safetensors",
             notes: list[str] | tuple[str, ...] = ()) -> Checkpoint:
    """A Checkpoint from the headers of its shards: header_of(name) -> parse_header's dict. Shared by
    local files (read_checkpoint) and the Hub (llmplan.model.hub), so both count alike."""
    tensors: list[Tensor] = []
    metadata: dict = {}
    seen: dict[str, str] = {}
    for name in names:
        header = header_of(name)
        meta = header.get("__metadata__")
        if isinstance(meta, dict):
            metadata.update({k: v for k, v in meta.items() if isinstance(v, str)})
        for tensor in _tensors(os.path.join(folder, name) if label == "--safetensors" else f"{path}/{name}", header, label):
            if tensor.name in seen:
                raise InputError(f"{label} {path!r}: tensor {tensor.name[:80]!r} is in both {seen[tensor.name]} and {name}")
            seen[tensor.name] = name
            tensors.append(tensor)
    return Checkpoint(path, folder, tuple(names), tuple(tensors), total, metadata, tuple(notes))


def compare(checkpoint: Checkpoint, shape: Any) -> list[str]:
    """Where the stored count and a config's count (llmplan.model.arch.params of its Shape) disagree,
    each reason in one sentence; [] when they agree exactly."""
    from llmplan.model import arch

    counted = arch.params(shape)
    stored = checkpoint.params
    if stored == counted:
        return []
    reasons = []
    buffers = checkpoint.buffer_elements
    if buffers:
        reasons.append(f"{buffers:,} stored values are buffers, not parameters (rotary inv_freq, causal masks, position ids)")
    gap = stored - buffers - counted
    head = shape.vocab * shape.d_model
    names = {t.name for t in checkpoint.tensors}
    has_head = any(n.endswith(("lm_head.weight", "embed_out.weight")) for n in names)
    if gap == -head and not shape.tied_embeddings and not has_head:
        reasons.append(f"the output head ({head:,}) is not stored: the weights are tied and stored once, though the config says untied")
    elif gap == head and shape.tied_embeddings and has_head:
        reasons.append(f"the output head ({head:,}) is stored although the config ties it to the embedding")
    elif gap:
        reasons.append(f"{abs(gap):,} {'more' if gap > 0 else 'fewer'} values stored than the config counts ({gap / counted:+.2%}): "
                       "extra modules (a vision tower, MTP layers), quantised packing, or a family the config reader counts differently")
    return reasons


def index_mismatch(checkpoint: Checkpoint) -> str | None:
    """A sentence when the index's metadata.total_size differs from the bytes the headers describe."""
    total = checkpoint.index_total_bytes
    if total is None or total == checkpoint.tensor_bytes:
        return None
    return f"the index says total_size {total:,} bytes but the shards' headers describe {checkpoint.tensor_bytes:,}"
