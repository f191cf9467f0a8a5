"""Where a model comes from, resolved to one record: a preset, a Hugging Face config.json, a
safetensors checkpoint, shape flags or a bare parameter count.

`resolve_model` takes exactly one source; `resolve_models` (arch) any number, in order. The command
line declares the options (llmplan.cli.options, groups MODEL_SOURCE and SHAPE) and a command function
(llmplan.commands) passes their values here by name (the
shape flags under the names in SHAPE_FLAGS: `shape_flags(locals())` picks them out).

Sources (exactly one for `resolve_model`; raises InputError otherwise):
  --preset/-p ID      a models preset: its Shape if it publishes one, else its published count
  --hf-config PATH    a Hugging Face config.json (or its folder), read by llmplan.model.hfconfig
  --hf ORG/NAME[@REV] a Hugging Face Hub model: its config.json and safetensors headers through the
                      Hub's cache (llmplan.model.hub; needs the `hub` extra), counted as --safetensors
  --safetensors PATH  a checkpoint's headers (llmplan.model.safetensors): the stored count, exactly; the
                      Shape of a config.json beside it when there is one (with notes where the two
                      counts disagree)
  shape flags         --layers --d-model --heads --vocab (+ --kv-heads --head-dim --ffn --mlp ...)
  --params N          a bare count (e.g. 7B): no Shape
need_shape=True makes a preset without a published shape an InputError (arch needs the shape).
Shape-flag modifiers (--mlp, --tied-embeddings, --norm ...) without --layers/--d-model/... are an
error, not ignored. --vocab alone is not a source (arch --target uses it for its proposals).

The record, `Model` (frozen dataclass):
  name            preset id, config/checkpoint name, "custom" (flags) or "7B params"
  source          "preset" | "hf-config" | "safetensors" | "hf" | "flags" | "params"
  shape           llmplan.model.arch.Shape or None (a bare --params, a shapeless preset, a checkpoint
                  without a readable config.json beside it)
  params          exact count wherever a shape or checkpoint is known (arch.params / stored
                  elements); else the given --params or the preset's published figure
  active_params   parameters a token uses (MoE: arch.active_params); = params for dense models
  exact           whether params is exact (a shape or a checkpoint), not a headline figure
  published_params, published_exact_params, published_active_params   a preset's own figures
  tokens          a preset's training tokens (None elsewhere)
  train_context   the sequence length of pre-training: a preset's train_context, a config's
                  rope_scaling original_max_position_embeddings, else the shape's context
  preset          the llmplan.presets.Preset, or None
  checkpoint      the llmplan.model.safetensors.Checkpoint, or None (checkpoint_bytes etc. come from it)
  notes           sentences for stderr (checkpoint vs config disagreements); the caller prints them
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from llmplan.errors import InputError
from llmplan.records import record

if TYPE_CHECKING:  # pragma: no cover
    from llmplan.model.arch import Shape
    from llmplan.presets import Preset
    from llmplan.model.safetensors import Checkpoint

# Flags that make a shape on their own, and flags that only modify one.
STRUCTURAL_FLAGS = ("layers", "encoder_layers", "decoder_layers", "d_model", "heads", "kv_heads", "head_dim", "ffn",
                    "experts", "experts_per_token", "shared_experts", "moe_ffn", "dense_layers")
MODIFIER_FLAGS = ("family", "mlp", "tied", "positions", "norm", "bias")
SHAPE_FLAGS = STRUCTURAL_FLAGS + MODIFIER_FLAGS + ("vocab",)
_FLAG_NAMES = {"family": "--type", "tied": "--tied-embeddings", "bias": "--bias"}


def shape_flags(values: Mapping[str, Any]) -> dict[str, Any]:
    """The shape-flag values among a command's parameters (pass `locals()`)."""
    return {k: values[k] for k in SHAPE_FLAGS if k in values}


@record
class Model:
    """One resolved model (see the module docstring)."""

    name: str
    source: str
    shape: "Shape | None"
    params: float
    active_params: float
    exact: bool
    published_params: int | None = None
    published_exact_params: int | None = None
    published_active_params: int | None = None
    tokens: int | None = None
    train_context: int | None = None
    preset: "Preset | None" = None
    checkpoint: "Checkpoint | None" = None
    notes: tuple[str, ...] = ()


def _flag(name: str) -> str:
    return _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def _from_shape(shape: "Shape", source: str, name: str | None = None, **extra: Any) -> Model:
    from llmplan.model import arch

    return Model(
        name=name or shape.name or "custom", source=source, shape=shape, params=arch.params(shape),
        active_params=arch.active_params(shape), exact=True, train_context=shape.trained_context, **extra,
    )


