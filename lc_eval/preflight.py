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
* ``lc_hf``'s model args and generation kwargs;
* what lm-eval would fail on deep inside a run: ``--model``, a model arg given twice
  (``device=`` beside ``--device``), ``--num_fewshot`` on our zero-shot tasks, an empty
  ``--tasks``, ``--limit``, ``--samples``, ``--verbosity``, the folders of ``--output_path``,
  ``--use_cache`` and ``--include_path``, and the ``LC_EVAL_*`` environment variables; a task
  asked for beside a group that holds it runs once, in the group (``run_once``).

Once the model exists, ``lc_eval.truncation`` refuses a model that would cut a prompt.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import re
from pathlib import Path
from typing import Any

from lc_tasks.errors import UsageError, closest, suggest
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


# Flags lm-eval hands every model's constructor beside --model_args (simple_evaluate's
# additional_config): the same name in --model_args too is a TypeError inside lm-eval.
MODEL_FLAGS = ("batch_size", "max_batch_size", "device")


def check_given_once(args) -> None:
    """Refuse a model argument given both in ``--model_args`` and as lm-eval's own flag
    (``device=cpu`` beside ``--device cpu``); one given only in ``--model_args`` moves to the
    flag, which is how lm-eval hands it to the model (lm-eval always passes ``--device`` and
    ``--batch_size``, their defaults included, so the model arg alone is a clash too)."""
    model_args = getattr(args, "model_args", None)
    if not isinstance(model_args, dict):
        return
    for name in MODEL_FLAGS:
        if name not in model_args:
            continue
        value, flag = model_args[name], vars(args).get(name)
        if flag is not None:
            raise UsageError(f"{name} is given twice, --model_args {name}={value} and --{name} "
                             f"{flag}; pass it once, as --{name} {value}")
        args.model_args = model_args = {k: v for k, v in model_args.items() if k != name}
        setattr(args, name, value if name == "max_batch_size" else str(value))


def check_task_list(entries: list[str], tasks: Any) -> None:
    """An empty ``--tasks`` (``''``, ``,``) is refused before lm-eval fails on it."""
    if not entries:
        text = tasks if isinstance(tasks, str) else ",".join(map(str, tasks or []))
        raise UsageError(f"--tasks {text!r} names no task; pass one or more task names or "
                         "globs, e.g. --tasks lc_passkey_1k,lc_vt_1k (`lc-eval tasks` lists ours)")


def check_fewshot(num_fewshot: Any, ours: list[str]) -> None:
    """Our tasks are zero-shot: a doc is a whole long prompt and there is no split to draw
    examples from (lm-eval would fail deep inside with "Sample larger than population")."""
    if num_fewshot is None or num_fewshot == 0:
        return
    if num_fewshot < 0:
        raise UsageError(f"--num_fewshot {num_fewshot} must be 0 or more")
    if ours:
        raise UsageError(f"--num_fewshot {num_fewshot}: lc-eval tasks ({ours[0]}) are zero-shot, "
                         "each doc a whole prompt of its length; drop --num_fewshot, or run "
                         "few-shot tasks in a separate run")


def group_members(folders: list[str | Path]) -> dict[str, tuple[str, ...]]:
    """Group name -> the task names it lists, from the group YAML files under ``folders``."""
    import yaml

    groups: dict[str, tuple[str, ...]] = {}
    for folder in folders:
        for path in Path(folder).rglob("*.yaml"):
            text = path.read_text(encoding="utf-8", errors="replace")
            if not re.search(r"^group:", text, re.MULTILINE):
                continue
            try:
                config = yaml.safe_load(text)
            except yaml.YAMLError:  # a tag of lm-eval's loader: not one of our plain groups
                continue
            if isinstance(config, dict) and isinstance(config.get("task"), list):
                groups[str(config["group"])] = tuple(
                    t for t in config["task"] if isinstance(t, str))
    return groups


