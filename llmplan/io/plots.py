"""Pictures: the frontier, fits, IsoFLOP parabolas and loss contours, as PNG or SVG.

Every function takes plain data (sequences of numbers, dicts) and, where it needs one, a law object
(anything with `.optimal(C) -> (N, D)` and `.loss(N, D)`; a `DataConstrainedLaw` also works where
noted), draws with matplotlib's object API on the Agg backend, and writes the file whole or not at
all (saved to a temporary file in the same folder, then os.replace). matplotlib is an optional
extra: it is imported inside the functions, and a missing one raises InputError naming the extra.

The CLI calls `check_plot_path` before any work, so a bad --plot value fails fast (exit 2).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from llmplan.errors import InputError

FORMATS = {".png": "png", ".svg": "svg"}
MISSING = "plots need matplotlib: pip install 'llmplan[plot]'"
DPI = 150


def check_plot_path(path: str | os.PathLike) -> Path:
    """Validate a --plot FILE: extension .png or .svg and an existing folder. Returns the Path."""
    p = Path(path).expanduser()
    if p.suffix.lower() not in FORMATS:
        raise InputError(f"--plot {str(path)!r}: the picture's extension must be .png or .svg (e.g. --plot frontier.png)")
    folder = p.parent if str(p.parent) else Path(".")
    try:
        if not folder.is_dir():
            raise InputError(f"--plot {str(path)!r}: the folder {str(folder)!r} does not exist; create it or write elsewhere")
        if p.is_dir():
            raise InputError(f"--plot {str(path)!r} is a folder; give a file name ending in .png or .svg")
    except OSError as error:  # e.g. a name too long for the file system
        raise InputError(f"--plot {str(path)[:80]!r}: {error.strerror or error}; give another file name") from None
    return p


def require_matplotlib() -> Any:
    """Import matplotlib on the Agg backend, or raise InputError naming the 'plot' extra."""
    try:
        import matplotlib
    except ImportError:
        raise InputError(MISSING) from None
    matplotlib.use("Agg")
    return matplotlib


def _figure(width: float = 7.0, height: float = 5.0, ncols: int = 1) -> tuple[Any, Any]:
    require_matplotlib()
    from matplotlib.figure import Figure

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # a renderer, so labels can be measured and placed before saving
    axes = fig.subplots(1, ncols)
    return fig, axes


def save(fig: Any, path: str | os.PathLike) -> Path:
    """Write the figure to PATH (format from the extension) atomically: temp file, then os.replace."""
    p = check_plot_path(path)
    fmt = FORMATS[p.suffix.lower()]
    folder = p.parent if str(p.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=p.suffix, dir=folder)
    except OSError as error:
        raise InputError(f"cannot write the picture {str(p)[:80]!r}: {error.strerror or error}; give another --plot file") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format=fmt, dpi=DPI, metadata={"Software": "llmplan"} if fmt == "png" else None)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, p)
    except BaseException as error:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise InputError(f"cannot write the picture {str(p)[:80]!r}: {error.strerror or error}; give another --plot file") from None
        raise
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _logspace(lo: float, hi: float, n: int) -> list[float]:
    a, b = math.log(lo), math.log(hi)
    return [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]


def _decades(lo: float, hi: float) -> list[float]:
    """Powers of ten from lo to hi (inclusive of the ones inside)."""
    return [10.0**k for k in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1)]


def _style(ax: Any) -> None:
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.08)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _law_name(law: Any) -> str:
    return str(getattr(law, "id", "") or getattr(law, "name", "") or "law")


def _law_formula(law: Any) -> str:
    """'L = 1.84 + 796/N^0.377 + 2038/D^0.364' for a Chinchilla-form law, else ''."""
    c = getattr(law, "constants", None) or {}
    if getattr(law, "form", None) != "chinchilla" or not all(k in c for k in ("E", "A", "B", "alpha", "beta")):
        return ""
    return f"L = {c['E']:.3g} + {c['A']:.4g}/N^{c['alpha']:.3f} + {c['B']:.4g}/D^{c['beta']:.3f}"


def _budget_text(budgets: Sequence[float]) -> str:
    from llmplan.units import format_flops

    budgets = sorted(set(float(c) for c in budgets))
    if len(budgets) == 1:
        return f"C = {format_flops(budgets[0])}"
    return f"{len(budgets)} budgets, {format_flops(budgets[0])[:-6]} to {format_flops(budgets[-1])}"


def _outside_legend(fig: Any, ax: Any, ncol: int = 3) -> Any:
    """The legend below the axes, outside the data (constrained layout makes room for it)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(handles)), fontsize=8, frameon=False)


