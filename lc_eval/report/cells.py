"""The cells of the report's Markdown tables, shared by ``markdown`` (``report.md``),
``beyond`` (its section) and the run summary (``lc_eval.summary``)."""

from __future__ import annotations

import math

__all__ = ["MISSING", "nats", "number", "percent", "table"]

MISSING = "-"


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A Markdown table; the first ``left`` columns left-aligned (text), the rest right-aligned.

    >>> print(table(["model", "1k"], [["llama", "50.00"]]))
    | model | 1k |
    | :-- | --: |
    | llama | 50.00 |
    """
    rule = [":--" if i < left else "--:" for i in range(len(header))]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(_cell(c) for c in line) + " |" for line in lines)


def percent(value: float | None) -> str:
    """A score in percent with two decimals, as in the paper; ``-`` when not measured."""
    return MISSING if value is None or math.isnan(value) else f"{value:.2f}"


def nats(value: float | None) -> str:
    """A loss in nats with three decimals; ``-`` when not measured."""
    return MISSING if value is None else f"{value:.3f}"


def number(value: float | None) -> str:
    """A metric with four decimals; ``-`` when not measured."""
    return MISSING if value is None else f"{value:.4f}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
