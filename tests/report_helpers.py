"""lm-eval output for report tests, written by lm-eval's own ``EvaluationTracker``.

The file names, folder layout and date stamps are lm-eval's; only the scores are chosen by
the test, so each test can shape the runs it needs (partial sweeps, reruns, API models)
without paying ~30 s per real ``lm_eval run``. ``test_report.py`` checks the report on
output of the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lm_eval.loggers import EvaluationTracker
from lm_eval.utils import hash_string

DEFAULT_DEPTHS = (0.0, 50.0, 100.0)


def doc(task: str, index: int, depth: Any) -> dict[str, Any]:
    """A document shaped like lc-eval's (see the conventions in the team brief)."""
    from lc_eval.report.names import parse_task

    family, length = parse_task(task)
    return {
        "index": index,
        "family": family,
        "length": length,
        "n_tokens": length - 5,
        "depth": depth,
        "needle_positions": [],
        "seed": 0,
        "input": f"The pass key is {index}. " * 3 + "What is the pass key?",
        "outputs": [str(index)],
    }


def write_run(
    output_path: Path,
    model_args: dict[str, Any] | str,
    accs: dict[str, list[float]],
    *,
    model: str = "hf",
    date: float = 1_700_000_000.0,
    depths: dict[str, list[Any]] | None = None,
    other: dict[str, dict[str, float]] | None = None,
    groups: dict[str, list[str]] | None = None,
    log_samples: bool = True,
    limit: float | None = None,
) -> Path:
    """Write one run like ``lm_eval run --output_path output_path [--log_samples]``.

    accs: task -> per-document acc (the task score is their mean). depths: task -> each
    document's depth (default: cycles 0, 50, 100). other: non-lc tasks -> metrics, e.g.
    ``{"hellaswag": {"acc,none": 0.5}}``. groups: group -> subtasks, scored as the mean of
    its subtasks. Returns the results file.
    """
    tracker = EvaluationTracker(output_path=str(output_path))
    tracker.general_config_tracker.log_experiment_args(
        model_source=model,
        model_args=model_args,
        system_instruction=None,
        chat_template=None,
        fewshot_as_multiturn=False,
    )
    results: dict[str, dict[str, Any]] = {}
    samples: dict[str, list[dict[str, Any]]] = {}
    for task, values in accs.items():
        task_depths = (depths or {}).get(task) or [
            DEFAULT_DEPTHS[i % len(DEFAULT_DEPTHS)] for i in range(len(values))
        ]
        mean = sum(values) / len(values)
        results[task] = {"alias": task, "acc,none": mean, "acc_stderr,none": 0.01}
        samples[task] = [
            _sample(i, doc(task, i, depth), acc)
            for i, (acc, depth) in enumerate(zip(values, task_depths))
        ]
    for group, subtasks in (groups or {}).items():
        mean = sum(results[t]["acc,none"] for t in subtasks) / len(subtasks)
        results[group] = {"alias": group, "acc,none": mean, "acc_stderr,none": "N/A"}
    for task, metrics in (other or {}).items():
        results[task] = {"alias": task, **metrics}
    tasks = [t for t in results if t not in (groups or {})]
    payload = {
        "results": results,
        "group_subtasks": dict(groups or {}),
        "configs": {t: {"task": t} for t in tasks},
        "versions": {t: 1.0 for t in results},
        "n-shot": {t: 0 for t in tasks},
        "higher_is_better": {t: {"acc": True} for t in results},
        "n-samples": {
            t: {"original": len(accs.get(t, [0])), "effective": len(accs.get(t, [0]))}
            for t in tasks
        },
        "config": {"model": model, "model_args": model_args, "limit": limit},
        "date": date,
    }
    tracker.save_results_aggregated(results=payload, samples=samples if log_samples else None)
    if log_samples:
        for task, task_samples in samples.items():
            tracker.save_results_samples(task_name=task, samples=task_samples)
    folder = Path(output_path) / tracker.general_config_tracker.model_name_sanitized
    return folder / f"results_{tracker.date_id}.json"


def read_results(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _sample(index: int, document: dict[str, Any], acc: float) -> dict[str, Any]:
    prompt = document["input"]
    target = document["outputs"][0]
    return {
        "doc_id": index,
        "doc": document,
        "target": target,
        "arguments": [[prompt, {"until": ["\n"]}]],
        "resps": [["42"]],
        "filtered_resps": ["42"],
        "filter": "none",
        "metrics": ["acc"],
        "doc_hash": hash_string(json.dumps(document)),
        "prompt_hash": hash_string(prompt),
        "target_hash": hash_string(target),
        "acc": acc,
    }
