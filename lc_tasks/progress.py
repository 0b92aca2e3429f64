"""Progress bars that close their line.

A bar that is erased when done (tqdm's ``leave=False``) ends with ``\\r``: in a terminal the
next line overwrites it, but in a log file or a pipe the next line printed is glued onto the
bar. ``leave_bar()`` is the ``leave`` every lc-eval bar passes: erase it in a terminal, and
elsewhere keep its last state and close its line with a newline.

>>> import io
>>> leave_bar(io.StringIO())  # a log file: the bar's line is closed
True
"""

from __future__ import annotations

import sys


def leave_bar(stream=None) -> bool:
    """tqdm's ``leave`` for a bar written to ``stream`` (default: stderr, tqdm's)."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return not (isatty and isatty())
