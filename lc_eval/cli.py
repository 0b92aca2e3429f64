"""The ``lc-eval`` command: lm-eval's own CLI with the plugin loaded.

``lc-eval`` accepts every lm-eval subcommand and flag (``run``, ``ls``,
``validate`` and the bare form without ``run``) and hands them to lm-eval's
parser unchanged. On top of that it

* registers our models (``lc_hf``, ...) in lm-eval's registry,
* adds our task folder to ``--include_path`` (a user's own path still works
  and wins on name clashes, since it is scanned after ours),
* adds our own subcommands, listed in ``SUBCOMMANDS``,
* checks a ``run`` before it starts (``lc_eval.preflight``) and refuses one whose model
  would truncate our tasks (``--allow_truncation`` to measure that on purpose),
* indexes only our task folders when every task asked for is there (seconds instead of
  lm-eval's half-minute index of all its tasks), and with ``--limit N`` has our tasks build
  only the N docs that run,
* ends with a family x length table of our tasks, lengths in numeric order (lm-eval's table
  sorts them as strings),
* writes the results JSON atomically (a temporary file renamed into place), so that a run
  killed while saving never leaves a half-written file for ``lc-eval report`` to read,
* ends every user error with one line, ``lc-eval: error: ...``, and exit status 2, without
  a traceback (``--traceback`` or ``LC_EVAL_TRACEBACK=1`` shows it, for bug reports).

Data-parallel runs work the same way: ``accelerate launch -m lc_eval run ...``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from lc_tasks.errors import UsageError

# Modules that add an lc-eval subcommand. Each exposes
# ``add_subcommand(subparsers)``, which adds a parser whose default ``func``
# takes the parsed namespace.
SUBCOMMANDS: list[str] = [
    "lc_eval.tasks_cli",
    "lc_eval.report.cli",
    "lc_eval.zoo_cli",
]
HELP = ("lm-evaluation-harness with the lc-eval plugin loaded: length-sweeping long-context "
        "tasks lc_<family>_<length> (1k .. 1m tokens of the model's own tokenizer) and the lc_hf "
        "model, which runs any HF causal LM at any input length, exactly, in chunks.")
EPILOG = """examples:
  lc-eval tasks                                  # our task families, lengths and groups
  lc-eval zoo                                    # the bundled tiny models
  lc-eval run --model lc_hf --model_args pretrained=tiny-mamba2 \\
      --tasks 'lc_passkey_*' --limit 6 --output_path runs/tiny-mamba2
  lc-eval report runs --out report               # tables and figures of the runs

Every lm-eval subcommand and flag works unchanged (lc-eval run --help lists them).
"""


def _with_our_tasks(user_path: str | list[str] | None) -> list[str]:
    """Our task folder first, then whatever the user passed."""
    from lc_tasks import include_path

    if user_path is None:
        extra: list[str] = []
    elif isinstance(user_path, (list, tuple)):
        extra = [str(p) for p in user_path]
    else:
        extra = [str(user_path)]
    return [include_path(), *extra]


def build_cli():
    """lm-eval's ``HarnessCLI`` with our subcommands added and named ``lc-eval``."""
    from lm_eval._cli import HarnessCLI

    cli = HarnessCLI()
    for module in SUBCOMMANDS:
        importlib.import_module(module).add_subcommand(cli._subparsers)
    cli._parser.prog = "lc-eval"
    cli._parser.description = HELP
    cli._parser.epilog = EPILOG
    run = cli._subparsers.choices["run"]
    run.add_argument("--allow_truncation", action="store_true",
                     help="lc-eval: run even if the model would truncate a task's prompts")
    run.add_argument("--traceback", action="store_true",
                     help="lc-eval: show the traceback of an error (also LC_EVAL_TRACEBACK=1)")
    for action in run._actions:
        if "--seed" in action.option_strings:
            action.type = _seed_type(action.type)
    for parser in cli._subparsers.choices.values():
        parser.prog = parser.prog.replace("lm-eval", "lc-eval", 1)
    return cli