def from_preset(pid: str, presets: Path | None = None, need_shape: bool = False) -> Model:
    """A models preset: exact from its shape where it publishes one, else its published figures
    (need_shape: InputError naming the preset instead)."""
    from llmplan.model import arch
    from llmplan.presets import catalog

    p = catalog(presets).get("models", pid)
    published = dict(
        published_params=p.get("params"), published_exact_params=p.get("params_exact"),
        published_active_params=p.get("active_params"), tokens=p.get("tokens"), preset=p,
    )
    try:
        shape = arch.Shape.from_preset(p)
    except InputError:
        if need_shape:
            raise
        total = p.get("params_exact") or p.get("params")
        return Model(name=p.id, source="preset", shape=None, params=total, active_params=p.get("active_params") or total,
                     exact=p.get("params_exact") is not None, train_context=p.get("train_context") or p.get("context"), **published)
    return _from_shape(shape, "preset", p.id, **published)


def from_hf_config(path: Path) -> Model:
    from llmplan.model.hfconfig import shape_from_hf_config

    shape = shape_from_hf_config(path)
    return _from_shape(shape, "hf-config", shape.name or str(path))


def from_safetensors(path: Path) -> Model:
    """The stored count of a checkpoint; the Shape of a config.json beside it, compared."""
    import os

    from llmplan.model import safetensors as st

    ck = st.read_checkpoint(path)
    config = os.path.join(ck.folder, "config.json")
    return from_checkpoint(ck, config if os.path.isfile(config) else None, "safetensors", ck.name)


def from_checkpoint(ck: "Checkpoint", config: str | None, source: str, name: str, notes: tuple[str, ...] = ()) -> Model:
    """A checkpoint's stored count with the Shape of its config.json (None: no shape), compared
    (a local --safetensors and a Hub --hf both end here)."""
    from llmplan.model import arch
    from llmplan.model import safetensors as st
    from llmplan.model.hfconfig import shape_from_hf_config

    notes_: list[str] = list(notes) + list(ck.notes)
    shape = None
    if config is not None:
        try:
            shape = shape_from_hf_config(config)
        except InputError as error:
            notes_.append(f"the config.json beside the checkpoint is not used ({error})")
    stored = ck.params - ck.buffer_elements
    active = stored
    if shape is not None:
        for reason in st.compare(ck, shape):
            notes_.append(f"the checkpoint stores {ck.params:,} values, its config.json counts {arch.params(shape):,} parameters: {reason}")
        if shape.is_moe:  # the stored total, less the routed experts a token does not use
            active = stored - (arch.params(shape) - arch.active_params(shape))
    mismatch = st.index_mismatch(ck)
    if mismatch:
        notes_.append(mismatch)
    return Model(name=name, source=source, shape=shape, params=stored, active_params=active, exact=True,
                 train_context=shape.trained_context if shape is not None else None, checkpoint=ck, notes=tuple(notes_))


def from_hf(spec: str) -> Model:
    """A Hub model, ORG/NAME[@REVISION]: its config.json and its safetensors headers through the Hub's
    cache (llmplan.model.hub); the shape alone, with a note, when it stores no safetensors."""
    from llmplan.model import hub

    found = hub.fetch(spec)
    if found.checkpoint is not None:
        return from_checkpoint(found.checkpoint, found.config, "hf", found.name, found.notes)
    import dataclasses

    return dataclasses.replace(_from_shape(_hf_shape(found.config), "hf", found.name), notes=found.notes)


def _hf_shape(config: str) -> "Shape":
    from llmplan.model.hfconfig import shape_from_hf_config

    return shape_from_hf_config(config)