def _shade_fitted_range(ax: Any, law: Any, n_lo: float, n_hi: float, d_lo: float, d_hi: float, on_dark: bool = False) -> bool:
    """Hatch the (N, D) region the law was fitted on (its recorded params, tokens and FLOPs ranges),
    so a reader sees where the law is an extrapolation. Returns whether anything was drawn."""
    bounds = law.fitted_bounds() if hasattr(law, "fitted_bounds") else {}
    if not bounds:
        return False
    p_lo, p_hi = bounds.get("params", (n_lo, n_hi))
    t_lo, t_hi = bounds.get("tokens", (d_lo, d_hi))
    c_lo, c_hi = bounds.get("flops", (0.0, math.inf))
    a, b = max(p_lo, n_lo), min(p_hi, n_hi)
    if not a < b:
        return False
    ns = _logspace(a, b, 200)
    lower = [max(t_lo, d_lo, c_lo / (6 * n)) for n in ns]
    upper = [min(t_hi, d_hi, c_hi / (6 * n)) for n in ns]
    if not any(lo < hi for lo, hi in zip(lower, upper)):
        return False
    from matplotlib.patches import Rectangle

    edge = "white" if on_dark else "0.72"
    ax.fill_between(ns, lower, upper, where=[lo < hi for lo, hi in zip(lower, upper)], facecolor="none" if on_dark else "0.96",
                    hatch="///", edgecolor=edge, linewidth=0.8, alpha=0.8 if on_dark else 0.6, zorder=1.5 if on_dark else 0.5)
    # the legend's swatch: the same hatch, dark on light whatever the plot's background
    ax.add_patch(Rectangle((n_lo, d_lo), 0, 0, facecolor="0.88", hatch="///", edgecolor="0.35", linewidth=0.8,
                           label=f"range {_law_name(law)} was fitted on (beyond it: extrapolation)"))
    return True


def _label_point(ax: Any, N: float, D: float, offset: tuple[float, float] = (10, 10)) -> Any:
    """'N = 51.9B / D = 3.21T' beside a point, dark on a light box."""
    from llmplan.units import format_count

    return ax.annotate(f"N = {format_count(N)}\nD = {format_count(D)}", (N, D), xytext=offset, textcoords="offset points",
                       fontsize=8, color="0.1", ha="left" if offset[0] >= 0 else "right", va="bottom" if offset[1] >= 0 else "top",
                       bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="0.5", lw=0.5, alpha=0.9), zorder=6)


def _frontier(law: Any, budgets: Sequence[float], unique_tokens: float | None = None) -> tuple[list[float], list[float]]:
    """(N, D) of the law's optimum for each budget; data-constrained when unique_tokens is given."""
    Ns, Ds = [], []
    for C in budgets:
        if unique_tokens is not None:
            from llmplan.scaling.data_constrained import optimal_constrained

            N, D, _ = optimal_constrained(C, unique_tokens, law)
        else:
            N, D = law.optimal(C)
        Ns.append(float(N))
        Ds.append(float(D))
    return Ns, Ds


