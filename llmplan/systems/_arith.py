"""Arithmetic that works on floats and on numpy arrays alike, with no `if` on values, so the step-time
model can evaluate thousands of layouts at once (llmplan.systems.layout_search)."""


def maximum(a, b):
    return (a + b + abs(a - b)) / 2


def ceil_to(x, k):
    return -(-x // k) * k


def where(cond, a, b):
    return cond * a + (1 - cond) * b


def log2_ceil(n):
    """ceil(log2 n) for n >= 1, exact for n up to 2**20, arithmetic only."""
    out = 0
    for k in range(20):
        out = out + (n > 2 ** k)
    return out
