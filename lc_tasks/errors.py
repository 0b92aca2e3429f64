"""User errors: one clear line that says what was wrong, the value given, and what to pass.

Every check of user input in lc-eval (task names, ``--metadata`` options, haystacks,
tokenizers, model arguments, checkpoints, report inputs) raises :class:`UsageError`. The
``lc-eval`` CLI prints it as ``lc-eval: error: <message>`` and exits with status 2, without a
traceback (``--traceback`` or ``LC_EVAL_TRACEBACK=1`` shows one, for bug reports). Under stock
``lm_eval`` the same exception ends lm-eval's traceback, so its last line is ours too.

>>> suggest("chunksize", ["chunk_size", "max_length", "verify"])
" (did you mean 'chunk_size'?)"
>>> suggest("pretrained", ["chunk_size"])
''
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["UsageError", "closest", "suggest"]


class UsageError(ValueError):
    """Bad input from the user (a ValueError, so that existing handlers still catch it)."""


def closest(name: str, choices: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The choices that look most like ``name``, best first."""
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)


def suggest(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` for the closest choices, or an empty string."""
    found = closest(name, choices, cutoff=cutoff)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(f) for f in found) + "?)"
