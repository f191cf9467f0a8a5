"""Parse and format the quantities llmplan speaks in: counts, compute, memory, time.

Parsing is strict: a value that is not understood raises InputError naming the value, what was
expected and, where one is close, a guess ("'3000pdf' is not a compute amount; did you mean 3000pfd?").
Formatting is for people (tables); machine formats keep base units at full precision.
"""

from __future__ import annotations

import difflib
import math
import re

from llmplan.errors import input_error

# 1 PF-day = 1e15 FLOP/s for 86,400 s (Brown et al. 2020, Table D.1 convention).
PF_DAY = 1e15 * 86_400

COUNT_SUFFIXES = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}

# Unit spellings for compute, all lower case and without spaces.
_FLOP_UNITS = ("", "flop", "flops")
_PFD_UNITS = ("pfd", "pf-day", "pf-days", "pfday", "pfdays", "pf_day", "pf_days", "petaflop-days", "petaflop/s-days", "pf/s-days")

MEMORY_UNITS = {
    "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}

# A number, with optional digit grouping as llmplan prints it (7,000,000,000) or as Python writes it
# (7_000_000_000). Matched with re.match and the rest taken by slicing: linear in the input's length
# (a lazy `(.*?)\s*$` group is quadratic on a value with 100,000 spaces).
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+(?![\d_])(?:\.\d*)?|\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _split(text: str) -> tuple[float, str] | None:
    """Split '3000 PF-days' into (3000.0, 'PF-days'); None when it does not start with a number."""
    stripped = str(text).strip()
    match = _NUMBER.match(stripped)
    if not match:
        return None
    number = match.group(0).replace("_", "").replace(",", "")
    try:
        return float(number), stripped[match.end():].strip()
    except ValueError:
        return None


def _number_part(text: str, unit: str) -> str:
    raw = str(text).strip()
    return raw[: len(raw) - len(unit)].strip() if unit else raw


def _guess(number: str, unit: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """A close unit for a mistyped one, keeping the number's digits as typed.

    No guess when the 'unit' starts with a digit or a separator (the number itself is garbled, and
    a guess would change its magnitude: '1.000,5pfd'), and a single letter only where it begins one
    unit (F -> FLOPs, never PF-days)."""
    key = unit.lower()
    if not key or key[0].isdigit() or key[0] in ",._'":
        return None
    if len(key) == 1:
        starting = [c for c in choices if c.lower().startswith(key)]
        return f"{number}{starting[0]}" if len(starting) == 1 or (starting and all(s.lower().startswith(starting[0].lower()) for s in starting)) else None
    close = difflib.get_close_matches(key, [c.lower() for c in choices], n=1, cutoff=0.6)
    if not close:
        return None
    original = next(c for c in choices if c.lower() == close[0])
    return f"{number}{original}"


def _integral(value: float) -> int | float:
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def parse_count(text: str | float | int, what: str = "a count") -> int | float:
    """'7B', '6.74e9', '175_000_000', '1.4T', '350M', '12k' -> a number (K/M/B/T, G = B, any case)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        parts = _split(text)
        if parts is None:
            raise input_error(text, f"{what} (a number such as 7B, 1.4T, 350M or 6.74e9)")
        number, suffix = parts
        key = suffix.lower()
        if key not in COUNT_SUFFIXES:
            guess = _guess(_number_part(text, suffix), suffix, [k.upper() for k in COUNT_SUFFIXES if k])
            raise input_error(text, f"{what} (suffixes K, M, B or T)", guess)
        value = number * COUNT_SUFFIXES[key]
    if not math.isfinite(value) or value <= 0:
        raise input_error(text, f"{what}: it must be a positive, finite number")
    return _integral(value)


def parse_compute(text: str | float | int) -> float:
    """'3000pfd', '3000 PF-days', '1e24', '1e24flop', '2.5e24 FLOPs' -> FLOPs (a bare number is FLOPs)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        parts = _split(text)
        if parts is None:
            raise input_error(text, "a compute amount (e.g. 3000pfd, 1e24 or 2.5e24 FLOPs)")
        number, unit = parts
        key = unit.lower().replace(" ", "")
        scale = 1.0
        if key[:1] in ("k", "m", "b", "t") and key[1:] in _PFD_UNITS + _FLOP_UNITS[1:]:
            scale, key = COUNT_SUFFIXES[key[0]], key[1:]
        if key in _FLOP_UNITS:
            value = number * scale
        elif key in _PFD_UNITS:
            value = number * scale * PF_DAY
        else:
            guess = _guess(_number_part(text, unit), key, ("pfd", "flop", "flops"))
            raise input_error(text, "a compute amount (FLOPs or PF-days: 1e24, 3000pfd)", guess)
    if not math.isfinite(value) or value <= 0:
        raise input_error(text, "a compute amount: it must be a positive, finite number of FLOPs")
    return value


def parse_memory(text: str | float | int) -> int:
    """'80GB' (1e9), '80GiB' (2**30), '512MiB' -> bytes; a bare number is bytes."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        parts = _split(text)
        if parts is None:
            raise input_error(text, "a memory size (e.g. 80GB, 80GiB, 512MiB)")
        number, unit = parts
        key = unit.lower().replace(" ", "") or "b"
        if key not in MEMORY_UNITS:
            number_text = _number_part(text, unit)
            guess = _guess(number_text, key, ["GB", "GiB", "MB", "MiB", "TB", "TiB"])
            if key in ("g", "m", "t", "k"):
                guess = f"{number_text}{key.upper()}B or {number_text}{key.upper()}iB"
            raise input_error(text, "a memory size (units B, KB, MB, GB, TB or KiB, MiB, GiB, TiB)", guess)
        value = number * MEMORY_UNITS[key]
    if not math.isfinite(value) or value < 0:
        raise input_error(text, "a memory size: it must be a non-negative, finite number of bytes")
    return int(round(value))


def parse_positive(text: str | float, what: str) -> float:
    """A plain positive finite number (a ratio, a price, an MFU)."""
    try:
        parts = _split(text)
        if parts is None or parts[1]:
            raise ValueError
        value = parts[0]
    except ValueError:
        raise input_error(text, what) from None
    if not math.isfinite(value) or value <= 0:
        raise input_error(text, f"{what}: it must be a positive, finite number")
    return value


# ---------------------------------------------------------------------------- formatting

_COUNT_STEPS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def format_count(value: float | None) -> str:
    """7e9 -> '7.0B', 6.74e9 -> '6.7B', 175e9 -> '175B', 1.4e12 -> '1.40T', 12000 -> '12.0K'.

    Trillions keep two decimals (token counts live there and 1.4T vs 1.5T matters); below 100 of a
    unit one decimal; from 100 up none.
    """
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1e15:
        return f"{value:.2e}"
    for step, suffix in _COUNT_STEPS:
        decimals = 2 if suffix == "T" else (0 if magnitude >= 99.95 * step else 1)
        # 999.96B must read 1.00T, not 1000B: compare after rounding to what is shown.
        if round(magnitude / step, decimals) >= 1 and (suffix == "T" or round(magnitude / step, decimals) < 1000):
            return f"{value / step:.{decimals}f}{suffix}"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.3g}"


def format_flops(value: float | None) -> str:
    """2.5936e23 -> '2.59e23 FLOPs'."""
    if value is None:
        return "-"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)} FLOPs"


def format_bytes(value: float | None, binary: bool = True) -> str:
    """13,476,831,232 -> '12.55 GiB' (binary) or '13.48 GB' (decimal)."""
    if value is None:
        return "-"
    base, units = (1024.0, ("B", "KiB", "MiB", "GiB", "TiB", "PiB")) if binary else (1000.0, ("B", "KB", "MB", "GB", "TB", "PB"))
    size = float(value)
    for unit in units:
        if abs(size) < base or unit == units[-1]:
            return f"{size:g} B" if unit == "B" else f"{size:.2f} {unit}"
        size /= base
    raise AssertionError("unreachable")


def format_duration(seconds: float | None) -> str:
    """Seconds as the largest sensible unit: '17.3 ms', '2.38 s', '45 s', '12.5 min', '3.2 h', '3.2 days', '1.4 years'."""
    if seconds is None:
        return "-"
    # Each unit is chosen after rounding, so 0.9996 s is '1 s' (not '1e+03 ms') and 59.7 s is '1.0 min'.
    if 0 < abs(seconds) < 1 and abs(float(f"{seconds * 1e3:.3g}")) < 1000:  # serving latencies: '17.3 ms'
        return f"{seconds * 1e3:.3g} ms"
    if abs(seconds) < 10 and abs(float(f"{seconds:.3g}")) < 10:
        return f"{seconds:.3g} s"
    for limit, unit, size, digits in ((60, "s", 1, 0), (3600, "min", 60, 1), (86_400 * 2, "h", 3600, 1), (86_400 * 365.25 * 2, "days", 86_400, 1)):
        if abs(round(seconds / size, digits)) < limit / size:
            return f"{seconds / size:.{digits}f} {unit}"
    return f"{seconds / (86_400 * 365.25):.1f} years"


def format_number(value: float | None, digits: int = 4) -> str:
    """A plain number with `digits` significant figures, without exponent where that reads better."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e6):
        return f"{int(value):,}" if abs(value) >= 10_000 else f"{int(value)}"
    return f"{value:.{digits}g}"