def _seed_type(parse):
    """lm-eval's ``--seed`` parser, whose error would name ``functools.partial(...)``."""
    import argparse

    def seed(text: str):
        try:
            return parse(text)
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a seed; give one integer, or four comma-separated ones "
                "(python,numpy,torch,fewshot; None leaves one unset), e.g. --seed 1234"
            ) from None

    return seed


def _light_task_index(entries: list[str], include_paths: list[str]) -> None:
    """Make lm-eval index only ``include_paths`` when every task entry is found there."""
    import lm_eval.tasks

    full = lm_eval.tasks.TaskManager

    def task_manager(include_path=None, include_defaults=True, metadata=None, **kwargs):
        if include_defaults and entries and all(not e.endswith(".yaml") for e in entries):
            light = full(include_path=include_path, include_defaults=False, metadata=metadata,
                         **kwargs)
            if all(light.match_tasks([e]) for e in entries):
                return light
        return full(include_path=include_path, include_defaults=include_defaults,
                    metadata=metadata, **kwargs)

    lm_eval.tasks.TaskManager = task_manager


def _guard_lengths(model: str, allow_truncation: bool, model_args: dict | None = None,
                   chat: bool = False) -> None:
    """Check the model against the tasks' lengths once both exist, before any request (a
    served model first: its server's context, a probe request, chat prompts rendered as
    ``lc_hf`` reads them, ``lc_eval.served``)."""
    import lm_eval.evaluator

    from lc_eval.served import prepare
    from lc_eval.truncation import check_lengths, guard_requests, task_lengths

    evaluate = lm_eval.evaluator.evaluate

    def guarded(lm, task_dict, *args, **kwargs):
        if "tasks" in task_dict:
            tasks = task_dict["tasks"]
        else:  # the older nested form
            _, tasks = lm_eval.evaluator._handle_back_comp(task_dict)
        lengths = task_lengths(list(tasks.values()))
        prepare(lm, lengths, chat, dict(model_args or {}), model)
        if not allow_truncation:
            check_lengths(lm, lengths, model)
            guard_requests(lm, model)
        return evaluate(lm, task_dict, *args, **kwargs)

    lm_eval.evaluator.evaluate = guarded


def _atomic_results() -> None:
    """lm-eval's results file, written to a temporary file and renamed into place."""
    import pathlib

    from lm_eval.loggers.evaluation_tracker import EvaluationTracker

    save = EvaluationTracker.save_results_aggregated

    def atomic_write_text(path, data, *args, **kwargs):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        plain_write_text(tmp, data, *args, **kwargs)
        os.replace(tmp, path)  # atomic on POSIX and Windows

    def save_atomically(self, *args, **kwargs):
        pathlib.Path.write_text = atomic_write_text
        try:
            return save(self, *args, **kwargs)
        finally:
            pathlib.Path.write_text = plain_write_text

    plain_write_text = pathlib.Path.write_text
    EvaluationTracker.save_results_aggregated = save_atomically


def _build_only_what_runs(args) -> None:
    """``--limit N`` (a count) becomes ``num_samples=N`` for our tasks, so that they build only
    the docs that run (doc i is the same whatever the count); lm-eval keeps its own limit."""
    if not args.limit or args.limit < 1:
        return  # no limit, or a fraction of the docs: all of them are built
    metadata = dict(args.metadata or {})
    asked = metadata.get("num_samples")
    wanted = int(args.limit)
    if asked is None or int(asked) > wanted:
        metadata["num_samples"] = wanted
        args.metadata = metadata


def _size_for_chat(args) -> None:
    """``--apply_chat_template`` and ``--system_instruction`` reach our tasks as the options
    ``chat_template`` and ``system_instruction``, so that they size each prompt as the model
    will read it (``lc_tasks.chat``). Stock ``lm_eval`` users pass them with ``--metadata``."""
    metadata = dict(args.metadata or {})
    if getattr(args, "apply_chat_template", False):
        metadata.setdefault("chat_template", True)
    if getattr(args, "system_instruction", None):
        metadata.setdefault("system_instruction", args.system_instruction)
    if metadata:
        args.metadata = metadata


def _keep_results(kept: list) -> None:
    """Keep the results lm-eval's run computes, for the table printed after it."""
    import lm_eval

    evaluate = lm_eval.simple_evaluate

    def keeping(*args, **kwargs):
        results = evaluate(*args, **kwargs)
        kept.append(results)
        return results

    lm_eval.simple_evaluate = keeping


