"""The Chinchilla form's closed forms (Hoffmann et al. 2022, Eq. 2 and 4), one function each.

At the bottom of the formulas: llmplan.scaling.laws (every law form) and llmplan.scaling.data_constrained (the
data-constrained law built on this form) both use them, and neither imports the other for them.
"""

from __future__ import annotations


def chinchilla_loss(N, D, E, A, B, alpha, beta):
    """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Eq. 2)."""
    return E + A / N**alpha + B / D**beta


def chinchilla_G(A, B, alpha, beta):
    """G = (alpha A / (beta B))^(1/(alpha+beta)) (Hoffmann et al. 2022, Eq. 4)."""
    return (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))


def chinchilla_exponents(alpha, beta):
    """(a, b) = (beta/(alpha+beta), alpha/(alpha+beta)): N_opt ∝ C^a, D_opt ∝ C^b (Hoffmann Eq. 4)."""
    return beta / (alpha + beta), alpha / (alpha + beta)


def chinchilla_optimal(C, A, B, alpha, beta):
    """(N_opt, D_opt) = (G (C/6)^a, G^-1 (C/6)^b) for C FLOPs = 6 N D (Hoffmann et al. 2022, Eq. 4)."""
    G = chinchilla_G(A, B, alpha, beta)
    a, b = chinchilla_exponents(alpha, beta)
    return G * (C / 6.0) ** a, (C / 6.0) ** b / G


def chinchilla_min_compute(L, E, A, B, alpha, beta):
    """Least C reaching loss L: on the optimum alpha A/N^alpha = beta B/D^beta, so
    L - E = (1 + alpha/beta) A G^-alpha (C/6)^(-alpha beta/(alpha+beta)) (from Hoffmann Eq. 2 and 4)."""
    G = chinchilla_G(A, B, alpha, beta)
    scale = (1.0 + alpha / beta) * A * G ** (-alpha)
    return 6.0 * ((L - E) / scale) ** (-(alpha + beta) / (alpha * beta))
