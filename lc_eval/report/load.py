"""Reading lm-eval's output: results files, their per-sample logs, and the model they ran.

``lm_eval run --output_path OUT`` writes ``OUT/<model_name_sanitized>/results_<date>.json``
and, with ``--log_samples``, ``samples_<task>_<date>.jsonl`` beside it (same ``<date>``).
With ``--output_path out.json`` it writes ``out_<date>.json`` and the samples beside it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# What lc_hf records of a model's state in the results' config (lc_models.footprint).
STATE_KEYS = ("lc_state_bytes", "lc_kv_bytes_per_token")
# Keys every lm-eval results file has besides "results" (see lm_eval.result_schema).
_RESULTS_MARKERS = ("versions", "n-samples", "configs", "config", "group_subtasks")


@dataclass
class Run:
    """One lm-eval results file: what ran, on which model, and where its samples are."""

    path: Path
    date: float  # start of the run, seconds since the epoch (orders runs: newest wins)
    model_name: str  # recorded checkpoint / API model name, e.g. "/ckpt/llama" or "gpt-4o"
    model_source: str  # lm-eval model type: "hf", "lc_hf", "vllm", "openai-completions", ...
    model_args: dict[str, Any]
    results: dict[str, dict[str, Any]]  # task or group -> {"acc,none": 0.5, ...}
    groups: dict[str, list[str]]  # group -> its subtasks
    n_samples: dict[str, int]  # task -> documents scored
    limit: float | None
    gen_kwargs: dict[str, Any] = field(default_factory=dict)  # --gen_kwargs: task overrides
    sample_files: dict[str, Path] = field(default_factory=dict)  # task -> samples_*.jsonl
    # lc_hf's state bytes (``lc_state_bytes``, ``lc_kv_bytes_per_token``), when recorded
    state_info: dict[str, float] = field(default_factory=dict)
    variant: str = ""  # how the prompts were read: "", "query first", "context x2", ...


def find_results_files(run_paths: list[str | Path]) -> list[Path]:
    """Every lm-eval results file named by ``run_paths`` (files, or folders searched deeply).

    A folder is searched for ``results_*.json``; failing that, for any ``*.json`` shaped like
    lm-eval results (``--output_path name.json`` runs). Raises ``ValueError`` with one line
    when a path is missing or holds no results.
    """
    found: list[Path] = []
    for raw in run_paths:
        path = Path(raw)
        if not path.exists():
            raise ValueError(f"{path}: no such file or folder; pass an lm-eval --output_path")
        if path.is_file():
            found.append(path)
            continue
        named = sorted(path.rglob("results_*.json"))
        files = [p for p in named or sorted(path.rglob("*.json")) if _looks_like_results(p)]
        if not files:
            raise ValueError(
                f"{path}: no lm-eval results file (results_*.json) in this folder; pass the "
                "--output_path of an `lm_eval run` / `lc-eval run`"
            )
        found.extend(files)
    # In the order given (it orders the models in the report); a file named twice (a folder
    # and a file inside it) is read once.
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def load_run(path: Path) -> Run:
    """Parse one results file; raises ``ValueError`` (one line) if it is not lm-eval's."""
    data = _read_json(path)
    if not _is_results(data):
        raise ValueError(
            f"{path}: not an lm-eval results file (no 'results' table); pass the "
            "results_<date>.json that `lm_eval run --output_path` wrote"
        )
    config = data.get("config") or {}
    model_args = _parse_model_args(config.get("model_args"))
    model_name = (
        (model_args.get("gguf_file") and _name_from_args(model_args))  # lm-eval names the folder
        or data.get("model_name")
        or _name_from_args(model_args)
        or str(config.get("model") or path.parent.name)
    )
    n_samples = {
        task: int(counts.get("effective", counts.get("original", 0)))
        for task, counts in (data.get("n-samples") or {}).items()
        if isinstance(counts, dict)
    }
    run = Run(
        path=path,
        date=_run_date(data, path),
        model_name=str(model_name),
        model_source=str(data.get("model_source") or config.get("model") or "unknown"),
        model_args=model_args,
        results={k: v for k, v in data["results"].items() if isinstance(v, dict)},
        groups={k: list(v) for k, v in (data.get("group_subtasks") or {}).items()},
        n_samples=n_samples,
        limit=config.get("limit"),
        gen_kwargs=_parse_model_args(config.get("gen_kwargs")),
        state_info={k: float(v) for k, v in config.items() if k in STATE_KEYS
                    and isinstance(v, (int, float)) and not isinstance(v, bool)},
        variant=read_variant(data.get("configs") or {}),
    )
    nans = nan_scores(run.results)
    if nans:
        more = f" (and {len(nans) - 1} more: {', '.join(nans[1:4])})" if len(nans) > 1 else ""
        raise ValueError(f"{path}: {nans[0]} is NaN{more}, a run that failed or scored "
                         "nothing; rerun that task, or leave this results file out")
    run.sample_files = _sample_files(path, set(run.results) | set(data.get("configs") or {}))
    return run


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def nan_scores(results: dict[str, dict[str, Any]]) -> list[str]:
    """``"<task>'s <metric>"`` for every NaN score in a results table (standard errors
    aside: lm-eval records NaN there for one document).

    >>> nan_scores({"lc_vt_1k": {"acc,none": float("nan"), "acc_stderr,none": float("nan")}})
    ["lc_vt_1k's acc,none"]
    """
    return [f"{task}'s {key}" for task, metrics in results.items() for key, value in
            metrics.items() if _is_nan(value) and "_stderr," not in key]


