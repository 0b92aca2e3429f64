"""Refuse a run whose model would cut a prompt: no silent truncation, ever.

Both run once the model exists and before any request:

* ``check_lengths(lm, task_lengths(tasks))``: a model whose ``max_length`` is below a task's
  length would left-truncate every prompt (lm-eval's ``hf`` does, with one log line per
  request) or fail;
* ``guard_requests(lm)``: each request as lm-eval built it (chat template, system instruction,
  few-shot examples included) is measured with the model's own tokenization first.

The run is refused in one line unless truncation is asked for (``--allow_truncation``).
"""

from __future__ import annotations

from lc_tasks.errors import UsageError

__all__ = ["check_lengths", "guard_requests", "task_lengths"]


def task_lengths(tasks: list) -> list[tuple[str, int]]:
    """``(name, length)`` of each of our tasks among lm-eval's task objects."""
    out = []
    for task in tasks:
        kwargs = getattr(getattr(task, "config", None), "dataset_kwargs", None) or {}
        if "family" in kwargs and isinstance(kwargs.get("length"), int):
            out.append((task.config.task, kwargs["length"]))
    return out


def check_lengths(lm, lengths: list[tuple[str, int]], model: str = "the model") -> None:
    """Refuse a run whose model cannot take the full length of a task of ``lengths``
    (``task_lengths``' pairs; see the module docstring)."""
    limit = getattr(lm, "max_length", None)
    if not isinstance(limit, int):
        return
    inner = getattr(lm, "lm", lm)  # CachingLM (--use_cache) wraps the model
    for name, length in lengths:
        if length <= limit:
            continue
        if hasattr(inner, "limit_reason"):  # lc_hf: a limit the user set, or a position table
            raise UsageError(f"{name} needs {length} tokens, but "
                             f"{inner.limit_reason}; run tasks of at most {limit} tokens")
        # lm-eval's API models keep one token of max_length back (their max_length - 1)
        wanted = length + 1 if hasattr(inner, "base_url") else length
        raise UsageError(
            f"{name} needs {length} tokens, but {model}'s max_length is {limit}: "
            "it would cut every longer prompt, and the score would measure the cut, not the "
            f"model. Use --model lc_hf (it never truncates), or --model_args max_length={wanted} "
            "if the model takes that many positions, or --allow_truncation to measure "
            "truncation on purpose")


def guard_requests(lm, model: str = "the model") -> None:
    """Refuse a run in which any request, as lm-eval built it (chat template, system
    instruction, few-shot examples included), would pass the model's ``max_length``.

    lm-eval's ``hf`` left-truncates such a request with one log line and scores the rest;
    here each request method of the model first measures every request it is handed (all of
    one type at once, before any runs) with the model's own tokenization. ``lc_hf``, which never
    truncates and refuses on its own, and models without ``hf``'s tokenization are left alone.
    """
    inner = getattr(lm, "lm", lm)  # CachingLM (--use_cache) wraps the model
    limit = getattr(inner, "max_length", None)
    if (not isinstance(limit, int) or hasattr(inner, "limit_reason")
            or not hasattr(inner, "tok_batch_encode") or not hasattr(inner, "_encode_pair")):
        return
    from lm_eval.models.utils import normalize_gen_kwargs

    def generate_tokens(req) -> tuple[int, int, str]:
        kwargs = normalize_gen_kwargs(dict(req.args[1]), inner.max_gen_toks)
        tokens = inner.tok_batch_encode([req.args[0]])[0].shape[1]
        return tokens, limit - kwargs["max_gen_toks"], f" + {kwargs['max_gen_toks']} to generate"

    def loglikelihood_tokens(req) -> tuple[int, int, str]:
        context, continuation = req.args[:2]
        if not context:  # lm-eval scores it after the end-of-text token
            return 1 + len(inner.tok_encode(continuation)), limit + 1, ""
        context, continuation = inner._encode_pair(context, continuation)
        return len(context) + len(continuation), limit + 1, ""  # hf scores max_length + 1

    for name, measure in (("generate_until", generate_tokens),
                          ("loglikelihood", loglikelihood_tokens)):
        setattr(inner, name, _measured(getattr(inner, name), measure, limit, model))


def _measured(method, measure, limit: int, model: str):
    """``method`` (a model's request method), refusing first any request that would not fit."""
    def run(requests, *args, **kwargs):
        for req in requests:
            tokens, room, extra = measure(req)
            if tokens > room:
                raise UsageError(
                    f"{getattr(req, 'task_name', None) or 'a task'}: a request of {tokens} tokens"
                    f"{extra}, as lm-eval builds it, passes {model}'s max_length={limit}: it would "
                    "be cut from the left, and the score would measure the cut. Use --model lc_hf "
                    "(it never truncates), or --model_args max_length=<more> if the model takes "
                    "that many positions, or --allow_truncation to measure truncation on purpose")
        return method(requests, *args, **kwargs)

    return run