def from_flags(flags: Mapping[str, Any], context: int | None = None) -> Model | None:
    """A Shape from the shape flags; None when no structural flag is given."""
    from llmplan.model import arch

    given = {k: v for k, v in flags.items() if v is not None}
    if not any(k in given for k in STRUCTURAL_FLAGS):
        _no_stray_modifiers(given)
        return None
    missing = [_flag(k) for k in ("d_model", "heads", "vocab") if k not in given]
    kind = str(given.get("family", "decoder")).strip().lower()
    layers = given.get("layers")
    enc, dec = given.get("encoder_layers"), given.get("decoder_layers")
    if kind == "encoder-decoder":
        if layers and not (enc or dec):
            enc = dec = layers  # T5's num_layers: each stack
        layers = None
        if not (enc and dec):
            missing.append("--encoder-layers and --decoder-layers (or --layers)")
    elif layers is None:
        missing.insert(0, "--layers")
    if missing:
        raise InputError(f"a shape given as flags also needs {', '.join(missing)}")
    arch.check_flag_heads(given["d_model"], given["heads"], given.get("head_dim"))
    shape = arch.Shape(
        family=kind, layers=layers or 0, encoder_layers=enc or 0, decoder_layers=dec or 0,
        d_model=given["d_model"], heads=given["heads"], kv_heads=given.get("kv_heads"), head_dim=given.get("head_dim"),
        ffn=given.get("ffn"), mlp=str(given.get("mlp", "swiglu")).strip().lower(), vocab=given["vocab"],
        context=context or 2048, tied_embeddings=bool(given.get("tied", False)),
        positions=str(given.get("positions", "rotary")).strip().lower(), norm=str(given.get("norm", "rmsnorm")).strip().lower(),
        bias=bool(given.get("bias", False)), experts=given.get("experts", 0), experts_per_token=given.get("experts_per_token", 0),
        shared_experts=given.get("shared_experts", 0), moe_ffn=given.get("moe_ffn"), dense_layers=given.get("dense_layers", 0),
        name="custom",
    )
    return _from_shape(shape, "flags", "custom")


def _no_stray_modifiers(given: Mapping[str, Any]) -> None:
    if any(given.get(k) is not None for k in STRUCTURAL_FLAGS):
        return
    stray = [k for k in MODIFIER_FLAGS if given.get(k) is not None]
    if stray:
        raise InputError(f"{', '.join(_flag(k) for k in stray)} describe a shape given as flags; add --layers --d-model --heads --vocab")


def from_params(text: str) -> Model:
    from llmplan.units import parse_count

    count = parse_count(text, "a parameter count")
    return Model(name=f"{text} params", source="params", shape=None, params=count, active_params=count, exact=False)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _known(flags: Mapping[str, Any]) -> None:
    unknown = set(flags) - set(SHAPE_FLAGS)
    if unknown:  # a programming error in a command, not bad input
        raise TypeError(f"unknown shape flags {sorted(unknown)}; the names are SHAPE_FLAGS")


def resolve_models(
    *, preset: Any = None, hf_config: Any = None, safetensors: Any = None, params: str | None = None,
    presets: Path | None = None, context: int | None = None, need_shape: bool = False, hf: Any = None, **flags: Any,
) -> list[Model]:
    """Every model given, in order: presets, configs, checkpoints, the shape flags, --params. [] when
    none is given (the caller decides whether that is an error). need_shape: a preset that publishes
    no shape is an InputError (arch), not its published count."""
    _known(flags)
    models = [from_preset(pid, presets, need_shape) for pid in _as_list(preset)] if preset else []
    models += [from_hf_config(path) for path in _as_list(hf_config)]
    models += [from_safetensors(path) for path in _as_list(safetensors)]
    models += [from_hf(spec) for spec in _as_list(hf)]
    flagged = from_flags(flags, context)
    if flagged is not None:
        models.append(flagged)
    if params is not None:
        models.append(from_params(params))
    return models


def resolve_model(
    *, preset: str | None = None, hf_config: Path | None = None, safetensors: Path | None = None,
    params: str | None = None, presets: Path | None = None, context: int | None = None,
    command: str = "llmplan", need_shape: bool = False, hf: str | None = None, **flags: Any,
) -> Model:
    """Exactly one model from one source; InputError naming what was given when there are none or several."""
    _known(flags)
    sources = [name for name, given in (("--preset", preset), ("--hf-config", hf_config), ("--safetensors", safetensors),
                                          ("--hf", hf), ("--params", params)) if given is not None]
    if any(flags.get(k) is not None for k in STRUCTURAL_FLAGS):
        sources.append("shape flags")
    if not sources:
        raise InputError(f"give --preset ID, --hf ORG/NAME, --hf-config PATH, --safetensors PATH, --params N or the shape as flags "
                         f"(--layers --d-model --heads --vocab); see '{command} --help'")
    if len(sources) > 1:
        raise InputError(f"give one model: {' and '.join(sources)} were both given")
    _no_stray_modifiers(flags)
    if preset is not None:
        return from_preset(preset, presets, need_shape)
    if hf_config is not None:
        return from_hf_config(hf_config)
    if safetensors is not None:
        return from_safetensors(safetensors)
    if hf is not None:
        return from_hf(hf)
    if params is not None:
        return from_params(params)
    return from_flags(flags, context)
