"""HTTP failures during a served run, each ended in one line (``lc_eval.served``).

lm-eval's API models retry a failed request (tenacity) and end in a traceback from requests or
aiohttp that hides the server's own words: lm-eval logs them as a warning before each retry
(read here; where a log level hides those, the exception's own response body is read).
``one_line_failures`` wraps a model's request methods so that such a failure ends the run with
one :class:`UsageError` that quotes the server: a context error (``server.context_in_error``)
names the task's length and the server's context, anything else the server's message.
"""

from __future__ import annotations

import logging

from lc_eval import server as http
from lc_tasks.errors import UsageError

__all__ = ["RESTART", "one_line_failures"]

RESTART = ("start the server with a longer context (vLLM --max-model-len, sglang "
           "--context-length, llama.cpp -c/--n_ctx, TGI --max-total-tokens)")


class _Failures(logging.Handler):
    """The texts of the API request failures lm-eval logs before it retries."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.texts: list[str] = []

    def emit(self, record):
        message = record.getMessage()
        if "API request failed" in message:
            self.texts.append(message)


def one_line_failures(inner, server: http.Server, lengths: list[tuple[str, int]]) -> None:
    """Each request method of ``inner`` ends an HTTP failure in one line."""
    failures = _Failures()
    logging.getLogger("lm_eval.models.api_models").addHandler(failures)

    def guarded(method):
        def run(requests, *args, **kwargs):
            failures.texts.clear()
            try:
                return method(requests, *args, **kwargs)
            except UsageError:
                raise
            except Exception as err:
                if not failures.texts and not _network_error(err):
                    raise
                body = getattr(getattr(err, "response", None), "text", None)  # requests'
                said = (_server_text(failures.texts[-1]) if failures.texts
                        else _server_text(body) if isinstance(body, str) and body
                        else f"{type(err).__name__}: {err}")
                _quiet_abandoned_tasks()
                raise _failure(said, server, requests, lengths) from err
        return run

    for name in ("generate_until", "loglikelihood", "loglikelihood_rolling"):
        setattr(inner, name, guarded(getattr(inner, name)))


def _server_text(logged: str) -> str:
    """The server's own message inside lm-eval's log line of a failed request."""
    import json

    start, end = logged.find("{"), logged.rfind("}")
    if 0 <= start < end:
        try:
            body = json.loads(logged[start:end + 1])
        except json.JSONDecodeError:
            body = None
        if body is not None:
            return http.Reply(400, body, logged[start:end + 1]).message(240)
    return logged


def _quiet_abandoned_tasks() -> None:
    """With ``num_concurrent`` > 1 a failed run leaves aiohttp requests that asyncio reports
    when they are collected ("Task exception was never retrieved", with a traceback) after
    our one line; they are collected now, with that report dropped."""
    import gc

    def drop(record: logging.LogRecord) -> bool:
        return "exception was never retrieved" not in record.getMessage()

    logging.getLogger("asyncio").addFilter(drop)
    gc.collect()


def _network_error(err: Exception) -> bool:
    names = {c.__module__.split(".")[0] for c in type(err).__mro__}
    return bool(names & {"requests", "aiohttp", "tenacity", "urllib3"}) or isinstance(
        err, (ConnectionError, TimeoutError))


def _failure(said: str, server: http.Server, requests, lengths) -> UsageError:
    said = http.one_line(said, 240)
    context = http.context_in_error(said)
    asked = [(r.doc["length"], getattr(r, "task_name", None) or f"lc_{r.doc['family']}")
             for r in requests if isinstance(getattr(r, "doc", None), dict)
             and isinstance(r.doc.get("length"), int) and "family" in r.doc]
    if asked:
        length, task = max(asked)
    else:
        task, length = max(lengths, key=lambda t: t[1], default=("a task", "its"))
    if context is not None:
        holds = f"a context of {context} tokens" if context else "a shorter context"
        return UsageError(f"{task} at {length} tokens: the server at {server.url} holds {holds} "
                          f"and refused the prompt ({said}); {RESTART}, or run tasks of at "
                          f"most {context or 'its'} tokens")
    return UsageError(f"the server at {server.url} failed a request of {task} ({said}); check "
                      "that it is still running, then run again")
