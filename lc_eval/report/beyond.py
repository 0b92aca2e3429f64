"""Beyond literal retrieval in the report: copying against passage length, state tracking
against swap count, and latent needles against their literal control.

* ``lc_copy_<len>_w<N>`` and ``lc_statetrack_<len>_o<N>``: ``acc`` against N, per sweep length,
  one line per model (as the kvrecall pair sweep is drawn in the state-capacity section);
* ``lc_niah_latent_<len>``: the score of each model beside the score of the same model run
  with ``literal: true`` (a run whose read variant holds ``literal``), length by length, and
  the gap between them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lc_eval.report.cells import percent, table
from lc_eval.report.names import length_label, parse_length, parse_task
from lc_eval.report.scores import pick_metric

__all__ = ["LITERAL", "SWEPT", "Beyond", "collect", "draw", "parse_sweep_task"]

LITERAL = "literal"  # the read-variant part of a run with option literal: true
LATENT = "niah_latent"
# family -> (letter of its sweep tasks, what the count is, for axes and headings)
SWEPT: dict[str, tuple[str, str]] = {"copy": ("w", "passage words"),
                                     "statetrack": ("o", "swaps")}
_SWEEP_TASK = re.compile(r"^lc_(?P<family>copy|statetrack)_(?P<length>\d+[km]?)_"
                         r"(?P<letter>[wo])(?P<count>\d+)$")


def parse_sweep_task(name: str) -> tuple[str, int, int] | None:
    """``(family, length, count)`` of a copy or swap-count sweep task.

    >>> parse_sweep_task("lc_copy_4k_w064"), parse_sweep_task("lc_statetrack_16k_o008")
    (('copy', 4096, 64), ('statetrack', 16384, 8))
    >>> parse_sweep_task("lc_copy_4k") is None and parse_sweep_task("lc_copy_4k_o4") is None
    True
    """
    match = _SWEEP_TASK.match(name)
    if match is None or SWEPT[match.group("family")][0] != match.group("letter"):
        return None
    return match.group("family"), parse_length(match.group("length")), int(match.group("count"))


@dataclass
class Beyond:
    """What the runs hold of the three families, by display name of the model."""

    sweeps: dict[str, dict[int, dict[str, dict[int, float]]]] = field(default_factory=dict)
    # ^ family -> sweep length -> model -> {count: acc %}
    latent: dict[str, dict[int, tuple[float | None, float | None]]] = field(default_factory=dict)
    # ^ model (its latent run's name) -> length -> (latent acc %, literal acc %)

    @property
    def empty(self) -> bool:
        return not (self.sweeps or self.latent)


def _strip_literal(variant: str) -> str:
    return ", ".join(p for p in variant.split(", ") if p and p != LITERAL)


def collect(models) -> Beyond:
    """The sweeps and the latent/literal pairs from ``ModelReport``s (their merged runs)."""
    out = Beyond()
    latent: dict[tuple, dict[int, float]] = {}  # (type, model, variant w/o literal) -> curve
    literal: dict[tuple, dict[int, float]] = {}
    names: dict[tuple, str] = {}
    for m in models:
        source, model, variant = m.runs.key
        is_literal = LITERAL in variant.split(", ")
        base = (source, model, _strip_literal(variant))
        if not is_literal:
            names[base] = m.name
        for task, run in m.runs.task_run.items():
            picked = pick_metric(run.results[task])
            if picked is None:
                continue
            swept = parse_sweep_task(task)
            if swept is not None:
                family, length, count = swept
                out.sweeps.setdefault(family, {}).setdefault(length, {}).setdefault(
                    m.name, {})[count] = 100 * picked[0]
                continue
            parsed = parse_task(task)
            if parsed is not None and parsed[0] == LATENT:
                (literal if is_literal else latent).setdefault(base, {})[parsed[1]] = (
                    100 * picked[0])
    for base, curve in literal.items():  # only models run both ways are paired
        if base in latent:
            both = latent[base]
            out.latent[names[base]] = {n: (both.get(n), curve.get(n))
                                       for n in sorted(set(both) | set(curve))}
    out.sweeps = {f: dict(sorted(by_len.items())) for f, by_len in sorted(out.sweeps.items())}
    return out


def draw(beyond: Beyond, out: Path, unique) -> dict[str, str]:
    """The sweep curves into ``out``; key ``sweep/<family>/<length>`` -> file name."""
    from lc_eval.report.figures import plot_lines

    drawn = {}
    for family, by_length in beyond.sweeps.items():
        what = SWEPT[family][1]
        for length, by_model in by_length.items():
            name = unique(f"{family}_sweep_{length_label(length)}.png")
            plot_lines(out / name, f"lc_{family} at {length_label(length)}: acc against {what}",
                       by_model, xlabel=f"{what} (log2)", ylabel="acc (%)", ylim=(-3, 103),
                       tick_label=str)
            drawn[f"sweep/{family}/{length}"] = name
    return drawn


def section(beyond: Beyond, figures: dict[str, str]) -> str:
    """The "Beyond literal retrieval" section of ``report.md`` ("" when there is nothing)."""
    parts = []
    if beyond.latent:
        lengths = sorted({n for curve in beyond.latent.values() for n in curve})
        rows = []
        for model, curve in beyond.latent.items():
            cells = []
            for n in lengths:
                lat, lit = curve.get(n, (None, None))
                gap = "" if lat is None or lit is None else f" ({lat - lit:+.0f})"
                cells.append(f"{percent(lat)} / {percent(lit)}{gap}")
            rows.append([model, *cells])
        parts += ["### Latent against literal",
                  ("`acc` of `lc_niah_latent_<len>` in percent: the latent question / the same "
                   "needle asked in its own words (`literal: true`), and the gap in points. "
                   "Literal matching is taken away from the latent question only."),
                  table(["model", *[length_label(n) for n in lengths]], rows)]
    for family, by_length in beyond.sweeps.items():
        letter, what = SWEPT[family]
        for length, by_model in by_length.items():
            counts = sorted({c for curve in by_model.values() for c in curve})
            rows = [[m, *[percent(curve.get(c)) for c in counts]] for m, curve in by_model.items()]
            parts += [f"### lc_{family} against {what} at {length_label(length)}",
                      (f"`acc` of `lc_{family}_{length_label(length)}_{letter}<N>` in percent, "
                       f"N {what}."),
                      table([f"model \\ {what}", *[str(c) for c in counts]], rows)]
            key = f"sweep/{family}/{length}"
            if key in figures:
                parts.append(f"![lc_{family} against {what} at {length_label(length)}]"
                             f"({figures[key]})")
    return "\n\n".join(parts)
