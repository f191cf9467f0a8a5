"""Option values as the command line and Python give them: checked, and turned into what the core takes.

The command line's parser has already made integers of integer options; Python callers may give
"8", 8 or 8.0, so each function checks its own values here, with the option's name in the message.
"""

from __future__ import annotations

import numbers
import operator
import re
from typing import Any, Optional

from llmplan.errors import InputError


def integer(value: Any, option: str) -> Optional[int]:
    """A whole number given as an int (numpy's too), a whole float or its text (None: not given)."""
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, (str, bool, float)) and hasattr(value, "__index__"):  # numpy.int64 and the like
        return operator.index(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InputError(f"{option} takes a whole number, not {value!r}")


def number(value: Any, option: str) -> Optional[float]:
    """A real number given as a number (numpy's too) or its text (None: not given)."""
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise InputError(f"{option} takes a number, not {value!r}")


def switch(value: Any, option: str) -> bool:
    """A flag: True/False (or their text: true, false, yes, no, 1, 0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off", "none", ""):
        return False
    raise InputError(f"{option} takes True or False, not {value!r}")


def listed(value: Any) -> Optional[list[Any]]:
    """A repeatable option: one value or a list of them (None: not given)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def text(value: Any) -> Optional[str]:
    """A value the command line takes as text (units, sizes): numbers become their text (7e9 -> '7e9')."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise InputError(f"expected a value, not {value!r}")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def choice(value: str, allowed: Any, option: str) -> str:
    """One of `allowed` (case-insensitive), or bad input naming the option and the nearest choice."""
    import difflib

    key = str(value).strip().lower()
    if key not in allowed:
        close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
        raise InputError(f"{option} {value!r} is not one of {', '.join(allowed)}" + (f"; did you mean {close[0]}?" if close else ""))
    return key


def parse_dtype(value: str, allowed: Any, option: str = "--dtype") -> str:
    """Every --dtype (and --kv-dtype, --serve-dtype): the spellings llmplan.dtypes knows (bfloat16,
    torch.float16, fp8-e4m3 ...) to the short name in `allowed`, else bad input naming the choices."""
    from llmplan.dtypes import canonical

    return choice(canonical(str(value), allowed), allowed, option)


def positive(value: Optional[int], name: str) -> None:
    """A count given as an option must be a positive whole number (None: not given)."""
    if value is not None and value <= 0:
        raise InputError(f"{name} must be a positive whole number, not {value}")


def parse_bandwidth(text: str | None, option: str) -> float | None:
    """'450GB', '450GB/s', '400Gb/s', '400Gbps', '1.8TB/s' or a plain number, to bytes per second."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgtp]?)(b|B|bit|bits|byte|bytes)?\s*(/s|ps)?\s*", str(text))
    if not m:
        raise InputError(f"{option} {text!r} is not a bandwidth; give bytes/s such as 450GB or 50e9, or bits/s such as 400Gb/s")
    value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15}[m.group(2).lower()]
    unit = m.group(3) or "B"
    if unit in ("b", "bit", "bits"):
        value /= 8
    if not value > 0:
        raise InputError(f"{option} must be positive, not {text!r}")
    return value


KV_DTYPES = ("fp32", "fp16", "bf16", "fp8", "int8", "int4")  # what a KV cache is stored in
TRAIN_DTYPES = ("bf16", "fp16", "fp8")  # the precisions the step model times


def load_stack(stack: Any, presets: Any, compile_: Any = None) -> Any:
    """The --stack preset (default: llmplan.systems.stack.DEFAULT_STACK) with --compile applied."""
    from llmplan.systems.stack import load

    return load(stack, presets).compiled_as(compile_)


def model_options(options: dict[str, Any], command: str, full: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """A function's model options (**model) as (source, shape flags): preset, hf, hf_config, safetensors,
    and the shape flags (SHAPE_FLAGS; with `full` also arch's encoder-decoder and count choices).
    A name that is neither is bad input naming them all."""
    from llmplan.model.source import SHAPE_FLAGS

    sources = ("preset", "hf", "hf_config", "safetensors")
    flags = SHAPE_FLAGS if full else tuple(f for f in SHAPE_FLAGS if f not in FULL_ONLY)
    unknown = [name for name in options if name not in sources and name not in flags]
    if unknown:
        raise InputError(f"llmplan {command} has no option {unknown[0]!r}; its model options: {', '.join(sources + tuple(flags))}")
    source = {name: options.get(name) for name in sources}
    return source, {name: options.get(name) for name in flags}


# arch's own shape flags (the command line's FULL_SHAPE groups): not taken by the other commands.
FULL_ONLY = ("family", "encoder_layers", "decoder_layers", "positions", "norm", "bias")


# ----- training steps (throughput, layout, plan, serve, arch) ---------------------------------------

# The command line's other spellings of a model option, as keywords: name -> (the option's name, negated).
SPELLINGS = {"tied_embeddings": ("tied", False), "untied_embeddings": ("tied", True), "type": ("family", False),
             "no_bias": ("bias", True)}
SHAPE_SWITCHES = ("tied", "bias")  # the shape flags that are switches; the text ones: family, mlp, positions, norm
SHAPE_TEXTS = ("family", "mlp", "positions", "norm")


def model_flags(options: dict[str, Any], command: str, full: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """`model_options` with the command line's other spellings (tied_embeddings=, untied_embeddings=,
    type=, no_bias=) and the shape flags' values checked as the command line's parser checks them:
    whole numbers for the counts, True/False for --tied-embeddings and --bias."""
    given: dict[str, Any] = {}
    for name, value in options.items():
        target, negated = SPELLINGS.get(name, (name, False))
        if target in given:
            raise InputError(f"llmplan {command}: {target} given twice ({name}=)")
        given[target] = (not switch(value, "--" + name.replace("_", "-"))) if negated and value is not None else value
    source, flags = model_options(given, command, full)
    for name, value in flags.items():
        option = "--" + ("type" if name == "family" else "tied-embeddings" if name == "tied" else name.replace("_", "-"))
        if value is None:
            continue
        if name in SHAPE_SWITCHES:
            flags[name] = switch(value, option)
        elif name in SHAPE_TEXTS:
            flags[name] = text(value)
        else:
            flags[name] = integer(value, option)
    return source, flags


def renamed(options: dict[str, Any], name: str, keyword: str, given: Any, default: Any) -> Any:
    """An option whose keyword is not its long name (--compile: compile_, --input: input_tokens) given by
    its long name (compile=True, input=512): taken out of `options` (the **model options), else `given`."""
    if name not in options:
        return given
    value = options.pop(name)
    if given != default:  # both given (equal values, not identity: 2048 is not always the same object)
        raise InputError(f"give {name}= or {keyword}=, not both")
    return value
