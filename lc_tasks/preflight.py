"""What ``lc-eval run`` checks before it spends time: one clear line for every bad input.

``check_run(args)`` runs right after the command line is parsed, before lm-eval indexes its
tasks or loads a model, with the same validators the tasks and ``lc_hf`` run later (so stock
``lm_eval`` users get the same messages, at the end of lm-eval's traceback):

* task names of ours (``lc_*``): unknown lengths and misspellings, with the closest names;
* ``--metadata`` options (types, ranges, misspelt keys), the haystack source and the QA
  data files;
* the tokenizer that sizes the prompts;
* the checkpoint (``pretrained``): a local path that does not exist, a folder that is not a
  model, a hub id while the hub is offline;
* ``lc_hf``'s model args and generation kwargs.

``check_lengths(lm, tasks)`` runs once the model exists and before any request: a model whose
``max_length`` is below a task's length would left-truncate every prompt (lm-eval's ``hf``
does, with one log line per request) or fail; the run is refused unless truncation is asked for.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import re
from pathlib import Path
from typing import Any

from lc_tasks.errors import UsageError, closest
from lc_tasks.families import FAMILIES, GROUPS, LENGTHS, task_name

_REPO_ID = re.compile(r"^[\w.\-]+/[\w.\-]+$")
_NAME = re.compile(r"^lc_(?P<family>\w+?)_(?P<label>\d+[km])(?:_p(?P<pairs>\d+))?$")


def declared_names(folder: str | Path) -> set[str]:
    """Task, group and tag names declared by the YAML files under ``folder``."""
    names = set()
    for path in Path(folder).rglob("*.yaml"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            found = re.match(r"(?:task|group|tag):\s*['\"]?([\w.\-]+)", line)
            if found:
                names.add(found.group(1))
    return names


def requested(tasks: Any) -> list[str]:
    """lm-eval's ``--tasks`` value as a list of entries (names, globs or YAML paths)."""
    if not tasks:
        return []
    items = tasks.split(",") if isinstance(tasks, str) else [
        t for entry in tasks for t in str(entry).split(",")]
    return [t.strip() for t in items if t.strip()]


def check_task_names(entries: list[str], known: set[str]) -> list[str]:
    """Our task names among ``entries`` (globs expanded); unknown ``lc_*`` names are refused."""
    ours = []
    for entry in entries:
        if entry.endswith(".yaml") or Path(entry).exists() or not entry.startswith("lc_"):
            continue
        if any(c in entry for c in "*?["):
            matched = sorted(fnmatch.filter(known, entry))
            if not matched:
                raise UsageError(f"no lc-eval task matches {entry!r}; list them with "
                                 "`lc-eval tasks`")
            ours += matched
        elif entry in known:
            ours.append(entry)
        elif (unknown_length := _length_hint(entry)) is not None:
            raise UsageError(unknown_length)
        else:
            near = closest(entry, known, n=3, cutoff=0.7)
            hint = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
            raise UsageError(f"unknown task {entry!r}{hint}; lc-eval tasks are "
                             f"lc_<family>_<length> with lengths {' '.join(LENGTHS)}; list them "
                             "with `lc-eval tasks`")
    return ours


def _length_hint(entry: str) -> str | None:
    """The message for a known family at a length we do not have (``lc_passkey_3k``)."""
    found = re.match(r"^lc_(?P<family>\w+?)_(?P<size>\d+)(?P<unit>[km])$", entry)
    if not found or found.group("family") not in [*FAMILIES, *GROUPS]:
        return None
    tokens = int(found.group("size")) * (1024 if found.group("unit") == "k" else 1024**2)
    below = [label for label, n in LENGTHS.items() if n < tokens][-1:]
    above = [label for label, n in LENGTHS.items() if n > tokens][:1]
    near = " or ".join(f"lc_{found.group('family')}_{label}" for label in below + above)
    return (f"unknown task {entry!r}: there is no length {found.group('size')}"
            f"{found.group('unit')}; the lengths are {' '.join(LENGTHS)} (e.g. {near})")


def family_lengths(names: list[str]) -> list[tuple[str, int]]:
    """(family, length) of each of our task names; a suite group stands for all its families,
    a kvrecall pair-sweep task (``lc_kvrecall_4k_p016``) for its family."""
    out = []
    for name in names:
        found = _NAME.match(name)
        if not found or found.group("label") not in LENGTHS:
            continue
        family, length = found.group("family"), LENGTHS[found.group("label")]
        if family in GROUPS:
            out += [(f, length) for f in GROUPS[family]]
        elif family in FAMILIES:
            out.append((family, length))
    return out