def read_variant(configs: dict[str, Any]) -> str:
    """How a run's prompts were read, from its tasks' metadata (the read-twice options,
    lc_niah_latent's literal control, and a chat template or system instruction).

    >>> read_variant({"lc_passkey_1k": {"metadata": {"query_first": True, "repeat_context": 2}}})
    'query first, context x2'
    >>> read_variant({"lc_niah_latent_1k": {"metadata": {"literal": "true"}}})
    'literal'
    >>> read_variant({"lc_passkey_1k": {"metadata": {"chat_template": True,
    ...                                                "system_instruction": "Be brief."}}})
    'chat template, system instruction'
    >>> read_variant({"lc_passkey_1k": {"metadata": {"version": 1.0}}})
    ''
    """
    for config in configs.values():
        meta = (config or {}).get("metadata") or {} if isinstance(config, dict) else {}
        query_first = str(meta.get("query_first", "")).lower() in ("true", "1")
        try:
            repeat = int(meta.get("repeat_context", 1))
        except (TypeError, ValueError):
            repeat = 1
        literal = str(meta.get("literal", "")).lower() in ("true", "1")  # niah_latent's control
        chat = str(meta.get("chat_template", "")).lower() in ("true", "1")
        system = bool(meta.get("system_instruction"))
        parts = (["query first"] * query_first + [f"context x{repeat}"] * (repeat > 1)
                 + ["literal"] * literal + ["chat template"] * chat
                 + ["system instruction"] * system)
        if parts:
            return ", ".join(parts)
    return ""


def read_samples(path: Path, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per-document records of a ``samples_*.jsonl``: the doc's ``fields`` plus the sample's
    ``filter`` and metric values. Prompts are dropped as each line is read (they can be huge).
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                sample = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_no}: broken JSON line ({e.msg})") from None
            doc = sample.get("doc") or {}
            row = {name: doc.get(name) for name in fields}
            row["filter"] = sample.get("filter", "none")
            for metric in sample.get("metrics") or []:
                row[metric] = sample.get(metric)
                if _is_nan(row[metric]):
                    raise ValueError(f"{path}:{line_no}: document {doc.get('index', '?')}'s "
                                     f"{metric} is NaN, a sample that failed to score; rerun "
                                     "that task, or leave its results out")
            rows.append(row)
    return rows


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file; pass an lm-eval results_*.json") from None


def _is_results(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("results"), dict)
        and any(key in data for key in _RESULTS_MARKERS)
    )


def _looks_like_results(path: Path) -> bool:
    try:
        return _is_results(_read_json(path))
    except ValueError:
        return False


def _parse_model_args(raw: Any) -> dict[str, Any]:
    """lm-eval records model_args (and gen_kwargs) as a dict (CLI) or an ``a=1,b=2`` string
    (Python API)."""
    if isinstance(raw, dict):
        return dict(raw)
    if isinstance(raw, str) and raw.strip():
        pairs = [part.split("=", 1) for part in raw.split(",") if "=" in part]
        return {key.strip(): value.strip() for key, value in pairs}
    return {}


def _name_from_args(model_args: dict[str, Any]) -> str | None:
    """The recorded model name: a GGUF checkpoint is named by its file.

    >>> _name_from_args({"pretrained": "/m/smollm2", "gguf_file": "SmolLM2.Q4_1.gguf"})
    '/m/smollm2/SmolLM2.Q4_1.gguf'
    """
    # lm-eval's own order (GeneralConfigTracker._get_model_name): adapters before bases.
    for key in ("peft", "delta", "pretrained", "model", "path", "engine"):
        if model_args.get(key):
            if key == "pretrained" and model_args.get("gguf_file"):
                return f"{str(model_args[key]).rstrip('/')}/{model_args['gguf_file']}"
            return str(model_args[key])
    return None


def _date_id(path: Path) -> str:
    """The ``<date>`` suffix lm-eval gives a results file and its samples files."""
    return path.stem.rsplit("_", 1)[-1]


def _run_date(data: dict[str, Any], path: Path) -> float:
    if isinstance(data.get("date"), (int, float)):
        return float(data["date"])
    try:  # results_2025-01-31T12-00-00.123456.json
        day, clock = _date_id(path).split("T", 1)
        return datetime.fromisoformat(f"{day}T{clock.replace('-', ':')}").timestamp()
    except ValueError:
        return path.stat().st_mtime


def _sample_files(path: Path, tasks: set[str]) -> dict[str, Path]:
    date = _date_id(path)
    files = {}
    for task in tasks:
        candidate = path.parent / f"samples_{task}_{date}.jsonl"
        if candidate.is_file():
            files[task] = candidate
    return files
