"""The table ``lc-eval run`` prints last: family x length, lengths in numeric order.

lm-eval's own table sorts task names as strings (``lc_passkey_128k`` before
``lc_passkey_16k``); a length sweep reads better as one row per family.

>>> results = {"results": {"lc_passkey_2k": {"acc,none": 0.5}, "lc_passkey_16k": {"acc,none": 0.0},
...            "lc_passkey_1k": {"acc,none": 1.0}, "hellaswag": {"acc,none": 0.3}}}
>>> print(length_table(results))
| acc (%) | 1k | 2k | 16k |
| :-- | --: | --: | --: |
| passkey | 100.0 | 50.0 | 0.0 |
"""

from __future__ import annotations

from lc_tasks.report.names import FAMILIES, length_label, parse_task


def _score(metrics: dict) -> float | None:
    for key in ("acc,none", "acc"):
        if isinstance(metrics.get(key), (int, float)):
            return float(metrics[key])
    return None


def length_table(results: dict) -> str:
    """A Markdown table of ``acc`` (percent) per family and length, or "" without our tasks."""
    cells: dict[str, dict[int, float]] = {}
    for name, metrics in {**results.get("results", {}), **results.get("groups", {})}.items():
        parsed, score = parse_task(name), _score(metrics)
        if parsed and score is not None:
            cells.setdefault(parsed[0], {})[parsed[1]] = score
    if not cells:
        return ""
    lengths = sorted({n for row in cells.values() for n in row})
    lines = ["| acc (%) | " + " | ".join(length_label(n) for n in lengths) + " |",
             "| :-- |" + " --: |" * len(lengths)]
    order = [*FAMILIES, "suite"]
    for family, row in sorted(cells.items(), key=lambda kv: (
            order.index(kv[0]) if kv[0] in order else len(order), kv[0])):
        values = [f"{100 * row[n]:.1f}" if n in row else "-" for n in lengths]
        lines.append(f"| {family} | " + " | ".join(values) + " |")
    return "\n".join(lines)
