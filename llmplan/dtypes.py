"""The number formats that decide memory: bits, layout, range and precision.

Floating-point layouts follow IEEE 754 (fp32, fp16), Google's bfloat16, NVIDIA's TF32 and the OCP
8-bit floating point specification (E4M3, E5M2); nf4 is QLoRA's 4-bit NormalFloat (Dettmers et al.
2023). Integer formats need a scale to stand for real numbers.
"""

from __future__ import annotations

from llmplan.records import record


def ieee_max(exponent_bits: int, fraction_bits: int) -> float:
    """Largest finite value of an IEEE-style format: (2 - 2^-f) · 2^bias, bias = 2^(e-1) - 1."""
    return (2 - 2.0**-fraction_bits) * 2.0 ** (2 ** (exponent_bits - 1) - 1)


def ieee_min_normal(exponent_bits: int) -> float:
    """Smallest positive normal value: 2^(1 - bias)."""
    return 2.0 ** (2 - 2 ** (exponent_bits - 1))


def machine_epsilon(fraction_bits: int) -> float:
    """Gap between 1 and the next representable value: 2^-f."""
    return 2.0**-fraction_bits


@record
class DType:
    name: str
    bits: int
    bytes: float  # storage per value (tf32 is a compute mode stored as fp32)
    sign_bits: int | None
    exponent_bits: int | None
    fraction_bits: int | None
    max: float
    min_normal: float | None
    epsilon: float | None
    note: str
    aliases: tuple[str, ...] = ()

    def row(self) -> dict[str, object]:
        return {
            "dtype": self.name,
            "bits": self.bits,
            "bytes_per_value": self.bytes,
            "sign_bits": self.sign_bits,
            "exponent_bits": self.exponent_bits,
            "fraction_bits": self.fraction_bits,
            "max": self.max,
            "min_normal": self.min_normal,
            "epsilon": self.epsilon,
            "note": self.note,
        }


def _float(name: str, bits: int, nbytes: float, e: int, f: int, note: str, *, max_value: float | None = None, aliases: tuple[str, ...] = ()) -> DType:
    return DType(name, bits, nbytes, 1, e, f, max_value if max_value is not None else ieee_max(e, f), ieee_min_normal(e), machine_epsilon(f), note, aliases)


DTYPES: tuple[DType, ...] = (
    _float("fp32", 32, 4, 8, 23, "IEEE single precision; master weights and optimizer states", aliases=("float32", "float", "torch.float32")),
    _float("tf32", 19, 4, 8, 10, "NVIDIA tensor-core compute mode: fp32 range, fp16 precision; stored as fp32"),
    _float("fp16", 16, 2, 5, 10, "IEEE half precision: small range (max 65504), needs loss scaling in training", aliases=("float16", "half", "torch.float16")),
    _float("bf16", 16, 2, 8, 7, "bfloat16: fp32's range with less precision; the usual training type", aliases=("bfloat16", "torch.bfloat16")),
    # OCP FP8 spec: E4M3 has no infinities and one NaN pattern, so its max is 1.75 * 2^8 = 448.
    _float("fp8-e4m3", 8, 1, 4, 3, "OCP FP8 E4M3 (no inf): forward activations and weights; needs a scale", max_value=448.0, aliases=("fp8", "e4m3", "float8_e4m3fn", "torch.float8_e4m3fn")),
    _float("fp8-e5m2", 8, 1, 5, 2, "OCP FP8 E5M2: fp16's range, for gradients; needs a scale", aliases=("e5m2", "float8_e5m2", "torch.float8_e5m2")),
    DType("int8", 8, 1, 1, None, None, 127.0, None, None, "1 sign and 7 value bits; needs a scale (per tensor, channel or group)"),
    DType("int4", 4, 0.5, 1, None, None, 7.0, None, None, "GPTQ/AWQ-style weights; with group-128 fp16 scale and zero about 4.25 bits"),
    DType("nf4", 4, 0.5, None, None, None, 1.0, None, None, "QLoRA NormalFloat: 16 normal quantiles times a block absmax; 4.5 bits with block-64 fp32 scales, 4.127 with double quantisation"),
)


def find(name: str) -> DType | None:
    key = name.strip().lower()
    for dtype in DTYPES:
        if key == dtype.name or key in dtype.aliases:
            return dtype
    return None


# The dtypes a GPU datasheet gives a dense peak for (presets/gpus.toml peak_<dtype>).
PEAK_DTYPES = ("bf16", "fp16", "tf32", "fp32", "fp8", "int8")


def canonical(name: str, allowed: tuple[str, ...] | list[str]) -> str:
    """The spelling in `allowed` of the format a person typed: PyTorch and Hugging Face names
    (bfloat16, float16, float32, torch.float8_e4m3fn) and the listed names (fp8-e4m3) map to the
    short names commands take (bf16, fp16, fp32, fp8). Unknown names come back as typed (lower case),
    for the caller's own message."""
    key = name.strip().lower()
    if key in allowed:
        return key
    dtype = find(key)
    if dtype is not None:
        for spelling in (dtype.name, *dtype.aliases):
            if spelling in allowed:
                return spelling
        if dtype.name.startswith("fp8") and "fp8" in allowed:  # either FP8 layout: one byte, one peak
            return "fp8"
    return key


def get(name: str) -> DType:
    dtype = find(name)
    if dtype is None:
        import difflib

        from llmplan.errors import InputError

        names = [d.name for d in DTYPES]
        close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.4)
        hint = f"; did you mean {close[0]}?" if close else f"; choose one of {', '.join(names)}"
        raise InputError(f"unknown dtype {name!r}{hint}")
    return dtype