def _iso_flop_lines(ax: Any, budgets: Sequence[float], n_lo: float, n_hi: float, d_lo: float, d_hi: float) -> list[Any]:
    """Dotted lines D = C / (6 N), one per budget, each labelled where it leaves the plot at the
    lower right and turned along the line. Sets the axes' limits. Returns the label artists."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(n_lo, n_hi)
    ax.set_ylim(d_lo, d_hi)
    labels = []
    for C in budgets:
        ax.plot([n_lo, n_hi], [C / (6 * n_lo), C / (6 * n_hi)], ls=":", lw=0.8, color="0.55", zorder=1)
        # where the line leaves the box going right/down: the right edge, else the bottom edge
        if C / (6 * n_hi) >= d_lo:
            n_end, d_end = n_hi, C / (6 * n_hi)
        else:
            n_end, d_end = C / (6 * d_lo), d_lo
        if not (n_lo < n_end <= n_hi and d_end < d_hi):
            continue  # the line misses the visible box
        (x0, y0), (x1, y1) = ax.transData.transform([(n_end / 2, 2 * d_end), (n_end, d_end)])
        angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
        exponent = math.log10(C)
        text = f"1e{exponent:.0f} FLOPs" if abs(exponent - round(exponent)) < 1e-9 else f"{C:.2g} FLOPs"
        labels.append(ax.annotate(text, (n_end, d_end), fontsize=7, color="0.45", ha="right", va="bottom",
                                  rotation=angle, rotation_mode="anchor", xytext=(-3, 2), textcoords="offset points", zorder=1))
    return labels


# offsets (points) tried in turn for a point's label, with its alignment
_OFFSETS = ((4, 3, "left", "bottom"), (4, -3, "left", "top"), (-4, 3, "right", "bottom"), (-4, -3, "right", "top"),
            (0, 6, "center", "bottom"), (0, -6, "center", "top"), (4, 11, "left", "bottom"), (4, -11, "left", "top"),
            (-4, 11, "right", "bottom"), (-4, -11, "right", "top"), (0, 16, "center", "bottom"), (0, -16, "center", "top"))


def _place_labels(fig: Any, ax: Any, items: Sequence[tuple[str, float, float]], taken: Sequence[Any] = ()) -> None:
    """Label each point (text, x, y) at the first offset whose box overlaps no label placed so far
    and stays inside the axes; failing that, at the offset with the least overlap (greedy)."""
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    boxes = [t.get_window_extent(renderer) for t in taken]

    def overlap(box: Any) -> float:
        total = sum(max(0.0, min(box.x1, b.x1) - max(box.x0, b.x0)) * max(0.0, min(box.y1, b.y1) - max(box.y0, b.y0)) for b in boxes)
        outside = box.width * box.height - max(0.0, min(box.x1, frame.x1) - max(box.x0, frame.x0)) * max(0.0, min(box.y1, frame.y1) - max(box.y0, frame.y0))
        return total + 2 * outside

    for text, x, y in items:
        best = None
        for dx, dy, ha, va in _OFFSETS:
            label = ax.annotate(text, (x, y), fontsize=6.5, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, color="0.15", zorder=5)
            box = label.get_window_extent(renderer)
            cost = overlap(box)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, label, box)
            else:
                label.remove()
            if cost == 0:
                break
        boxes.append(best[2])


# ------------------------------------------------------------------ llmplan compare --plot


def plot_frontier(path: str | os.PathLike, models: Sequence[tuple[str, float, float]], law: Any, title: str | None = None) -> Path:
    """Models (label, N, D) as points on log axes of tokens vs parameters, with iso-FLOP lines, the
    law's compute-optimal frontier and the 20 tokens-per-parameter line."""
    if not models:
        raise InputError("nothing to plot: no models with parameters and tokens")
    fig, ax = _figure(8.0, 6.5)
    Ns = [float(m[1]) for m in models]
    Ds = [float(m[2]) for m in models]
    n_lo, n_hi = min(Ns) / 4, max(Ns) * 4
    d_lo, d_hi = min(Ds) / 4, max(Ds) * 4
    Cs = [6 * n * d for n, d in zip(Ns, Ds)]
    c_lo, c_hi = min(Cs) / 30, max(Cs) * 30
    iso_labels = _iso_flop_lines(ax, _decades(c_lo, c_hi), n_lo, n_hi, d_lo, d_hi)
    fN, fD = _frontier(law, _logspace(c_lo, c_hi, 80))
    ax.plot(fN, fD, color="C3", lw=2, label=f"compute-optimal ({_law_name(law)})", zorder=3)
    ax.plot([n_lo, n_hi], [20 * n_lo, 20 * n_hi], color="C2", lw=1.2, ls="--", label="20 tokens per parameter", zorder=2)
    ax.scatter(Ns, Ds, s=28, color="C0", edgecolor="white", linewidth=0.6, zorder=4, label="models (trained N, D)")
    _shade_fitted_range(ax, law, n_lo, n_hi, d_lo, d_hi)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("training tokens D")
    ax.set_title(title or f"{len(models)} models against the compute-optimal frontier of {_law_name(law)}", fontsize=11)
    _outside_legend(fig, ax, ncol=2)
    _style(ax)
    fig.canvas.draw()  # settle the layout before measuring labels
    _place_labels(fig, ax, [(str(m[0]), float(m[1]), float(m[2])) for m in models], taken=list(iso_labels))
    return save(fig, path)


# ------------------------------------------------------------------ llmplan fit --plot


