"""``report.md``: GitHub-flavoured Markdown tables of a ``Report``, with its figures linked."""

from __future__ import annotations

from datetime import datetime, timezone

from lc_eval.report import beyond as beyond_literal
from lc_eval.report.build import ModelReport, Report
from lc_eval.report.cells import MISSING, nats, number, percent, table
from lc_eval.report.names import SUITE, SUITE_FAMILIES, length_label, parse_task
from lc_eval.report.state_study import format_bytes


def family_title(family: str) -> str:
    if family == SUITE:
        return f"suite (average of {len(SUITE_FAMILIES)} families, lc_suite_<len>)"
    return family


def render(report: Report, figures: dict[str, str]) -> str:
    """The whole report. figures: figure key (``curves/<family>``, ``heatmap/<model>/<family>``,
    ``capacity/<length>``, ``loss``, ``sweep/<family>/<length>``) -> file name relative to the
    report."""
    parts = ["# lc-eval report", _intro(report)]
    if report.families:
        parts += [
            "## Summary",
            _summary(report),
            "## Effective context length",
            _effective(report),
            "## Scores by family",
            (f"Each cell is lm-eval's `acc` of task `lc_<family>_<len>`, in percent; "
             f"`{MISSING}`: not run."),
        ]
    for family in report.families:
        parts += [f"### {family_title(family)}", _length_table(report, family)]
        if f"curves/{family}" in figures:
            parts.append(f"![score against length: {family}]({figures[f'curves/{family}']})")
    depth = _depth_sections(report, figures)
    if depth:
        parts += [
            "## Depth x length",
            (
                "Needle depth in percent of the haystack, rounded to the nearest "
                f"{report.depth_step:g}%; scores from the `--log_samples` logs. In families "
                "with several needles per document the depth is that of the first asked-for "
                "needle (the others sit at random depths); families whose needles all sit at "
                "random depths (vt) have no depth table."
            ),
            *depth,
        ]
    study = _state_study(report, figures)
    if study:
        parts += ["## State capacity", study]
    beyond = beyond_literal.section(report.beyond, figures)
    if beyond:
        parts += ["## Beyond literal retrieval", beyond]
    other = _other_tasks(report)
    if other:
        parts += ["## Other lm-eval tasks", other]
    parts += ["## Inputs", _inputs(report)]
    if report.notes:
        parts += ["## Notes", "\n".join(f"- {note}" for note in report.notes)]
    return "\n\n".join(parts) + "\n"


def _intro(report: Report) -> str:
    return (
        f"{len(report.models)} model(s) from {len(report.runs)} lm-eval results file(s). "
        "Scores are lm-eval's `acc` in percent. Lengths are target prompt lengths in "
        "tokens of each model's own tokenizer (k = 1024). Effective context length: the "
        f"longest length up to which the score stays >= {report.threshold:g}% "
        "(RULER's threshold, Llama-2-7B at 4K, is 85.6)."
    )


def _summary(report: Report) -> str:
    family = report.summary_family
    headline = [
        (task, _first_metric(report, task))
        for task in dict.fromkeys(t for m in report.models for t in m.headline_tasks)
    ]
    header = [
        "model",
        "training length",
        f"effective length ({family} >= {report.threshold:g})",
        f"{family} at training length",
        f"{family} at 2x training length",
        *[f"{task} ({metric})" for task, metric in headline],
    ]
    rows = []
    for m in report.models:
        curve = report.curve(m.name, family)
        train = m.training.tokens
        eff = m.effective.get(family)
        rows.append(
            [
                m.name,
                length_label(train) if train else "unknown",
                eff.label() if eff else MISSING,
                percent(curve.get(train)) if train else MISSING,
                percent(curve.get(2 * train)) if train else MISSING,
                *[_other_value(m, task, metric) for task, metric in headline],
            ]
        )
    sources = "; ".join(f"{m.name}: {m.training.source}" for m in report.models)
    return (
        f"Summary family: **{family_title(family)}**.\n\n"
        + table(header, rows)
        + f"\n\nTraining length from: {sources}."
    )


def _effective(report: Report) -> str:
    header = ["model", *report.families]
    rows = [
        [
            m.name,
            *[m.effective[f].label() if f in m.effective else MISSING for f in report.families],
        ]
        for m in report.models
    ]
    lines = [
        (
            f"Longest measured length up to which the score stays >= {report.threshold:g}%. "
            "`< L`: below the threshold already at the shortest length L; `>= L`: still "
            "above at the longest length run, L."
        ),
        table(header, rows),
    ]
    recovered = [
        f"{m.name} / {family}: below the threshold first, above again at "
        + ", ".join(length_label(n) for n in eff.recovers)
        for m in report.models
        for family, eff in m.effective.items()
        if eff.recovers
    ]
    if recovered:
        lines.append("Not counted (past a failing length): " + "; ".join(recovered) + ".")
    return "\n\n".join(lines)


def _length_table(report: Report, family: str) -> str:
    lengths = sorted({s.length for s in report.scores if s.family == family and s.depth is None})
    rows = []
    for m in report.models:
        curve = report.curve(m.name, family)
        if curve:
            rows.append([m.name, *[percent(curve.get(n)) for n in lengths]])
    return table(["model", *[length_label(n) for n in lengths]], rows)


