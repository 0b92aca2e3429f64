"""Prompt templates: one Jinja2 file per family in ``lc_tasks/templates/``.

Each template puts ``{{ answer_sep }}`` between its final question and the answer prefix: a
space when rendered whole, the mark ``lc_tasks.chat.ANSWER`` in ``split_template``'s tail, so
that the answer prefix can start the assistant turn of a chat template (``lc_tasks.chat``).

>>> head, tail = split_template("passkey")
>>> head.splitlines()[0][:40], tail.replace(ANSWER, " | ")
('There is an important info hidden inside', '\\nWhat is the pass key? | The pass key is')
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from lc_tasks.chat import ANSWER

__all__ = ["render", "split_template"]

# Rendered in place of the haystack so the fixed text around it can be measured.
_SLOT = "\x00CONTEXT\x00"


@cache
def _env():
    import jinja2

    root = files("lc_tasks").joinpath("templates")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,  # a missing variable is an error, not ""
        autoescape=False,
        keep_trailing_newline=False,
    )


def render(family: str, **variables: Any) -> str:
    """The family's template rendered with ``variables`` (``context`` included).

    ``query_first`` (default false): the templates put their question before the context too
    (read-twice prompting).
    """
    variables.setdefault("query_first", False)
    variables.setdefault("answer_sep", " ")
    return _env().get_template(f"{family}.jinja").render(**variables)


def split_template(family: str, **variables: Any) -> tuple[str, str]:
    """``(head, tail)``: the prompt is ``head + context + tail``; the tail holds the mark
    ``ANSWER`` between the question and the answer prefix (see ``lc_tasks.chat.Frame``)."""
    text = render(family, context=_SLOT, answer_sep=ANSWER, **variables)
    if text.count(_SLOT) != 1:
        raise ValueError(f"template {family}.jinja must use {{{{ context }}}} exactly once")
    head, tail = text.split(_SLOT)
    return head, tail