def plot_fit(
    path: str | os.PathLike,
    N: Sequence[float],
    D: Sequence[float],
    observed: Sequence[float],
    predicted: Sequence[float],
    law: Any,
    title: str | None = None,
) -> Path:
    """Left: observed vs predicted loss with the y = x line. Right: the runs in (N, D), coloured by
    observed loss, with iso-FLOP lines and the fitted law's frontier over the runs' compute range."""
    if not len(N):
        raise InputError("nothing to plot: no runs")
    fig, (left, right) = _figure(11.0, 5.2, ncols=2)
    obs = [float(v) for v in observed]
    pred = [float(v) for v in predicted]
    lo, hi = min(obs + pred), max(obs + pred)
    pad = 0.03 * (hi - lo or 1.0)
    left.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=1, ls="--", label="y = x", zorder=1)
    left.scatter(pred, obs, s=16, color="C0", alpha=0.8, edgecolor="none", zorder=2, label="runs")
    left.set_xlim(lo - pad, hi + pad)
    left.set_ylim(lo - pad, hi + pad)
    left.set_aspect("equal", adjustable="box")
    left.set_xlabel("predicted loss")
    left.set_ylabel("observed loss")
    left.set_title("Observed vs predicted", fontsize=10)
    left.legend(loc="upper left", fontsize=8, frameon=False)
    _style(left)

    Ns, Ds = [float(v) for v in N], [float(v) for v in D]
    n_lo, n_hi = min(Ns) / 2, max(Ns) * 2
    d_lo, d_hi = min(Ds) / 2, max(Ds) * 2
    Cs = [6 * n * d for n, d in zip(Ns, Ds)]
    _iso_flop_lines(right, _decades(min(Cs), max(Cs)), n_lo, n_hi, d_lo, d_hi)
    points = right.scatter(Ns, Ds, c=obs, s=20, cmap="viridis_r", edgecolor="none", zorder=3)
    fig.colorbar(points, ax=right, label="observed loss")
    fN, fD = _frontier(law, _logspace(min(Cs), max(Cs), 60))
    right.plot(fN, fD, color="C3", lw=2, label="fitted compute-optimal frontier", zorder=4)
    right.set_xlabel("parameters N")
    right.set_ylabel("training tokens D")
    right.set_title("Runs and the fitted compute-optimal frontier", fontsize=10)
    right.legend(loc="outside upper center" if False else "lower center", bbox_to_anchor=(0.5, 1.06), ncol=1, fontsize=8, frameon=False)
    _style(right)
    formula = _law_formula(law)
    fig.suptitle("\n".join(t for t in (title, formula) if t), fontsize=11)
    return save(fig, path)


