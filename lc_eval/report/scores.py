"""The score table: one row per (model, family, length, depth), in percent.

Rows with ``depth=None`` are lm-eval's own task scores (the results file). Rows with a
depth come from the per-sample logs of ``--log_samples`` runs: the mean ``acc`` of the
documents made for that depth (``controlled_depth``), rounded to the nearest
``depth_step`` percent.
The ``suite`` family is the ``lc_suite_<len>`` group score as lm-eval recorded it, or,
where the group was not run, the mean over the 11 suite families when all of them were.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from tqdm.auto import tqdm

from lc_eval.report.load import read_samples
from lc_eval.report.merge import ModelRuns
from lc_eval.report.names import (
    FIRST_NEEDLE_AT_DEPTH,
    SUITE,
    SUITE_FAMILIES,
    family_order,
    length_label,
    parse_task,
)
from lc_tasks.progress import leave_bar

METRIC = "acc"


@dataclass(frozen=True)
class Score:
    """One cell of the report: a model's score on a family at a length (and depth)."""

    model: str
    family: str  # task family, or "suite"
    length: int  # target prompt length in tokens
    depth: float | None  # needle depth in percent (a bin); None: all documents
    score: float  # percent
    n: int | None  # documents behind the score (None for a computed suite mean)
    stderr: float | None  # percent, as lm-eval recorded it
    source: str  # "results", "group", "mean of 11 families", "samples"
    task: str


def pick_metric(metrics: dict, metric: str = METRIC) -> tuple[float, float | None, str] | None:
    """``(value, stderr, filter)`` of ``metric`` in an lm-eval results entry, else None.

    lm-eval keys metrics as ``"<metric>,<filter>"``; the unfiltered ``none`` wins, else the
    first filter by name.
    """
    filters = sorted(k.split(",", 1)[1] for k in metrics if k.startswith(metric + ","))
    if not filters:
        return None
    chosen = "none" if "none" in filters else filters[0]
    value = metrics[f"{metric},{chosen}"]
    if not isinstance(value, (int, float)):
        return None
    stderr = metrics.get(f"{metric}_stderr,{chosen}")
    return float(value), float(stderr) if isinstance(stderr, (int, float)) else None, chosen


def task_scores(model: str, runs: ModelRuns, notes: list[str]) -> list[Score]:
    """lm-eval's recorded score of every lc-eval task and group of one model."""
    rows = []
    for task, run in runs.task_run.items():
        parsed = parse_task(task)
        if parsed is None:
            continue
        family, length = parsed
        if family == "ppl":  # scored by loss, not acc: the report's state-capacity section
            continue
        picked = pick_metric(run.results[task])
        if picked is None:
            notes.append(f"{model}: {task} has no `{METRIC}` metric in {run.path}; skipped")
            continue
        value, stderr, _ = picked
        rows.append(
            Score(
                model=model,
                family=family,
                length=length,
                depth=None,
                score=100 * value,
                n=run.n_samples.get(task),
                stderr=None if stderr is None else 100 * stderr,
                source="group" if run.groups.get(task) else "results",
                task=task,
            )
        )
    return rows


def suite_means(rows: list[Score], notes: list[str]) -> list[Score]:
    """Suite averages for (model, length) pairs whose group score lm-eval did not record.

    A mean is formed only over all 11 suite families; where some are missing the suite
    cell stays empty and one note per model says which families were not run.
    """
    have = {(r.model, r.length) for r in rows if r.family == SUITE and r.depth is None}
    by_cell: dict[tuple[str, int], dict[str, Score]] = defaultdict(dict)
    for r in rows:
        if r.depth is None and r.family in SUITE_FAMILIES:
            by_cell[(r.model, r.length)][r.family] = r
    means = []
    incomplete: dict[str, tuple[list[int], set[str]]] = {}
    for (model, length), fams in sorted(by_cell.items()):
        if (model, length) in have:
            continue
        missing = {f for f in SUITE_FAMILIES if f not in fams}
        if missing:
            lengths, gone = incomplete.setdefault(model, ([], set()))
            lengths.append(length)
            gone.update(missing)
            continue
        means.append(
            Score(
                model=model,
                family=SUITE,
                length=length,
                depth=None,
                score=sum(r.score for r in fams.values()) / len(fams),
                n=None,
                stderr=None,
                source=f"mean of {len(fams)} families",
                task=f"lc_{SUITE}_*",
            )
        )
    for model, (lengths, gone) in incomplete.items():
        notes.append(
            f"{model}: no suite average at {', '.join(length_label(n) for n in lengths)}: "
            f"suite families not run there: {', '.join(f for f in SUITE_FAMILIES if f in gone)}"
        )
    return means