def run_once(entries: list[str], known: set[str], groups: dict[str, tuple[str, ...]]
             ) -> list[str]:
    """The task selection with each task once: a task asked for beside a group that holds it
    (``lc_niah_single_1k,lc_suite_1k``, or a glob matching both) runs once, in the group;
    lm-eval would refuse the selection ("Duplicate task"). Two groups that share tasks are
    refused in one line. Returns ``entries`` itself when nothing repeats."""
    picked: dict[str, str] = {}  # name -> the entry that asked for it
    count = 0
    for entry in entries:
        names = [entry]
        if entry.startswith("lc_") and any(c in entry for c in "*?["):
            names = sorted(fnmatch.filter(known, entry))
        count += len(names)
        for name in names:
            picked.setdefault(name, entry)
    chosen = [g for g in picked if g in groups]
    for i, first in enumerate(chosen):
        for second in chosen[i + 1:]:
            shared = sorted(set(groups[first]) & set(groups[second]))
            if shared:
                asked = {picked[first], picked[second]}
                how = (f"{asked.pop()!r} selects both" if len(asked) == 1 else "the selection "
                       "holds both")
                raise UsageError(
                    f"{how} {first} and {second}, which share {len(shared)} tasks (e.g. "
                    f"{shared[0]}), and lm-eval runs a task once per run: ask for one of the "
                    "two groups, or run them separately")
    covered = {task: group for group in chosen for task in groups[group]}
    out = [name for name in picked if name not in covered]
    if len(out) == count:
        return entries
    dropped = [name for name in picked if name in covered]
    if dropped:
        import logging

        logging.getLogger("lm_eval.lc_tasks").info(
            "lc-eval: %s asked for beside %s, which holds it; it runs once, in the group",
            ", ".join(dropped), ", ".join(sorted({covered[n] for n in dropped})))
    return out


def check_limit(limit: Any) -> None:
    """``--limit``: a count of docs (1, 2, ...) or a fraction of them in (0, 1)."""
    if limit is None:
        return
    if not limit > 0 or (limit > 1 and limit != int(limit)):
        raise UsageError(f"--limit {limit:g} is neither a count of docs (1, 2, ...) nor a "
                         "fraction of them in (0, 1); pass e.g. --limit 10 or --limit 0.5")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def check_verbosity(verbosity: Any) -> None:
    """``--verbosity``: one of Python's log levels (lm-eval fails on another after indexing)."""
    if verbosity is not None and str(verbosity).upper() not in LOG_LEVELS:
        raise UsageError(f"--verbosity {verbosity}: not a log level; pass one of "
                         f"{', '.join(LOG_LEVELS)}")


def _file_in_the_way(path: Path) -> Path | None:
    """The file at ``path`` or above it that keeps a folder from being made there, if any."""
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    return existing if existing is not None and not existing.is_dir() else None


def check_paths(output_path: Any, use_cache: Any, include_paths: list[str]) -> None:
    """Paths lm-eval writes to can be written, and ``--include_path`` folders exist, before a
    run spends time (lm-eval would fail after the run, or skip the folder silently)."""
    if output_path:
        path = Path(str(output_path)).expanduser()
        folder = path.parent if path.suffix == ".json" else path
        if (blocker := _file_in_the_way(folder)) is not None:
            raise UsageError(f"--output_path {output_path}: {blocker} is a file, so the results "
                             "cannot be written there; pass a folder (or a .json file in one)")
    if use_cache:
        path = Path(str(use_cache)).expanduser()
        if (blocker := _file_in_the_way(path.parent)) is not None:
            raise UsageError(f"--use_cache {use_cache}: {blocker} is a file, so the cache "
                             "cannot be made there; pass a path in a folder")
    for folder in include_paths[1:]:  # ours first, then the user's
        if not Path(folder).expanduser().exists():
            raise UsageError(f"--include_path {folder}: no such folder; pass a folder of task "
                             "YAML files")


def check_samples(samples: Any, ours: list[str], metadata: dict) -> None:
    """``--samples``: the doc indices asked of our tasks exist (a task has ``num_samples``
    docs; lm-eval would stop on an assert after building them)."""
    if not isinstance(samples, dict):
        return
    from lc_tasks.options import task_spec

    for name in ours:
        found = _NAME.match(name)
        if name not in samples or not found or found.group("family") not in FAMILIES:
            continue
        count = task_spec(found.group("family"), LENGTHS[found.group("label")],
                          **metadata).num_samples
        indices = samples[name]
        bad = [i for i in (indices if isinstance(indices, list) else [indices])
               if not isinstance(i, int) or not 0 <= i < count]
        if bad:
            raise UsageError(f"--samples {name}: index {bad[0]!r} is not a doc of it; it has "
                             f"{count} docs (0 .. {count - 1}), set by --metadata num_samples")