def plot_isoflop(
    path: str | os.PathLike,
    groups: Sequence[Mapping[str, Any]],
    minima: Sequence[Mapping[str, Any]],
    power_law: tuple[float, float] | None = None,
    title: str | None = None,
) -> Path:
    """Left: loss against log N for each budget (groups: dicts with flops, params, loss), the parabola
    L = c2 (ln N)^2 + c1 ln N + c0 through them (least squares, as Hoffmann et al. 2022 §3.2) and
    each minimum (minima: dicts with flops, optimal_params, optimal_loss). Right: N_opt against C with the
    fitted power law N = k C^a (power_law = (k, a)), when given."""
    require_matplotlib()
    import numpy as np

    if not groups:
        raise InputError("nothing to plot: no budgets with runs")
    fig, (left, right) = _figure(11.0, 5.0, ncols=2)
    from matplotlib import colormaps

    cmap = colormaps["plasma"]
    many = len(groups) > 15  # smaller marks, so 30+ profiles stay apart
    budgets = [float(g["flops"]) for g in groups]
    b_lo, b_hi = math.log(min(budgets)), math.log(max(budgets))

    def colour(C: float) -> Any:
        return cmap(0.85 * ((math.log(C) - b_lo) / (b_hi - b_lo) if b_hi > b_lo else 0.0))

    for g in groups:
        C = float(g["flops"])
        x = np.log(np.asarray(g["params"], float))
        y = np.asarray(g["loss"], float)
        left.scatter(np.exp(x), y, s=8 if many else 18, color=colour(C), zorder=3, label=f"{C:.2g} FLOPs")
        if x.size >= 3 and np.ptp(x) > 0:
            c2, c1, c0 = np.polyfit(x, y, 2)
            xs = np.linspace(x.min() - 0.1 * np.ptp(x), x.max() + 0.1 * np.ptp(x), 100)
            left.plot(np.exp(xs), c2 * xs**2 + c1 * xs + c0, color=colour(C), lw=0.9 if many else 1.2, zorder=2)
    for m in minima:
        left.scatter([m["optimal_params"]], [m["optimal_loss"]], marker="*", s=60 if many else 110, color=colour(float(m["flops"])),
                     edgecolor="black", linewidth=0.5, zorder=4)
    left.set_xscale("log")
    left.set_xlabel("parameters N")
    left.set_ylabel("loss")
    # A few very small runs far up the loss axis would squash every profile into a strip: cap it.
    losses = sorted(float(v) for g in groups for v in g["loss"])
    low, median = losses[0], losses[len(losses) // 2]
    top = median + 4 * (median - low)
    hidden = sum(v > top for v in losses)
    profile_title = "IsoFLOP profiles (stars: parabola minima)"
    if hidden and top > low:
        left.set_ylim(low - 0.05 * (top - low), top)
        profile_title += f"\n{hidden} run{'s' if hidden > 1 else ''} above loss {top:.2f} not shown"
    left.set_title(profile_title, fontsize=10)
    if len(groups) <= 8:
        left.legend(fontsize=7, frameon=False, loc="upper right", title="budget", title_fontsize=7)
    else:  # many budgets: a colour scale instead of a legend
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import LinearSegmentedColormap, LogNorm

        part = LinearSegmentedColormap.from_list("part", [cmap(v) for v in np.linspace(0, 0.85, 64)])
        scale = ScalarMappable(norm=LogNorm(min(budgets), max(budgets)), cmap=part)
        fig.colorbar(scale, ax=left, label="compute C (FLOPs)", pad=0.01)
    _style(left)

    if minima:
        mC = [float(m["flops"]) for m in minima]
        mN = [float(m["optimal_params"]) for m in minima]
        right.scatter(mC, mN, marker="*", s=110, color=[colour(c) for c in mC], edgecolor="black", linewidth=0.5, zorder=3, label="N_opt per budget")
        if power_law is not None and all(math.isfinite(v) for v in power_law):
            k, a = power_law
            cs = _logspace(min(mC) / 3, max(mC) * 3, 50)
            right.plot(cs, [k * c**a for c in cs], color="C3", lw=1.5, zorder=2, label=f"N_opt = {k:.3g} C^{a:.3f}")
        right.legend(fontsize=8, frameon=False, loc="upper left")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("compute C (FLOPs)")
    right.set_ylabel("optimal parameters N_opt")
    right.set_title("Optimal size against compute", fontsize=10)
    _style(right)
    fig.suptitle(f"{title or 'IsoFLOP fit'} (Approach 2): {_budget_text(budgets)}", fontsize=11)
    return save(fig, path)


# ------------------------------------------------------------------ llmplan optimal --plot


def plot_loss_contours(
    path: str | os.PathLike,
    law: Any,
    points: Sequence[Mapping[str, Any]],
    unique_tokens: float | None = None,
    iso_loss: float | None = None,
    title: str | None = None,
) -> Path:
    """Loss contours of the law over (N, D) on log axes, the compute-optimal frontier, the points
    (dicts with params, tokens and an optional label) and an iso-FLOP line through each; or, with
    iso_loss, the curve of that loss instead (the inference-aware plan moves along it). With
    unique_tokens the law is a DataConstrainedLaw evaluated at that U, its frontier is the
    data-constrained optimum and the line D = U (one epoch) is drawn."""
    require_matplotlib()
    import numpy as np

    if not points:
        raise InputError("nothing to plot: no chosen point")
    fig, ax = _figure(7.5, 5.8)
    Ns = [float(p["params"]) for p in points]
    Ds = [float(p["tokens"]) for p in points]
    n_lo, n_hi = min(Ns) / 30, max(Ns) * 30
    d_lo, d_hi = min(Ds) / 30, max(Ds) * 30

    if unique_tokens is not None:
        def loss(N: float, D: float) -> float:
            return law.loss(N, D, unique_tokens)
    else:
        loss = law.loss
    gN = np.geomspace(n_lo, n_hi, 120)
    gD = np.geomspace(d_lo, d_hi, 120)
    NN, DD = np.meshgrid(gN, gD)
    if unique_tokens is None:
        with np.errstate(all="ignore"):
            LL = np.asarray(loss(NN, DD), float)
    else:
        LL = np.array([[loss(float(n), float(d)) for n in gN] for d in gD])
    finite = LL[np.isfinite(LL)]
    if finite.size == 0:
        raise InputError(f"law {_law_name(law)!r} gives no finite loss in this range")
    from matplotlib.ticker import MaxNLocator

    top = float(np.percentile(finite, 90))  # the small-model corner would otherwise take most colours
    levels = MaxNLocator(nbins=14).tick_values(float(finite.min()), top)
    filled = ax.contourf(NN, DD, np.clip(LL, levels[0], levels[-1]), levels=levels, cmap="viridis_r", alpha=0.9, zorder=0)
    lines = ax.contour(NN, DD, LL, levels=levels[1::2], colors="white", linewidths=0.5, alpha=0.7, zorder=1)
    for text in ax.clabel(lines, fontsize=7, fmt="%.3g", colors="0.1"):  # dark on light, readable on any colour
        text.set_bbox(dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.75))
    fig.colorbar(filled, ax=ax, label="predicted loss", format="%.3g", ticks=levels[::2])
    if iso_loss is not None:  # black dash-dot: apart from the red frontier by style as well as colour
        ax.contour(NN, DD, LL, levels=[iso_loss], colors="black", linewidths=2, linestyles="-.", zorder=2)
        ax.plot([], [], color="black", lw=2, ls="-.", label=f"target loss {iso_loss:.4g}")

    Cs = [6 * n * d for n, d in zip(Ns, Ds)]
    c_lo, c_hi = 6 * n_lo * d_lo, 6 * n_hi * d_hi
    fN, fD = _frontier(law, _logspace(c_lo, c_hi, 60), unique_tokens)
    ax.plot(fN, fD, color="C3", lw=2, label="compute-optimal frontier", zorder=3)
    if iso_loss is None:
        for C in sorted(set(Cs)):
            ax.plot([n_lo, n_hi], [C / (6 * n_lo), C / (6 * n_hi)], ls="--", lw=1, color="black", zorder=2)
        ax.plot([], [], ls="--", lw=1, color="black", label="training FLOPs of the plan")
    if unique_tokens is not None:
        ax.axhline(unique_tokens, color="magenta", lw=1.8, ls=":", zorder=2, label="unique tokens (1 epoch)")
    _shade_fitted_range(ax, law, n_lo, n_hi, d_lo, d_hi, on_dark=True)
    series: dict[str, list[Mapping[str, Any]]] = {}  # points with the same label share a marker
    for p in points:
        series.setdefault(str(p.get("label") or "chosen"), []).append(p)
    markers = "o^sDv"
    for i, (label, group) in enumerate(series.items()):
        ax.scatter([float(p["params"]) for p in group], [float(p["tokens"]) for p in group], marker=markers[i % len(markers)], s=70,
                   color=f"C{(1, 0, 4, 6, 8)[i % 5]}", edgecolor="black", linewidth=0.8, zorder=5, label=label)
        if len(points) <= 6:  # each plan point says its N and D
            for p in group:
                _label_point(ax, float(p["params"]), float(p["tokens"]), (10, 10) if i == 0 else (-10, -10))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(n_lo, n_hi)
    ax.set_ylim(d_lo, d_hi)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("training tokens D")
    if title is None:
        from llmplan.units import format_count

        first = str(points[0].get("label") or "chosen")
        plans = [6 * float(p["params"]) * float(p["tokens"]) for p in points if str(p.get("label") or "chosen") == first]
        what = [f"plan at {_budget_text(plans)}"]
        if iso_loss is not None:
            what.insert(0, f"target loss {iso_loss:.4g}")
        if unique_tokens:
            what.append(f"{format_count(unique_tokens)} unique tokens")
        title = f"Predicted loss over (N, D) under {_law_name(law)}\n" + ", ".join(what)
    ax.set_title(title, fontsize=11)
    _outside_legend(fig, ax, ncol=2)
    return save(fig, path)


