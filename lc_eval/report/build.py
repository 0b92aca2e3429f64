"""From lm-eval output folders to one ``Report``: models, scores, effective lengths, notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lc_eval.report import beyond as beyond_literal
from lc_eval.report.effective import RULER_THRESHOLD, EffectiveLength, effective_length
from lc_eval.report.load import Run, find_results_files, load_run
from lc_eval.report.merge import ModelRuns, merge_runs
from lc_eval.report.models import TrainingLength, display_names, training_length
from lc_eval.report.names import (
    SUITE,
    family_order,
    length_label,
    parse_pair_task,
    parse_task,
)
from lc_eval.report.scores import Score, depth_scores, sort_scores, suite_means, task_scores
from lc_eval.report.state_study import StateStudy, collect


@dataclass
class ModelReport:
    """One model of the report and what is known about it."""

    name: str
    runs: ModelRuns
    training: TrainingLength
    effective: dict[str, EffectiveLength] = field(default_factory=dict)  # family -> length
    other_tasks: list[tuple[str, str, float]] = field(default_factory=list)  # task, metric, v
    headline_tasks: list[str] = field(default_factory=list)  # other tasks outside any group


@dataclass
class Report:
    """Everything ``report.md``, ``scores.csv`` and the figures are drawn from."""

    models: list[ModelReport]
    scores: list[Score]  # sorted: model, family, length, depth
    families: list[str]  # shown, in table order ("suite" first when present)
    summary_family: str | None  # the family of the summary table and headline effective
    # length (None when the runs hold only the state-capacity tasks)
    threshold: float
    depth_step: float
    runs: list[Run]
    notes: list[str]
    study: StateStudy = field(default_factory=StateStudy)  # the state-capacity tasks' numbers
    beyond: beyond_literal.Beyond = field(default_factory=beyond_literal.Beyond)
    # ^ the copy and swap-count sweeps, latent against literal

    def curve(self, model: str, family: str) -> dict[int, float]:
        """length -> score (all depths) of one model on one family."""
        return {
            s.length: s.score
            for s in self.scores
            if s.model == model and s.family == family and s.depth is None
        }

    def depth_cells(self, model: str, family: str) -> dict[tuple[float, int], float]:
        """(depth, length) -> score of one model on one family, from its sample logs."""
        return {
            (s.depth, s.length): s.score
            for s in self.scores
            if s.model == model and s.family == family and s.depth is not None
        }


def build_report(
    run_paths: list[str | Path],
    names: dict[str, str] | None = None,
    training_lengths: dict[str, int] | None = None,
    threshold: float = RULER_THRESHOLD,
    families: list[str] | None = None,
    summary_family: str | None = None,
    depth_step: float = 10.0,
) -> Report:
    """Read lm-eval results (folders or files) and assemble the report's content.

    names: automatic or recorded model name -> display name. training_lengths: display
    name -> tokens (overrides the checkpoint config). families: the families to show
    (default: all found). summary_family: the family of the summary table (default: the
    suite when scored, else the first family found).
    """
    runs = [load_run(path) for path in find_results_files(run_paths)]
    merged = merge_runs(runs)
    order = {id(run): i for i, run in enumerate(runs)}
    merged.sort(key=lambda m: min(order[id(r)] for r in m.runs))  # the order of the inputs
    chosen = display_names([m.key for m in merged], names)
    training_lengths = dict(training_lengths or {})
    notes: list[str] = []

    models = []
    for entry in merged:
        name = chosen[entry.key]
        override = training_lengths.pop(name, None)
        models.append(ModelReport(name, entry, training_length(entry.newest, override)))
    if training_lengths:
        unknown = min(training_lengths)
        raise ValueError(
            f"--training-length {unknown}=...: no model of that name; models: "
            + ", ".join(m.name for m in models)
        )

    rows: list[Score] = []
    for m in models:
        rows += task_scores(m.name, m.runs, notes)
    rows += suite_means(rows, notes)
    found = sorted({r.family for r in rows}, key=family_order)
    study = collect(models)
    beyond = beyond_literal.collect(models)
    if not found and study.empty and beyond.empty:
        tasks = sorted({t for r in runs for t in r.results})
        shown = ", ".join(tasks[:5]) + (", ..." if len(tasks) > 5 else "")
        raise ValueError(
            f"no lc-eval task (lc_<family>_<len>) in {len(runs)} results file(s) "
            f"(tasks found: {shown or 'none'}); run lc-eval's tasks with lm_eval first"
        )
    shown_families = _select_families(found, families)
    rows = [r for r in rows if r.family in shown_families]
    for m in models:
        rows += depth_scores(m.name, m.runs, set(shown_families), depth_step, notes)
    rows = sort_scores(rows, [m.name for m in models])

    if summary_family is None:
        summary_family = (SUITE if SUITE in shown_families else shown_families[0]
                          ) if shown_families else None
    elif summary_family not in shown_families:
        raise ValueError(
            f"--summary {summary_family}: no scores for that family; "
            f"families: {', '.join(shown_families)}"
        )
    report = Report(
        models, rows, shown_families, summary_family, threshold, depth_step, runs, notes, study,
        beyond,
    )
    for m in models:
        for family in shown_families:
            curve = report.curve(m.name, family)
            if curve:
                m.effective[family] = effective_length(curve, threshold)
        _other_tasks(m)
        notes.extend(_run_notes(m))
    return report


def _select_families(found: list[str], wanted: list[str] | None) -> list[str]:
    if not wanted:
        return found
    missing = [f for f in wanted if f not in found]
    if missing:
        raise ValueError(
            f"--families {missing[0]}: no scores for that family; found: {', '.join(found)}"
        )
    return sorted(dict.fromkeys(wanted), key=family_order)


def _other_tasks(m: ModelReport) -> None:
    """Scores of tasks that are not lc-eval's (a leaderboard's, say), as lm-eval recorded them."""
    in_groups = {sub for run in m.runs.runs for subs in run.groups.values() for sub in subs}
    for task, run in m.runs.task_run.items():  # in the order lm-eval recorded them
        if (parse_task(task) is not None or parse_pair_task(task) is not None
                or beyond_literal.parse_sweep_task(task) is not None):
            continue
        metrics = [
            (key, value)
            for key, value in run.results[task].items()
            if "," in key
            and "_stderr," not in key
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ]
        for key, value in metrics:
            m.other_tasks.append((task, key.replace(",none", ""), float(value)))
        if metrics and task not in in_groups:
            m.headline_tasks.append(task)


def _run_notes(m: ModelReport) -> list[str]:
    notes = []
    if len(m.runs.runs) > 1:
        replaced: dict[str, list[str]] = {}
        for task, old, _ in m.runs.superseded:
            replaced.setdefault(old.path.name, []).append(task)
        line = f"{m.name}: {len(m.runs.runs)} runs merged, the newest run wins for each task"
        if replaced:
            details = "; ".join(
                f"{file}: {_task_list(tasks)}" for file, tasks in sorted(replaced.items())
            )
            line += f"; replaced by newer runs: {details}"
        notes.append(line)
    for group in m.runs.dropped_groups:
        notes.append(
            f"{m.name}: recorded {group} score dropped: some of its tasks come from a newer run"
        )
    limits = {r.limit for r in m.runs.runs if r.limit is not None}
    if limits:
        shown = ", ".join(f"{x:g}" for x in sorted(limits))
        what = "that fraction of the" if max(limits) < 1 else "that many"
        notes.append(
            f"{m.name}: run with --limit {shown}: scores cover only {what} documents per task"
        )
    overrides = sorted({_args(r.gen_kwargs) for r in m.runs.runs if r.gen_kwargs})
    if overrides:
        notes.append(
            f"{m.name}: run with --gen_kwargs {' / '.join(overrides)}: these override the "
            "generation settings of the tasks (a shorter max_gen_toks can cut answers short)"
        )
    return notes


def _args(kwargs: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()))


def _task_list(tasks: list[str]) -> str:
    parsed = [parse_task(t) for t in tasks]
    if all(parsed) and len(tasks) > 3:
        lengths = sorted({p[1] for p in parsed})
        return f"{len(tasks)} tasks at {', '.join(length_label(n) for n in lengths)}"
    return ", ".join(sorted(tasks))
