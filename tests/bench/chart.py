"""The cost curves of `make bench-scaling` drawn as one figure (matplotlib's Agg canvas, no
display): a column per curve, CPU per call above, added latency below, a line per store.

matplotlib is in the `bench` extra only: it is imported when a chart is drawn, so that the
rest of the bench (and the tests that import it) run without it.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path

# A point: (x, CPU ms per call, added p50 ms); None where not measured.
Point = tuple[float, float | None, float | None]
COLORS = {"memory://": "#1f77b4", "redis://": "#d62728"}


@dataclass(frozen=True, slots=True)
class Panel:
    """One curve: its title, what grows along x, and each store's points."""

    title: str
    xlabel: str
    series: dict[str, list[Point]]
    superlinear: set[tuple[str, float]] = field(default_factory=set)  # (store, x) marked


def _log_scale(values: list[float]) -> bool:
    """Log scale where every value is positive and they span more than a factor of 20."""
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) > 1 and max(positive) / min(positive) > 20


def draw(panels: list[Panel], path: Path, caption: str) -> Path | None:
    """Draw `panels` into a PNG at `path`; None (and why, printed) without matplotlib."""
    try:
        figure = importlib.import_module("matplotlib.figure")
        agg = importlib.import_module("matplotlib.backends.backend_agg")
    except ImportError as exc:
        print(f"no chart: {exc} (matplotlib comes with `make install-bench`)")
        return None
    cols = max(1, len(panels))
    fig = figure.Figure(figsize=(4.3 * cols, 7.4), layout="constrained")
    agg.FigureCanvasAgg(fig)
    axes = fig.subplots(2, cols, squeeze=False)
    metrics = ((1, "CPU ms per call (Redis's included)"), (2, "added p50 ms (streams: to end)"))
    for col, panel in enumerate(panels):
        for row, (index, label) in enumerate(metrics):
            ax = axes[row][col]
            ys: list[float] = []
            for store, points in panel.series.items():
                shown = [(p[0], p[index]) for p in points if p[index] is not None]
                if not shown:
                    continue
                xs = [x for x, _ in shown]
                vals = [float(y) for _, y in shown if y is not None]
                ys += vals
                color = COLORS.get(store)
                ax.plot(xs, vals, marker="o", color=color, label=store)
                if row == 0:
                    for x, y in zip(xs, vals, strict=True):
                        if (store, x) in panel.superlinear:
                            ax.plot(
                                [x], [y], marker="o", markersize=14, fillstyle="none", color="black"
                            )
            ax.set_xscale("log")
            if ys and _log_scale(ys):
                ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_xlabel(panel.xlabel)
            if col == 0:
                ax.set_ylabel(label)
            if row == 0:
                ax.set_title(panel.title, fontsize=10)
                ax.legend(fontsize=8)
    fig.suptitle(caption, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path


def finite(value: float | None) -> float | None:
    """A value to plot, or None (not measured, or not a number)."""
    return value if value is not None and math.isfinite(value) else None