# lc_hf's own model args, which --model hf would pass on to from_pretrained (a TypeError there)
LC_HF_ONLY = ("chunk_size", "verify")


def check_model_name(model: Any, model_args: dict) -> None:
    """``--model`` is one lm-eval has, and ``hf`` gets no lc_hf-only model arg."""
    from lm_eval.api.registry import model_registry

    if len(model_registry) == 0:
        import lm_eval.models  # noqa: F401  (lm-eval registers its models lazily)
    names = list(model_registry.keys())
    if model and model not in names:
        hint = suggest(str(model), names) or " (lc-eval's is lc_hf)"
        raise UsageError(f"--model {model!r} is not a model lm-eval knows{hint}; pass e.g. "
                         "--model lc_hf")
    if model in ("hf", "huggingface"):
        for name in LC_HF_ONLY:
            if name in model_args:
                raise UsageError(f"--model_args {name}={model_args[name]} is an lc_hf model arg, "
                                 f"which --model {model} does not take; use --model lc_hf, or "
                                 f"drop {name}")


def read_samples(value: Any) -> Any:
    """``--samples`` as lm-eval takes it: a JSON object of task -> doc indices, given inline or
    as the path of a JSON file (lm-eval would fail later on anything else, or name no flag)."""
    import json

    data = value
    if isinstance(value, str):
        path = Path(value).expanduser()
        try:
            data = json.loads(path.read_text(encoding="utf-8") if path.is_file() else value)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            what = "a JSON file" if path.is_file() else "JSON, nor a file"
            raise UsageError(f"--samples {value}: not {what} ({err}); pass a JSON object of task "
                             "-> doc indices, e.g. '{\"lc_passkey_1k\": [0, 1]}', or its file"
                             ) from None
    if not isinstance(data, dict):
        raise UsageError(f"--samples {value}: a {type(data).__name__}, not a JSON object of "
                         "task -> doc indices, e.g. '{\"lc_passkey_1k\": [0, 1]}'")
    return data


# lm-eval's logging flags -> the package each needs (lm-eval fails on a missing one mid-run)
LOGGERS = {"wandb_args": "wandb", "trackio_args": "trackio"}


def check_loggers(cfg) -> None:
    """``--wandb_args`` / ``--trackio_args`` need their package installed."""
    import importlib.util

    for flag, package in LOGGERS.items():
        if getattr(cfg, flag, None) and importlib.util.find_spec(package) is None:
            raise UsageError(f"--{flag} needs the {package} package, which is not installed: "
                             f"pip install {package}, or drop --{flag}")


# Switches lc-eval reads from the environment -> (the values they take, what 0 and 1 do).
# Any other value would be read as one of them silently (LC_EVAL_NATIVE=off means "on").
SWITCHES: dict[str, tuple[tuple[str, ...], str]] = {
    "LC_EVAL_NATIVE": (("0", "1"), "0 uses the torch path instead of the compiled kernels"),
    "LC_EVAL_MALLOPT": (("0", "1"), "0 keeps glibc's malloc thresholds"),
    "LC_EVAL_ONEDNN": (("0", "1"), "0 or 1 turns oneDNN's linear off or on (unset: by CPU)"),
    "LC_EVAL_TRACEBACK": (("0", "1", "true", "false"), "1 shows the traceback of an error"),
    "LC_EVAL_ALLOW_TRUNCATION": (("0", "1", "true", "false"),
                                 "1 runs even if the model would truncate prompts"),
}


def check_environment(environ: dict[str, str] | None = None) -> None:
    """The ``LC_EVAL_*`` variables hold values lc-eval reads (see ``SWITCHES``), and
    ``LC_EVAL_CACHE`` names a folder (``lc_tasks.doc_cache.cache_root``)."""
    from lc_tasks.doc_cache import cache_root

    environ = os.environ if environ is None else environ
    for name, (values, meaning) in SWITCHES.items():
        value = environ.get(name, "")
        if value and value.strip().lower() not in values:
            raise UsageError(f"{name}={value!r} is not one of {', '.join(values)}: {meaning}; "
                             f"set one of those, or unset {name}")
    cache_root(environ.get("LC_EVAL_CACHE", ""))


