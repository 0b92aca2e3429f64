"""Several runs of one model become one set of results: for each task, the newest run wins.

A length sweep is often run in pieces (a partial run, then the missing lengths, then a
rerun of one length); merging per task keeps every piece and reports what was replaced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lc_eval.report.load import Run
from lc_eval.report.models import model_key


@dataclass
class ModelRuns:
    """The results of one model, merged over its runs."""

    key: tuple[str, str, str]  # (lm-eval model type, recorded model name, read variant)
    runs: list[Run]  # oldest first
    task_run: dict[str, Run] = field(default_factory=dict)  # task or group -> run used
    superseded: list[tuple[str, Run, Run]] = field(default_factory=list)  # (task, old, new)
    dropped_groups: list[str] = field(default_factory=list)

    @property
    def newest(self) -> Run:
        return self.runs[-1]


def merge_runs(runs: list[Run]) -> list[ModelRuns]:
    """Group runs by model and pick, per task, the result of the newest run holding it.

    A group score (``lc_suite_4k``) is kept only if every one of its subtasks comes from
    the group's own run; otherwise it is dropped (and listed in ``dropped_groups``), so a
    recorded group score never stands beside subtask scores of another run.
    """
    by_model: dict[tuple[str, str], list[Run]] = {}
    for run in sorted(runs, key=lambda r: (r.date, str(r.path))):
        by_model.setdefault(model_key(run), []).append(run)
    merged = []
    for key, model_runs in by_model.items():
        entry = ModelRuns(key=key, runs=model_runs)
        for run in model_runs:  # oldest first, so newer runs overwrite
            for task in run.results:
                old = entry.task_run.get(task)
                if old is not None:
                    entry.superseded.append((task, old, run))
                entry.task_run[task] = run
        _drop_mixed_groups(entry)
        merged.append(entry)
    return merged


def _drop_mixed_groups(entry: ModelRuns) -> None:
    for task, run in list(entry.task_run.items()):
        subtasks = run.groups.get(task)
        if subtasks and any(entry.task_run.get(sub) is not run for sub in subtasks):
            del entry.task_run[task]
            entry.dropped_groups.append(task)
