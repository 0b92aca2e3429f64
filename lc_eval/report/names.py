"""Task names of the lc-eval suite: ``lc_<family>_<len>`` and ``lc_suite_<len>``.

>>> parse_task("lc_niah_single_4k")
('niah_single', 4096)
>>> parse_task("lc_suite_1m")
('suite', 1048576)
>>> parse_task("hellaswag") is None
True
>>> parse_pair_task("lc_kvrecall_4k_p016"), parse_task("lc_kvrecall_4k_p016")
((4096, 16), None)
>>> length_label(4096), length_label(3000)
('4k', '3000')
"""

from __future__ import annotations

import re

from lc_tasks.families import FAMILIES as _FAMILY_TABLE
from lc_tasks.families import SUITE as _SUITE_TABLE

# The 11 RULER-like families averaged by the ``lc_suite_<len>`` groups, in table order.
SUITE_FAMILIES: tuple[str, ...] = tuple(_SUITE_TABLE)
# Every family we ship, in table order; families of other names sort after these.
FAMILIES: tuple[str, ...] = tuple(_FAMILY_TABLE)
# Families whose docs list several needle depths with the first asked-for needle at the
# doc's own (controlled) depth and the others at random levels (lc_tasks.generators.niah).
FIRST_NEEDLE_AT_DEPTH: frozenset[str] = frozenset(
    name for name, family in _FAMILY_TABLE.items() if family.kind in ("niah", "kvrecall")
)
# The pseudo-family of the suite average (the ``lc_suite_<len>`` group).
SUITE = "suite"

_UNITS = {"": 1, "k": 1024, "m": 1024 * 1024}
_TASK = re.compile(r"^lc_(?P<family>[a-z0-9][a-z0-9_]*?)_(?P<length>\d+[km]?)$")
_PAIR_TASK = re.compile(r"^lc_kvrecall_(?P<length>\d+[km]?)_p(?P<pairs>\d+)$")


def parse_length(text: str) -> int:
    """Tokens in a length label: ``"4k"`` -> 4096, ``"1m"`` -> 1048576, ``"3000"`` -> 3000."""
    match = re.fullmatch(r"(\d+)([km]?)", text.strip().lower())
    if match is None:
        raise ValueError(f"bad length {text!r}: write tokens as 4096, 4k or 1m (k=1024, m=1048576)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def length_label(tokens: int) -> str:
    """The short label of a length: 4096 -> ``"4k"``; lengths not a whole k stay numbers."""
    for unit in ("m", "k"):
        if tokens >= _UNITS[unit] and tokens % _UNITS[unit] == 0:
            return f"{tokens // _UNITS[unit]}{unit}"
    return str(tokens)


def parse_task(name: str) -> tuple[str, int] | None:
    """``(family, length)`` of an lc-eval task or group name, else None."""
    match = _TASK.match(name)
    if match is None:
        return None
    return match.group("family"), parse_length(match.group("length"))


def parse_pair_task(name: str) -> tuple[int, int] | None:
    """``(length, pairs)`` of a kvrecall pair-count sweep task (``lc_kvrecall_4k_p016``)."""
    match = _PAIR_TASK.match(name)
    if match is None:
        return None
    return parse_length(match.group("length")), int(match.group("pairs"))


def family_order(family: str) -> tuple[int, str]:
    """Sort key: the suite first, then our families in table order, then others by name."""
    if family == SUITE:
        return (-1, family)
    if family in FAMILIES:
        return (FAMILIES.index(family), family)
    return (len(FAMILIES), family)