def plan_points(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The points `llmplan optimal --plot` marks, from its rows: the plan, and where the row carries
    one, the optimum it is compared with (unlimited data, or the inference-blind Chinchilla run)."""
    points: list[dict[str, Any]] = []
    for r in rows:
        if "unique_tokens" in r:
            points.append({"params": r["params"], "tokens": r["tokens"], "label": "best with the unique data"})
            points.append({"params": r["params_unlimited_data"], "tokens": r["tokens_unlimited_data"], "label": "best with unlimited data"})
        elif "inference_tokens" in r:
            points.append({"params": r["params"], "tokens": r["tokens"], "label": "inference-aware"})
            points.append({"params": r["chinchilla_params"], "tokens": r["chinchilla_tokens"], "label": "Chinchilla-optimal (inference-blind)"})
        else:
            points.append({"params": r["params"], "tokens": r["tokens"], "label": "plan"})
    return points


def isoflop_groups(N: Sequence[float], D: Sequence[float], L: Sequence[float], tolerance: float = 0.1) -> list[dict[str, Any]]:
    """The runs of each compute budget (3 or more runs), as `plot_isoflop` takes them; budgets are
    formed as llmplan.scaling.fit.isoflop.fit_isoflop forms them (group_budgets, geometric-mean FLOPs)."""
    from llmplan.scaling.fit.isoflop import group_budgets

    C = [6.0 * n * d for n, d in zip(N, D)]  # C ≈ 6ND
    groups = []
    for members in group_budgets(C, tolerance):
        if len(members) < 3:
            continue
        budget = math.exp(sum(math.log(C[i]) for i in members) / len(members))
        groups.append({"flops": budget, "params": [N[i] for i in members], "loss": [L[i] for i in members]})
    return groups


# ------------------------------------------------------------------ llmplan serve --plot


def plot_serving_frontier(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], title: str | None = None) -> Path:
    """The latency/throughput frontier of `llmplan serve --batch A:B`: output tokens/s per GPU against
    time per output token, one point per batch (labelled), hollow where the KV cache does not fit."""
    points = [r for r in rows if r.get("time_per_output_token_seconds") and r.get("output_tokens_per_second_per_gpu")]
    if not points:
        raise InputError("nothing to plot: no rows with a time per token and a throughput")
    fig, ax = _figure(7.5, 5.0)
    x = [1e3 * float(r["time_per_output_token_seconds"]) for r in points]
    y = [float(r["output_tokens_per_second_per_gpu"]) for r in points]
    ax.plot(x, y, color="C0", lw=1.5, zorder=2)
    fit = [i for i, r in enumerate(points) if r.get("fits", True)]
    out = [i for i, r in enumerate(points) if not r.get("fits", True)]
    ax.scatter([x[i] for i in fit], [y[i] for i in fit], s=30, color="C0", edgecolor="white", linewidth=0.6, zorder=3, label="fits the KV cache")
    if out:
        ax.scatter([x[i] for i in out], [y[i] for i in out], s=30, facecolor="white", edgecolor="C3", linewidth=1.2, zorder=3, label="does not fit")
    for xi, yi, r in zip(x, y, points):
        ax.annotate(f"b={r['batch']}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=7, color="0.3")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis, values in ((ax.xaxis, x), (ax.yaxis, y)):
        if len(points) > 1 and max(values) / min(values) > 3:
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.4g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.08, y=0.08)
    ax.set_xlabel("time per output token (ms)   (lower: faster for each user)")
    ax.set_ylabel("output tokens/s per GPU   (higher: cheaper)")
    ax.set_title(title or "Serving: throughput against latency", fontsize=11)
    _outside_legend(fig, ax, ncol=2)
    _style(ax)
    return save(fig, path)


# ----- where memory and time go (memory --plot, throughput --plot, layout --plot) -------------------

# One colour per part, the same in every picture: model states in blues, what the step makes in
# oranges and reds, fixed costs in greys (matplotlib's tab20 pairs).
_PART_COLOURS = {
    "weights": "#1f77b4", "gradients": "#aec7e8", "optimizer": "#6b8fb5", "activations": "#ff7f0e",
    "autocast_cache": "#ffbb78", "kv_cache": "#2ca02c", "workspace": "#c7c7c7", "transient": "#d62728",
    "overhead": "#7f7f7f",
    "compute": "#1f77b4", "tp_comm": "#ff7f0e", "pp_comm": "#ffbb78", "bubble": "#d62728", "dp_comm": "#2ca02c",
    "cp_comm": "#98df8a", "ep_comm": "#9467bd", "optimizer_step": "#7f7f7f",
}


def _stack_colour(part: str, index: int) -> str:
    return _PART_COLOURS.get(part, f"C{index % 10}")


def plot_memory_phases(
    path: str | os.PathLike,
    bars: Sequence[tuple[str, Mapping[str, float]]],
    labels: Mapping[str, str],
    capacities: Sequence[tuple[str, float]] = (),
    peak: str | None = None,
    title: str | None = None,
) -> Path:
    """`memory --plot`: one stacked bar per phase of the step (bytes of each part alive then, in GB),
    the peak phase marked, each --gpu's usable memory as a horizontal line.

    bars: (phase, {part: bytes}) in the step's order; labels: part -> legend text (the parts' order);
    capacities: (GPU name, bytes)."""
    if not bars:
        raise InputError("nothing to plot: no phases")
    parts = [p for p in labels if any(parts.get(p, 0) for _, parts in bars)]
    width = max(8.0, 1.05 * len(bars) + 3.0)
    fig, ax = _figure(width, 5.4)
    x = list(range(len(bars)))
    bottom = [0.0] * len(bars)
    for i, part in enumerate(parts):
        heights = [float(values.get(part, 0)) / 1e9 for _, values in bars]
        ax.bar(x, heights, bottom=bottom, width=0.62, color=_stack_colour(part, i), edgecolor="white", linewidth=0.5,
               label=labels[part], zorder=2)
        bottom = [b + h for b, h in zip(bottom, heights)]
    top = max(bottom)
    for xi, total, (name, _) in zip(x, bottom, bars):
        text = f"{total:,.4g}" + (" GB\npeak" if name == peak else "")
        ax.annotate(text, (xi, total), textcoords="offset points", xytext=(0, 3), ha="center", va="bottom", fontsize=8,
                    fontweight="bold" if name == peak else "normal")
    for j, (gpu, capacity) in enumerate(capacities):
        gb = float(capacity) / 1e9
        ax.axhline(gb, color="black", lw=1.3, ls=(0, (5, 3)) if j % 2 == 0 else (0, (1, 2)), zorder=3,
                   label=f"{gpu}: {gb:,.4g} GB usable")
        ax.annotate(f"{gpu}: {gb:,.4g} GB", (1.0, gb), xycoords=("axes fraction", "data"), textcoords="offset points",
                    xytext=(-2, 2), ha="right", va="bottom", fontsize=8, zorder=4,
                    bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.8))
        top = max(top, gb)
    ax.set_ylim(0, top * 1.15)
    # An empty slot right of the last bar holds the GPUs' labels, so none sits on a bar.
    right = len(bars) - 0.4 + (1.4 if capacities else 0)
    ax.set_xlim(-1.2 if len(bars) < 3 else -0.6, right if len(bars) >= 3 or capacities else len(bars) + 0.2)
    ax.set_xticks(x)
    ax.set_xticklabels([_wrap(name, 14) for name, _ in bars], fontsize=8)
    ax.set_ylabel("memory per GPU (GB, 10^9 bytes)")
    ax.set_xlabel("phase of the step" if len(bars) > 1 else "the step's peak phase")
    ax.set_title(_wrap_lines(title or "Memory per GPU by phase of the step", int(width * 12)), fontsize=10)
    _outside_legend(fig, ax, ncol=3 if width < 9 else 4)
    _style(ax)
    ax.grid(False, axis="x")
    return save(fig, path)


def _wrap_lines(text: str, width: int) -> str:
    """Each line of a title wrapped to `width` characters (a title wider than the figure is cut off)."""
    return "\n".join(_wrap(line, width) for line in str(text).splitlines())


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def plot_step_parts(
    path: str | os.PathLike,
    rows: Sequence[Mapping[str, Any]],
    parts: Sequence[str],
    names: Sequence[str],
    title: str | None = None,
) -> Path:
    """`throughput --plot`, `layout --plot`: the step time of each layout split into its parts
    (row[f"{part}_seconds"], exposed time that adds up to step_seconds), one horizontal stacked bar
    per layout named by `names`, in the rows' order from the top (the table's order)."""
    if not rows:
        raise InputError("nothing to plot: no layouts")
    shown = [p for p in parts if any(float(r.get(f"{p}_seconds") or 0) > 0 for r in rows)]
    fig, ax = _figure(8.0, max(2.6, 0.55 * len(rows) + 1.9))
    y = list(range(len(rows)))[::-1]  # the first row on top
    left = [0.0] * len(rows)
    for i, part in enumerate(shown):
        widths = [float(r.get(f"{part}_seconds") or 0) for r in rows]
        key = "optimizer_step" if part == "optimizer" else part
        ax.barh(y, widths, left=left, height=0.6, color=_stack_colour(key, i), edgecolor="white", linewidth=0.5,
                label=part.replace("_comm", " comm").replace("_", " ").replace("optimizer", "optimizer step"), zorder=2)
        left = [a + w for a, w in zip(left, widths)]
    for yi, total, row in zip(y, left, rows):
        mfu = row.get("mfu")
        text = f"{total:.3g} s" + (f"  MFU {float(mfu):.1%}" if mfu is not None else "")
        if row.get("fits") is False:
            text += "  (does not fit)"
        ax.annotate(text, (total, yi), textcoords="offset points", xytext=(4, 0), ha="left", va="center", fontsize=8)
    ax.set_xlim(0, max(left) * (1.5 if any(r.get("fits") is False for r in rows) else 1.32))
    ax.set_yticks(y)
    ax.set_yticklabels(list(names), fontsize=8)
    ax.set_xlabel("time per optimizer step (s): exposed time of each part, adding up to the step")
    fig.suptitle(_wrap_lines(title or "Step time by part", 100), fontsize=10)
    _outside_legend(fig, ax, ncol=4)
    _style(ax)
    ax.grid(False, axis="y")
    return save(fig, path)


def layout_name(row: Mapping[str, Any]) -> str:
    """'#1 tp2 pp1 dp16 cp2 z2 mb8' (+ vp, ep, recompute, SP where they are not the default): a layout row's bar label."""
    parts = [f"#{row['rank']}"] if row.get("rank") is not None else []
    parts += [f"tp{row['tp']}", f"pp{row['pp']}"]
    if (row.get("vp") or 1) > 1:
        parts.append(f"vp{row['vp']}")
    parts.append(f"dp{row['dp']}")
    for key, short in (("cp", "cp"), ("ep", "ep")):
        if (row.get(key) or 1) > 1:
            parts.append(f"{short}{row[key]}")
    parts += [f"zero{row.get('zero', 0)}", f"mb{row.get('micro_batch', 1)}"]
    if row.get("recompute") not in (None, "none"):
        parts.append(f"recompute {row['recompute']}")
    if row.get("sequence_parallel"):
        parts.append("SP")
    return " ".join(parts)