def _depth_sections(report: Report, figures: dict[str, str]) -> list[str]:
    parts = []
    for m in report.models:
        for family in report.families:
            cells = report.depth_cells(m.name, family)
            if not cells:
                continue
            depths = sorted({d for d, _ in cells})
            lengths = sorted({n for _, n in cells})
            rows = [[f"{d:g}%", *[percent(cells.get((d, n))) for n in lengths]] for d in depths]
            parts += [
                f"### {m.name} / {family}",
                table(["depth", *[_length_head(n, m) for n in lengths]], rows),
            ]
            key = f"heatmap/{m.name}/{family}"
            if key in figures:
                parts.append(f"![depth x length: {m.name}, {family}]({figures[key]})")
    return parts


def _length_head(n: int, m: ModelReport) -> str:
    train = m.training.tokens
    if train and n == train:
        return f"{length_label(n)} (train)"
    if train and n == 2 * train:
        return f"{length_label(n)} (2x train)"
    return length_label(n)


def _other_tasks(report: Report) -> str:
    keys = list(dict.fromkeys((t, k) for m in report.models for t, k, _ in m.other_tasks))
    if not keys:
        return ""
    models = [m for m in report.models if m.other_tasks]
    values = {(m.name, t, k): v for m in models for t, k, v in m.other_tasks}
    rows = [
        [task, metric, *[number(values.get((m.name, task, metric))) for m in models]]
        for task, metric in keys
    ]
    return (
        "Tasks in the same runs that are not lc-eval's, with every metric as lm-eval "
        "recorded it (not rescaled).\n\n"
        + table(["task", "metric", *[m.name for m in models]], rows, left=2)
    )


def _state_study(report: Report, figures: dict[str, str]) -> str:
    """The "State capacity" section: state sizes, recall against pair count, loss by position."""
    study, models = report.study, report.models
    parts = []
    if study.footprints:
        plain = {m.runs.key[:2] for m in models if not m.runs.key[2]}
        rows = [[m.name, format_bytes(fp["lc_state_bytes"]),
                 format_bytes(fp["lc_kv_bytes_per_token"])]
                for m in models if (fp := study.footprints.get(m.name))
                and (not m.runs.key[2] or m.runs.key[:2] not in plain)]  # one row a checkpoint
        parts += ["### State size", (
            "Bytes of the state `lc_hf` carries for one sequence: the fixed part (recurrent and "
            "conv states) and what each token adds (attention KV caches; a sliding window "
            "stops growing at its width)."), table(["model", "fixed state", "per token"], rows)]
    for length, by_model in study.capacity.items():
        counts = sorted({n for curve in by_model.values() for n in curve})
        rows = [[study.legend(m), *[percent(curve.get(n)) for n in counts]]
                for m, curve in by_model.items()]
        parts += [f"### Recall against pair count at {length_label(length)}",
                  (f"`acc` of `lc_kvrecall_{length_label(length)}_p<N>` in percent: N key-number "
                   "pairs in the context, one asked."),
                  table(["model \\ pairs", *[str(n) for n in counts]], rows)]
        if f"capacity/{length}" in figures:
            parts.append(f"![recall against pair count at {length_label(length)}]"
                         f"({figures[f'capacity/{length}']})")
    if study.losses:
        buckets = sorted({b for _, losses in study.losses.values() for b in losses})
        rows = [[m, f"lc_ppl_{length_label(n)}", *[nats(losses.get(b)) for b in buckets]]
                for m, (n, losses) in study.losses.items()]
        parts += ["### Loss by position",
                  ("Negative log-likelihood per token (nats) of the tokens in each position "
                   "bucket, with the whole document before them in view; each model's longest "
                   "`lc_ppl` task. A loss that turns up past the training length means the "
                   "model does not use (or is hurt by) the longer context."),
                  table(["model", "task", *[f"{length_label(a)}-{length_label(b)}"
                                            for a, b in buckets]], rows, left=2)]
        if "loss" in figures:
            parts.append(f"![loss by position]({figures['loss']})")
    if not parts:
        return ""
    return "\n\n".join(parts)


def _inputs(report: Report) -> str:
    rows = []
    for m in report.models:
        for run in m.runs.runs:
            used = sum(1 for r in m.runs.task_run.values() if r is run)
            started = datetime.fromtimestamp(run.date, tz=timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"
            )
            docs = sorted({n for t, n in run.n_samples.items() if parse_task(t)})
            per_task = (
                MISSING if not docs else f"{docs[0]}" + (f"-{docs[-1]}" if len(docs) > 1 else "")
            )
            rows.append(
                [
                    m.name, str(run.path), run.model_source, started,
                    f"{used} of {len(run.results)}", per_task,
                ]
            )  # fmt: skip
    header = ["model", "results file", "lm-eval model", "started", "tasks used", "docs per task"]
    return table(header, rows, left=4)


def _first_metric(report: Report, task: str) -> str:
    for m in report.models:
        for t, metric, _ in m.other_tasks:
            if t == task:
                return metric
    return ""


def _other_value(m: ModelReport, task: str, metric: str) -> str:
    values = {(t, k): v for t, k, v in m.other_tasks}
    return number(values.get((task, metric)))