def depth_scores(
    model: str, runs: ModelRuns, families: set[str] | None, depth_step: float, notes: list[str]
) -> list[Score]:
    """Per-depth scores from the sample logs of one model's needle tasks (see
    ``controlled_depth``)."""
    rows = []
    tasks = sorted(
        t
        for t, run in runs.task_run.items()
        if t in run.sample_files
        and (parsed := parse_task(t)) is not None
        and parsed[0] != SUITE
        and (families is None or parsed[0] in families)
    )
    for task in tqdm(tasks, desc=f"samples of {model}", unit="task", leave=leave_bar()):
        run = runs.task_run[task]
        family, length = parse_task(task)
        picked = pick_metric(run.results[task])
        if picked is None:
            continue
        recorded, _, filter_key = picked
        samples = [
            s
            for s in read_samples(run.sample_files[task], ("depth",))
            if s["filter"] == filter_key and isinstance(s.get(METRIC), (int, float, bool))
        ]
        if samples and not math.isclose(
            sum(float(s[METRIC]) for s in samples) / len(samples), recorded, abs_tol=1e-9
        ):
            notes.append(
                f"{model}: the samples of {task} do not average to its recorded score; "
                f"{run.sample_files[task].name} may belong to another run"
            )
        bins: dict[float, list[float]] = defaultdict(list)
        for s in samples:
            depth = controlled_depth(family, s["depth"])
            if depth is not None:
                bins[_round_to(depth, depth_step)].append(float(s[METRIC]))
        for depth, values in sorted(bins.items()):
            rows.append(
                Score(
                    model=model,
                    family=family,
                    length=length,
                    depth=depth,
                    score=100 * sum(values) / len(values),
                    n=len(values),
                    stderr=None,
                    source="samples",
                    task=task,
                )
            )
    return rows


def sort_scores(rows: list[Score], model_order: list[str]) -> list[Score]:
    """Rows in report order: model, family, length, then depth (all-documents row first)."""
    rank = {m: i for i, m in enumerate(model_order)}
    return sorted(
        rows,
        key=lambda r: (
            rank.get(r.model, len(rank)),
            r.model,
            family_order(r.family),
            r.length,
            -1.0 if r.depth is None else r.depth,
        ),
    )


def controlled_depth(family: str, depth) -> float | None:
    """The depth a document was made for: its needle's depth, or, in families that place
    the first asked-for needle at the doc's depth (``FIRST_NEEDLE_AT_DEPTH``), the first of
    its needle depths. None for docs without needles or whose needles all sit at random
    depths (vt's chain), which have no depth to plot against.

    >>> controlled_depth("niah_multikey", [20.0, 3.0, 82.0]), controlled_depth("vt", [1.5, 31.0])
    (20.0, None)
    """
    if isinstance(depth, list):
        if len(depth) == 1 or (depth and family in FIRST_NEEDLE_AT_DEPTH):
            depth = depth[0]
        else:
            return None
    if isinstance(depth, (int, float)) and not isinstance(depth, bool):
        return float(depth)
    return None


def _round_to(value: float, step: float) -> float:
    # Half-up, so 5% with a 10% step goes to 10 deterministically (no banker's rounding).
    return min(100.0, max(0.0, math.floor(value / step + 0.5) * step))