def check_pretrained(value: Any) -> None:
    """A checkpoint that cannot be loaded is refused before anything starts."""
    if not isinstance(value, str) or not value:
        return
    from lc_tasks.tokenizer import local_path

    path = Path(local_path(value)).expanduser()
    if path.exists():
        if path.is_dir() and not any(path.glob("config.json")) and not any(path.glob("*.pth")):
            raise UsageError(f"pretrained={value!r} is a folder but not a model (no config.json "
                             "or .pth in it); pass a checkpoint folder, a .pth file or a hub id")
        return
    if not _REPO_ID.match(value):
        raise UsageError(f"pretrained={value!r}: no such file or folder; pass an existing "
                         "checkpoint path or a hub id (<org>/<name>)")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(value, "config.json"), str):
            raise UsageError(f"pretrained={value!r} is not a local path, and the hub is offline "
                             "(HF_HUB_OFFLINE=1) with no cached copy of it; download it first or "
                             "pass a local folder")


def check_run(args, include_paths: list[str]) -> list[str]:
    """All the cheap checks of an ``lc-eval run`` (see the module docstring); returns the
    names of our tasks in it."""
    from lm_eval.config.evaluate_config import EvaluatorConfig

    try:
        cfg = EvaluatorConfig.from_cli(copy.copy(args))
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    known = set().union(*(declared_names(p) for p in include_paths))
    ours = check_task_names(requested(cfg.tasks), known)
    model_args = dict(cfg.model_args or {})
    if cfg.model == "lc_hf":
        from lc_models.args import check_gen_kwargs, check_model_args

        explicit = {"device": args.device} if getattr(args, "device", None) else {}
        check_model_args({**model_args, "batch_size": cfg.batch_size, **explicit})
        if cfg.gen_kwargs:
            check_gen_kwargs(cfg.gen_kwargs)
    check_pretrained(model_args.get("pretrained"))
    pairs = family_lengths(ours)
    if not pairs:
        return ours
    from lc_tasks import qa_data
    from lc_tasks.haystack import load_text
    from lc_tasks.options import seed_option, task_spec
    from lc_tasks.tokenizer import resolve_tokenizer

    metadata = dict(cfg.metadata or {})
    for family, length in sorted(set(pairs)):
        spec = task_spec(family, length, **metadata)
        if spec.info.kind == "qa":  # its data file must be given, and readable
            dataset = spec.info.params["dataset"]
            if not spec.qa_source:
                raise qa_data.missing(dataset, task_name(family, length))
            qa_data.load(dataset, spec.qa_source)
    seed_option(metadata)
    source = metadata.get("haystack")
    if isinstance(source, str) and source not in ("noise", "prose") and not source.startswith(
            "hf:"):  # an hf: dataset is checked when it is loaded (it may need a download)
        load_text(source)
    resolve_tokenizer(metadata, ours[0])
    return ours


def check_lengths(lm, tasks: list, model: str = "the model", allow_truncation: bool = False):
    """Refuse a run whose model cannot take a task's full length (see the module docstring)."""
    limit = getattr(lm, "max_length", None)
    if not isinstance(limit, int) or allow_truncation:
        return
    inner = getattr(lm, "lm", lm)  # CachingLM (--use_cache) wraps the model
    for task in tasks:
        kwargs = getattr(task.config, "dataset_kwargs", None) or {}
        length = kwargs.get("length") if "family" in kwargs else None
        if not isinstance(length, int) or length <= limit:
            continue
        if hasattr(inner, "limit_reason"):  # lc_hf: a limit the user set, or a position table
            raise UsageError(f"{task.config.task} needs {length} tokens, but "
                             f"{inner.limit_reason}; run tasks of at most {limit} tokens")
        raise UsageError(
            f"{task.config.task} needs {length} tokens, but {model}'s max_length is {limit}: "
            "it would cut every longer prompt, and the score would measure the cut, not the "
            f"model. Use --model lc_hf (it never truncates), or --model_args max_length={length} "
            "if the model takes that many positions, or --allow_truncation to measure "
            "truncation on purpose")
