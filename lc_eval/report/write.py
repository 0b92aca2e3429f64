"""Writing a ``Report`` to a folder: ``report.md``, ``scores.csv`` and the PNG figures."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from tqdm.auto import tqdm

from lc_eval.report import beyond, leaderboard, state_study
from lc_eval.report.build import Report
from lc_eval.report.figures import plot_curves, plot_heatmap
from lc_eval.report.markdown import family_title, render
from lc_eval.report.names import length_label
from lc_tasks.progress import leave_bar

CSV_COLUMNS = [
    "model", "family", "length", "length_label", "depth", "score", "n", "stderr", "source", "task",
]  # fmt: skip


def write_report(report: Report, out: str | Path, figures: bool = True,
                 published: list | None = None, claimed: dict[str, int] | None = None,
                 lengths: list[int] | None = None) -> list[Path]:
    """Write the report into ``out`` (created if needed); returns the files written.

    Beside it, RULER's leaderboard table (``leaderboard.md``/``.csv``) of our models on the
    summary family, with ``published`` rows (``leaderboard.read_published``) set beside them,
    over ``lengths`` (default: the lengths the summary family was run at).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_scores_csv(report, out / "scores.csv")]
    if report.summary_family is not None:  # not for runs of the state-capacity tasks alone
        rows = leaderboard.our_rows(report, claimed) + list(published or [])
        lengths = lengths or sorted({n for row in rows[: len(report.models)] for n in row.scores})
        written += leaderboard.write(rows, lengths, out)
    drawn = draw_figures(report, out) if figures else {}
    (out / "report.md").write_text(render(report, drawn), encoding="utf-8")
    return [out / "report.md", *written, *(out / name for name in drawn.values())]


def write_scores_csv(report: Report, path: Path) -> Path:
    """One row per (model, family, length, depth); ``depth`` empty for all documents."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for s in report.scores:
            writer.writerow(
                [
                    s.model,
                    s.family,
                    s.length,
                    length_label(s.length),
                    "" if s.depth is None else f"{s.depth:g}",
                    _num(s.score),
                    "" if s.n is None else s.n,
                    "" if s.stderr is None else _num(s.stderr),
                    s.source,
                    s.task,
                ]
            )
    return path


def draw_figures(report: Report, out: Path) -> dict[str, str]:
    """Curves per family and heatmaps per (model, needle family); key -> file name.

    Keys: ``curves/<family>``, ``heatmap/<model>/<family>``, ``capacity/<length>``,
    ``loss`` and ``sweep/<family>/<length>`` (see ``markdown.render``).
    """
    training = {m.name: m.training.tokens for m in report.models}
    curves = {
        family: {m.name: c for m in report.models if (c := report.curve(m.name, family))}
        for family in report.families
    }
    heatmaps = [
        (m, family, cells)
        for m in report.models
        for family in report.families
        if (cells := report.depth_cells(m.name, family))
    ]
    drawn: dict[str, str] = {}
    used: set[str] = set()
    drawn.update(state_study.draw(report.study, training, out, lambda name: _unique(name, used)))
    drawn.update(beyond.draw(report.beyond, out, lambda name: _unique(name, used)))
    with tqdm(total=len(curves) + len(heatmaps), desc="figures", unit="png",
              leave=leave_bar()) as bar:
        for family, by_model in curves.items():
            name = _unique(f"curves_{_slug(family)}.png", used)
            title = f"{family_title(family)}: score against length"
            plot_curves(out / name, title, by_model, training, report.threshold)
            drawn[f"curves/{family}"] = name
            bar.update()
        for m, family, cells in heatmaps:
            name = _unique(f"heatmap_{_slug(m.name)}_{_slug(family)}.png", used)
            plot_heatmap(out / name, f"{m.name}: {family}", cells, m.training.tokens)
            drawn[f"heatmap/{m.name}/{family}"] = name
            bar.update()
    return drawn


def _num(value: float) -> str:
    return f"{round(value, 6):.6f}".rstrip("0").rstrip(".")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "model"


def _unique(name: str, used: set[str]) -> str:
    stem, suffix, i = name[: -len(".png")], ".png", 2
    while name in used:
        name, i = f"{stem}-{i}{suffix}", i + 1
    used.add(name)
    return name