def _prepare_run(args, kept: list) -> None:
    from lc_eval.preflight import check_run, family_lengths, locate_checkpoint, requested
    from lc_eval.served import check_model

    allow = args.__dict__.pop("allow_truncation", False) or os.environ.get(
        "LC_EVAL_ALLOW_TRUNCATION", "").strip().lower() in ("1", "true")
    if requested(args.tasks):  # before the checks, which build a task spec from the metadata
        _size_for_chat(args)
    args.model_args = locate_checkpoint(args.model_args)
    ours = check_run(args, args.include_path)
    chat = bool(getattr(args, "apply_chat_template", False))
    if isinstance(args.model_args, dict):
        args.model_args = check_model(args.model, args.model_args, chat,
                                      family_lengths(ours))
    if ours:
        _build_only_what_runs(args)
    _light_task_index(requested(args.tasks), args.include_path)
    _guard_lengths(args.model or "hf", allow, args.model_args, chat)
    _atomic_results()
    _keep_results(kept)


# lm-eval's own errors for user input found deep in a run -> the fix to add to their first line
LM_EVAL_ERRORS: tuple[tuple[type, str, str], ...] = (
    (ValueError, r"^Tasks not found: ",
     "list lm-eval's tasks with `lc-eval ls tasks`, ours with `lc-eval tasks`"),
    (TypeError, r"\(\) got an unexpected keyword argument '\w+'",
     "the model does not take that --model_args key; remove it"),
    (ValueError, r"^Hugging Face token is not defined",
     "set HF_TOKEN, or drop push_results_to_hub and push_samples_to_hub from --hf_hub_log_args"),
)


def _translated(err: Exception) -> UsageError | None:
    """One of ``LM_EVAL_ERRORS`` as a UsageError with its fix, else None."""
    import re

    first = (str(err).strip().splitlines() or [""])[0]
    for kind, pattern, fix in LM_EVAL_ERRORS:
        if isinstance(err, kind) and re.search(pattern, first):
            return UsageError(f"{first.rstrip('.')}; {fix}")
    return None


def _show_traceback(argv: list[str]) -> bool:
    return "--traceback" in argv or os.environ.get("LC_EVAL_TRACEBACK", "").strip().lower() in (
        "1", "true")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``lc-eval`` console script."""
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    show = _show_traceback(sys.argv)
    try:
        _main()
    except UsageError as err:
        if show:
            raise
        _close_progress_bars()  # so that the message, not a bar, is the last line
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"lc-eval: error: {message}", file=sys.stderr)  # one line, whatever the message
        raise SystemExit(2) from None
    except SystemExit as err:  # a subcommand's one-line exit (lc-eval report: ...)
        if isinstance(err.code, str):
            _close_progress_bars()
        raise


def _close_progress_bars() -> None:
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def _main() -> None:
    from lm_eval.utils import setup_logging

    setup_logging()
    cli = build_cli()
    try:
        args = cli.parse_args()
    except ValueError as err:  # lm-eval's dict-valued flags parse inside argparse actions
        raise UsageError(f"cannot read the command line: {err}") from None
    args.__dict__.pop("traceback", None)
    if "include_path" in vars(args):
        args.include_path = _with_our_tasks(args.include_path)
    kept: list = []
    if getattr(args, "command", None) == "run":
        _prepare_run(args, kept)
    try:
        cli.execute(args)
    except (ValueError, TypeError) as err:
        usage = None if isinstance(err, UsageError) else _translated(err)
        if usage is None:
            raise
        raise usage from err
    _leave_process_group()
    if kept and kept[0]:  # rank 0 gets the results; the others None
        from lc_eval.summary import summary_tables

        table = summary_tables(kept[0])
        if table:
            print(f"\nlc-eval: our tasks by length, in numeric order\n{table}")


def _leave_process_group() -> None:
    """End a data-parallel run (``accelerate launch``) with every rank leaving torch's process
    group together: a rank that exits while gloo's threads still serve the group can be
    aborted ("terminate called without an active exception"), failing a finished run."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
