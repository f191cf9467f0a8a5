"""Units: parsing the quantities users type, and formatting them back for people."""

import math

import pytest
from hypothesis import given, strategies as st

from llmplan.errors import InputError
from llmplan.units import (
    PF_DAY,
    format_bytes,
    format_count,
    format_duration,
    format_flops,
    parse_compute,
    parse_count,
    parse_memory,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("7B", 7_000_000_000),
        ("6.74e9", 6_740_000_000),
        ("175_000_000", 175_000_000),
        ("1.4T", 1_400_000_000_000),
        ("350M", 350_000_000),
        ("12k", 12_000),
        ("12K", 12_000),
        ("7b", 7_000_000_000),
        ("1G", 1_000_000_000),  # G accepted as billion
        (" 70 B ", 70_000_000_000),
    ],
)
def test_parse_count(text, expected):
    assert parse_count(text) == expected


def test_pf_day_is_1e15_flops_for_a_day():
    # Brown et al. 2020, Table D.1: 1 PF-day = 1e15 FLOP/s * 86,400 s.
    assert PF_DAY == 8.64e19


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3000pfd", 3000 * 8.64e19),
        ("3000 PF-days", 3000 * 8.64e19),
        ("1e24", 1e24),
        ("1e24flop", 1e24),
        ("2.5e24 FLOPs", 2.5e24),
        ("3640 pf-days", 3640 * 8.64e19),
    ],
)
def test_parse_compute(text, expected):
    assert parse_compute(text) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    "text, expected",
    [("80GB", 80 * 10**9), ("80GiB", 80 * 2**30), ("512MiB", 512 * 2**20), ("1024", 1024)],
)
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


def test_compute_typo_gets_a_guess():
    with pytest.raises(InputError) as error:
        parse_compute("3000pdf")
    assert str(error.value) == "'3000pdf' is not a compute amount (FLOPs or PF-days: 1e24, 3000pfd); did you mean 3000pfd?"


@pytest.mark.parametrize("text", ["", "abc", "7X", "-5B", "0", "nan", "inf", "1e400", "B7", "7 B B"])
def test_bad_counts_name_the_value(text):
    with pytest.raises(InputError) as error:
        parse_count(text)
    assert repr(text) in str(error.value)


def test_ambiguous_memory_unit_suggests_both():
    with pytest.raises(InputError, match="did you mean 80GB or 80GiB"):
        parse_memory("80G")


@pytest.mark.parametrize(
    "value, text",
    [(7e9, "7.0B"), (6.74e9, "6.7B"), (175e9, "175B"), (1.4e12, "1.40T"), (350e6, "350M"), (12e3, "12.0K"), (999.96e9, "1.00T"), (42, "42")],
)
def test_format_count(value, text):
    assert format_count(value) == text


def test_format_flops_bytes_duration():
    assert format_flops(2.5936e23) == "2.59e23 FLOPs"
    # LLaMA-2-7B in bf16: 6,738,415,616 x 2 B = 13.48 GB = 12.55 GiB (memory-and-compute.md, section 7).
    assert format_bytes(6_738_415_616 * 2) == "12.55 GiB"
    assert format_bytes(6_738_415_616 * 2, binary=False) == "13.48 GB"
    assert format_duration(3.2 * 86_400) == "3.2 days"
    assert format_duration(45) == "45 s"


@given(st.floats(min_value=1, max_value=1e14, allow_nan=False))
def test_format_count_round_trips_within_display_precision(value):
    # Shown with >= 2 significant digits, so parsing the text back lands within 5%.
    back = parse_count(format_count(value))
    assert math.isclose(back, value, rel_tol=0.05)


@given(st.floats(min_value=1e10, max_value=1e30, allow_nan=False))
def test_compute_pfd_and_flops_agree(flops):
    assert parse_compute(f"{flops / PF_DAY!r}pfd") == pytest.approx(flops, rel=1e-12)
    assert parse_compute(repr(flops)) == flops


def test_duration_unit_is_chosen_after_rounding():
    from llmplan.units import format_duration

    # 0.9996 s once printed as '1e+03 ms' and 59.7 s as '60 s': the unit follows the rounded value.
    assert format_duration(0.9996) == "1 s"
    assert format_duration(59.7) == "1.0 min"
    assert format_duration(59.4) == "59 s"
    assert format_duration(0.0173) == "17.3 ms"
    assert format_duration(3599.99) == "1.0 h"
