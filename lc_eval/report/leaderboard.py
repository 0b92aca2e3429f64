"""RULER's leaderboard table: claimed length, effective length, the score at each length, Avg,
wAvg (inc) and wAvg (dec), for our models and, from a CSV, for models of RULER's published table.

RULER ranks models by two length-weighted averages of their per-length scores: with weights
growing linearly with the length (``inc``: 1, 2, ..., n from the shortest length up) and
shrinking linearly (``dec``: n, ..., 1). ``inc`` rewards holding up at long lengths. RULER's
own rows use its six lengths, 4K to 128K; a row is averaged over the lengths of the table, and
has no averages where it misses one. GPT-4-1106-preview's published row:

>>> avg, inc, dec = averages([96.6, 96.3, 95.2, 93.2, 87.0, 81.2])
>>> round(avg, 1), round(inc, 1), round(dec, 1)
(91.6, 89.0, 94.1)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from lc_eval.report.names import length_label, parse_length
from lc_tasks.errors import UsageError

RULER_LENGTHS = (4096, 8192, 16384, 32768, 65536, 131072)
CSV_COLUMNS = ("model", "claimed length", "effective length")


@dataclass
class Row:
    """One model's row: its lengths' scores (percent) and where the row comes from."""

    model: str
    claimed: str  # "4k", "128k", "-" when unknown
    effective: str  # "2k", "< 1k", ">= 16k", ...
    scores: dict[int, float] = field(default_factory=dict)
    source: str = "this report"  # or the published CSV's file name


def averages(scores: list[float]) -> tuple[float, float, float]:
    """(Avg, wAvg (inc), wAvg (dec)) of scores listed from the shortest length up."""
    n = len(scores)
    if not n:
        raise ValueError("averages need at least one score")
    total = n * (n + 1) / 2
    inc = sum((i + 1) * s for i, s in enumerate(scores)) / total
    dec = sum((n - i) * s for i, s in enumerate(scores)) / total
    return sum(scores) / n, inc, dec


def read_published(path: str | Path) -> list[Row]:
    """Rows of a CSV in RULER's table shape: ``model, claimed length, effective length`` then
    one column per length (``4k``, ``8k``, ...; Avg and wAvg columns, if any, are recomputed)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            table = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"--published {path}: cannot read it as a CSV ({err})") from None
    if not table or any(c not in table[0] for c in CSV_COLUMNS):
        raise UsageError(f"--published {path}: its header must start with "
                         f"{', '.join(CSV_COLUMNS)}, then one column per length (4k, 8k, ...)")
    rows = []
    for line, record in enumerate(table, start=2):
        scores = {}
        for column, value in record.items():
            if column in CSV_COLUMNS or not column or column.lower().startswith(("avg", "wavg")):
                continue
            if value in (None, ""):
                continue
            try:
                scores[parse_length(column)] = float(value)
            except ValueError:
                raise UsageError(f"--published {path}, line {line}: column {column!r} = "
                                 f"{value!r}: want a length header (4k) and a score") from None
        rows.append(Row(record["model"], record["claimed length"] or "-",
                        record["effective length"] or "-", scores, source=path.name))
    return rows


def our_rows(report, claimed: dict[str, int] | None = None) -> list[Row]:
    """One row per model of a report, on its summary family (the suite when it was run):
    claimed length from ``claimed`` (model -> tokens), else the model's training length."""
    claimed = claimed or {}
    rows = []
    for model in report.models:
        tokens = claimed.get(model.name, model.training.tokens)
        effective = model.effective.get(report.summary_family)
        rows.append(Row(model.name, length_label(tokens) if tokens else "-",
                        effective.label() if effective else "-",
                        report.curve(model.name, report.summary_family)))
    return rows


def table(rows: list[Row], lengths: list[int]) -> list[dict[str, str]]:
    """The leaderboard, ranked by wAvg (inc) (rows missing a length last), as text cells."""
    def key(row):
        full = all(n in row.scores for n in lengths)
        return (not full, -(averages([row.scores[n] for n in lengths])[1] if full else 0))

    out = []
    for rank, row in enumerate(sorted(rows, key=key), start=1):
        cells = {"model": row.model, "claimed length": row.claimed,
                 "effective length": row.effective}
        for n in lengths:
            cells[length_label(n)] = f"{row.scores[n]:.1f}" if n in row.scores else "-"
        if all(n in row.scores for n in lengths):
            avg, inc, dec = averages([row.scores[n] for n in lengths])
            cells.update({"Avg": f"{avg:.1f}", "wAvg (inc)": f"{inc:.1f}",
                          "wAvg (dec)": f"{dec:.1f}", "rank": str(rank)})
        else:
            cells.update({"Avg": "-", "wAvg (inc)": "-", "wAvg (dec)": "-", "rank": "-"})
        cells["source"] = row.source
        out.append(cells)
    return out


def write(rows: list[Row], lengths: list[int], out: Path) -> list[Path]:
    """``leaderboard.md`` and ``leaderboard.csv`` in ``out``."""
    cells = table(rows, lengths)
    columns = list(cells[0]) if cells else [*CSV_COLUMNS]
    md = ["| " + " | ".join(columns) + " |",
          "| " + " | ".join(":--" if i < 3 else "--:" for i in range(len(columns))) + " |"]
    md += ["| " + " | ".join(row[c] for c in columns) + " |" for row in cells]
    note = (f"Scores in percent at {', '.join(length_label(n) for n in lengths)}; Avg, wAvg "
            "(inc) and wAvg (dec) as RULER computes them (linearly increasing and decreasing "
            "weights over the lengths); ranked by wAvg (inc).")
    (out / "leaderboard.md").write_text("# Leaderboard\n\n" + note + "\n\n" + "\n".join(md) + "\n")
    with (out / "leaderboard.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(cells)
    return [out / "leaderboard.md", out / "leaderboard.csv"]
