"""Hoffmann et al. 2022 (arXiv:2203.15556) Table 3 and Table A3, row by row, through the shipped laws.

The tables are transcribed from the paper (Table 3: Approach 1 projections; Table A3: Approaches 2
and 3). Table A3's 175B Approach 3 row prints 1.26e+24 FLOPs; 6·N·D with its own 12.0T tokens gives
1.26e25, so that row is used corrected (scaling-laws.md, pitfall 5).
"""

import pytest

from llmplan.scaling.laws import load_law
from llmplan.presets import load_catalog

# (parameters, FLOPs, tokens), as printed.
TABLE_3_APPROACH_1 = [
    (400e6, 1.92e19, 8.0e9), (1e9, 1.21e20, 20.2e9), (10e9, 1.23e22, 205.1e9), (67e9, 5.76e23, 1.5e12),
    (175e9, 3.85e24, 3.7e12), (280e9, 9.90e24, 5.9e12), (520e9, 3.43e25, 11.0e12), (1e12, 1.27e26, 21.2e12),
    (10e12, 1.30e28, 216.2e12),
]
TABLE_A3_APPROACH_2 = [
    (400e6, 1.84e19, 7.7e9), (1e9, 1.20e20, 20.0e9), (10e9, 1.32e22, 219.5e9), (67e9, 6.88e23, 1.7e12),
    (175e9, 4.54e24, 4.3e12), (280e9, 1.18e25, 7.1e12), (520e9, 4.19e25, 13.4e12), (1e12, 1.59e26, 26.5e12),
    (10e12, 1.75e28, 292.0e12),
]
TABLE_A3_APPROACH_3 = [
    (400e6, 2.21e19, 9.2e9), (1e9, 1.62e20, 27.1e9), (10e9, 2.46e22, 410.1e9), (67e9, 1.71e24, 4.1e12),
    (175e9, 1.26e25, 12.0e12),  # printed 1.26e+24: a typo, 6ND = 1.26e25
    (280e9, 3.52e25, 20.1e12), (520e9, 1.36e26, 43.5e12), (1e12, 5.65e26, 94.1e12), (10e12, 8.55e28, 1425.5e12),
]


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


@pytest.mark.parametrize("N, C, D", TABLE_3_APPROACH_1)
def test_approach1_reproduces_table3(cat, N, C, D):
    N_opt, D_opt = load_law("chinchilla-approach1", cat).optimal(C)
    # Parameters: the law is a least-squares line through these rows; 1.3% covers the 67B row, whose
    # FLOPs are the rounded Gopher budget (6ND/C = 1.047 there). Tokens follow from C = 6ND, so they
    # inherit that row's 4.7% inconsistency plus its two-digit "1.5T" (6%); elsewhere they land within 1.1%.
    assert N_opt == pytest.approx(N, rel=0.013)
    assert D_opt == pytest.approx(D, rel=0.06 if N == 67e9 else 0.011)


@pytest.mark.parametrize("N, C, D", TABLE_A3_APPROACH_2)
def test_approach2_reproduces_table_a3(cat, N, C, D):
    N_opt, D_opt = load_law("chinchilla-approach2", cat).optimal(C)
    # The least-squares line meets every row within 0.6%, except the 67B row (3.3%: its 6.88e23 FLOPs
    # and two-digit 1.7T tokens disagree by 0.7% with 6ND, and it sits off the line the others define).
    tolerance = 0.035 if N == 67e9 else 0.007
    assert N_opt == pytest.approx(N, rel=tolerance)
    assert D_opt == pytest.approx(D, rel=tolerance + 0.011)  # tokens also carry 6ND/C of 0.993-1.011


@pytest.mark.parametrize("N, C, D", TABLE_A3_APPROACH_3)
def test_unrounded_constants_reproduce_table_a3_approach3(cat, N, C, D):
    # The unrounded constants (TeX source) land within 8% of every printed row, the gap growing
    # steadily from 2.8% (400M) to 7.3% (10T): Table A3 was evidently made with constants we do not
    # have to more digits, so this is a bound, not a reproduction. The constants as rounded in the
    # paper's Eq. 10 miss by 18-30%, always further: the reason the default law ships unrounded and
    # `chinchilla-rounded` is labelled.
    unrounded = load_law("chinchilla", cat).optimal(C)[0]
    rounded = load_law("chinchilla-rounded", cat).optimal(C)[0]
    assert unrounded == pytest.approx(N, rel=0.08)
    assert abs(unrounded / N - 1) < abs(rounded / N - 1)
    assert abs(rounded / N - 1) > 0.15


def test_table_a3_typo_is_a_typo(cat):
    # Read as printed (1.26e24 FLOPs), the row would put the Approach 3 optimum at about a third of
    # 175B; read as 6ND of its own tokens (1.26e25), within 6% of it.
    law = load_law("chinchilla", cat)
    assert law.optimal(1.26e24)[0] < 0.5 * 175e9
    assert law.optimal(1.26e25)[0] == pytest.approx(175e9, rel=0.06)