def locate_checkpoint(model_args: dict | None) -> dict | None:
    """Model args with ``pretrained`` as every lm-eval model loads it: a short name of lc-eval's
    zoo (``tiny-llama``, ``smollm2-135m-instruct``) becomes its path, a ``.gguf`` path its folder
    plus ``gguf_file`` (stock ``hf`` takes only that form)."""
    pretrained = (model_args or {}).get("pretrained")
    if not isinstance(pretrained, str) or not pretrained:
        return model_args
    from lc_tasks.tokenizer import checkpoint_location

    folder, gguf_file = checkpoint_location(pretrained, model_args.get("gguf_file") or None)
    located = {**model_args, "pretrained": folder}
    if gguf_file:
        located["gguf_file"] = gguf_file
    return located


def check_pretrained(value: Any, gguf_file: Any = None) -> None:
    """A checkpoint that cannot be loaded is refused before anything starts."""
    if not isinstance(value, str) or not value:
        return
    from lc_tasks.tokenizer import checkpoint_location

    folder, gguf_file = checkpoint_location(value, gguf_file or None)
    path = Path(folder).expanduser()
    if gguf_file and path.exists():
        if not path.is_dir() or not (path / gguf_file).is_file():
            found = sorted(p.name for p in path.glob("*.gguf")) if path.is_dir() else []
            raise UsageError(f"gguf_file={gguf_file!r}: no such file in {folder} (its GGUF files: "
                             f"{', '.join(found[:5]) or 'none'}); pass pretrained=<folder>,"
                             "gguf_file=<a file in it>, or pretrained=<path of the .gguf file>")
        return
    if path.exists():
        if path.is_dir() and not any(path.glob("config.json")) and not any(path.glob("*.pth")):
            found = sorted(p.name for p in path.glob("*.gguf"))
            if found:
                raise UsageError(f"pretrained={value!r} holds GGUF files ({', '.join(found[:5])}) "
                                 "but no config.json; name one with gguf_file=<name>, or pass "
                                 "pretrained=<path of the .gguf file>")
            raise UsageError(f"pretrained={value!r} is a folder but not a model (no config.json "
                             "or .pth in it); pass a checkpoint folder, a .pth or .gguf file or a "
                             "hub id")
        return
    if not _REPO_ID.match(value):
        raise UsageError(f"pretrained={value!r}: no such file or folder; pass an existing "
                         "checkpoint path or a hub id (<org>/<name>)")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(value, gguf_file or "config.json"), str):
            raise UsageError(f"pretrained={value!r} is not a local path, and the hub is offline "
                             "(HF_HUB_OFFLINE=1) with no cached copy of it; download it first or "
                             "pass a local folder")


def check_run(args, include_paths: list[str]) -> list[str]:
    """All the cheap checks of an ``lc-eval run`` (see the module docstring); returns the
    names of our tasks in it."""
    from lm_eval.config.evaluate_config import EvaluatorConfig

    check_environment()
    check_given_once(args)
    if getattr(args, "samples", None) is not None:
        args.samples = read_samples(args.samples)
    try:
        cfg = EvaluatorConfig.from_cli(copy.copy(args))
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    known = set().union(*(declared_names(p) for p in include_paths))
    entries = requested(cfg.tasks)
    check_task_list(entries, cfg.tasks)
    ours = check_task_names(entries, known)
    check_fewshot(cfg.num_fewshot, ours)
    check_limit(cfg.limit)
    check_verbosity(cfg.verbosity)
    check_loggers(cfg)
    check_paths(cfg.output_path, cfg.use_cache, include_paths)
    if ours and (selection := run_once(entries, known, group_members(include_paths))
                 ) is not entries:
        args.tasks = selection
        ours = check_task_names(selection, known)
    check_samples(cfg.samples, ours, dict(cfg.metadata or {}))
    model_args = dict(cfg.model_args or {})
    check_model_name(cfg.model, model_args)
    if cfg.model == "lc_hf":
        from lc_models.args import check_gen_kwargs, check_model_args

        explicit = {"device": args.device} if getattr(args, "device", None) else {}
        check_model_args({**model_args, "batch_size": cfg.batch_size, **explicit})
        if cfg.gen_kwargs:
            check_gen_kwargs(cfg.gen_kwargs)
    check_pretrained(model_args.get("pretrained"), model_args.get("gguf_file"))
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
