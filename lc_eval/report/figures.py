"""PNG figures: line plots comparing models on a log2 axis (score against length, recall
against pair count, loss against position), and depth x length heatmaps.

Both draw with matplotlib's non-interactive Agg backend and write PNGs without a
timestamp, so the same scores give the same files.
"""

from __future__ import annotations

import math
from pathlib import Path

from lc_eval.report.names import length_label

_MARKERS = "osD^vP*X"
_PNG_META = {"Software": None}  # no matplotlib version stamp: identical inputs, identical bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    path: Path,
    title: str,
    curves: dict[str, dict[int, float]],
    training: dict[str, int | None],
    threshold: float | None = None,
) -> Path:
    """Score (percent) against length (log2 axis), one line per model.

    curves: model -> {length: score}; training: model -> training length, drawn as a
    dotted vertical line in the model's colour; threshold: a grey dashed horizontal line.
    """
    return plot_lines(
        path, title, curves, training=training, threshold=threshold, ylim=(-3, 103),
        xlabel="input length (tokens, log2 scale); dotted lines: training lengths",
        ylabel="score (%)",
    )


def plot_lines(
    path: Path,
    title: str,
    curves: dict[str, dict[int, float]],
    *,
    xlabel: str,
    ylabel: str,
    training: dict[str, int | None] | None = None,
    threshold: float | None = None,
    ylim: tuple[float, float] | None = None,
    tick_label=length_label,
    labels: dict[str, str] | None = None,
) -> Path:
    """Lines against a log2 x axis, one per model (hollow markers of different shapes).

    curves: model -> {x: y}; training: model -> training length, drawn as a dotted vertical
    line in the model's colour; threshold: a grey dashed horizontal line; labels: model ->
    legend text (default: the model and its training length); tick_label: x -> tick text.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 4.2), dpi=110)
    training = training or {}
    xs_all = sorted({n for c in curves.values() for n in c})
    for i, (model, curve) in enumerate(curves.items()):
        color = f"C{i % 10}"
        xs = sorted(curve)
        train = training.get(model)
        label = (labels or {}).get(model) or (
            f"{model} (train {length_label(train)})" if train else model)
        # Hollow markers of different shapes keep coinciding curves visible.
        ax.plot(
            xs, [curve[n] for n in xs], color=color, label=label, marker=_MARKERS[i % len(_MARKERS)],
            markerfacecolor="none", markersize=8 - (i % 3), linewidth=1.5,
        )  # fmt: skip
        if train:
            ax.axvline(train, color=color, linestyle=":", linewidth=1.5)
            xs_all = sorted({*xs_all, train})
    if threshold is not None:
        ax.axhline(threshold, color="0.5", linestyle="--", linewidth=1)
        ax.annotate(
            f"threshold {threshold:g}",
            xy=(0.0, threshold),
            xycoords=("axes fraction", "data"),
            xytext=(3, -11),
            textcoords="offset points",
            color="0.4",
            fontsize=8,
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs_all, [tick_label(n) for n in xs_all])
    ax.minorticks_off()
    if len(xs_all) == 1:  # a single point: give the axis some width
        ax.set_xlim(xs_all[0] / 1.5, xs_all[0] * 1.5)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=_PNG_META)
    plt.close(fig)
    return path


def plot_heatmap(
    path: Path,
    title: str,
    cells: dict[tuple[float, int], float],
    training: int | None = None,
) -> Path:
    """Depth (rows, 0% at the top) x length (columns) heatmap of scores in percent.

    cells: (depth, length) -> score. Cells without documents are grey. The training
    length and twice it are named under their columns when measured.
    """
    plt = _pyplot()
    depths = sorted({d for d, _ in cells})
    lengths = sorted({n for _, n in cells})
    grid = [[cells.get((d, n), math.nan) for n in lengths] for d in depths]
    fig, ax = plt.subplots(figsize=(1.6 + 0.9 * len(lengths), 1.4 + 0.38 * len(depths)), dpi=110)
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="0.85")  # grey: no documents
    image = ax.imshow(grid, cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            text = "-" if math.isnan(value) else f"{value:.0f}"
            dark = not math.isnan(value) and (value < 15 or value > 88)  # ends of RdYlGn
            ax.text(
                j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )
    labels = []
    for n in lengths:
        label = length_label(n)
        if training and n == training:
            label += "\n(train)"
        elif training and n == 2 * training:
            label += "\n(2x train)"
        labels.append(label)
    ax.set_xticks(range(len(lengths)), labels)
    ax.set_yticks(range(len(depths)), [f"{d:g}%" for d in depths])
    ax.set_xlabel("input length (tokens)")
    ax.set_ylabel("needle depth")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="score (%)")
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=_PNG_META)
    plt.close(fig)
    return path
