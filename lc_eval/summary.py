"""The tables ``lc-eval run`` prints last: family x length, lengths in numeric order; then the
kvrecall pair sweeps (acc per pair count) and the loss by position (nats per token per
bucket) when the run had them.

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

from lc_eval.report.cells import MISSING, nats, table
from lc_eval.report.names import FAMILIES, length_label, parse_pair_task, parse_task
from lc_eval.report.state_study import nll_metrics, parse_bucket


def _score(metrics: dict) -> float | None:
    for key in ("acc,none", "acc"):
        if isinstance(metrics.get(key), (int, float)):
            return float(metrics[key])
    return None


def summary_tables(results: dict) -> str:
    """Every table of our tasks in ``results``, "" without them.

    >>> print(summary_tables({"results": {"lc_kvrecall_1k_p04": {"acc,none": 0.25},
    ...     "lc_kvrecall_1k_p01": {"acc,none": 1.0},
    ...     "lc_ppl_2k": {"nll,none": 2.5, "nll_1k-2k,none": 2.0, "nll_0-1k,none": 3.0}}}))
    | acc (%) \\ pairs | 1 | 4 |
    | :-- | --: | --: |
    | kvrecall 1k | 100.0 | 25.0 |
    <BLANKLINE>
    | nll (nats/token) | 0-1k | 1k-2k | all |
    | :-- | --: | --: | --: |
    | ppl 2k | 3.000 | 2.000 | 2.500 |
    """
    return "\n\n".join(t for t in (length_table(results), pair_table(results),
                                     loss_table(results)) if t)


def pair_table(results: dict) -> str:
    """``acc`` (percent) of the kvrecall pair sweeps: one row per length, one column per count."""
    cells = _grid(results.get("results", {}), parse_pair_task)
    if not cells:
        return ""
    counts = sorted({n for row in cells.values() for n in row})
    return table(["acc (%) \\ pairs", *map(str, counts)], [
        [f"kvrecall {length_label(length)}", *[_percent(row.get(n)) for n in counts]]
        for length, row in sorted(cells.items())])


def loss_table(results: dict) -> str:
    """``lc_ppl``'s nats per token: one row per length, one column per position bucket."""
    rows: dict[int, dict[str, float]] = {}
    for name, metrics in results.get("results", {}).items():
        parsed = parse_task(name)
        if parsed and parsed[0] == "ppl":
            rows[parsed[1]] = nll_metrics(metrics)
    if not rows:
        return ""
    longest = max(rows)
    labels = sorted((label for label in rows[longest] if label != "all"),
                    key=lambda label: parse_bucket(label)[0]) + ["all"]
    return table(["nll (nats/token)", *labels], [
        [f"ppl {length_label(length)}", *[nats(row.get(b)) for b in labels]]
        for length, row in sorted(rows.items())])


def length_table(results: dict) -> str:
    """A Markdown table of ``acc`` (percent) per family and length, or "" without our tasks."""
    cells = _grid({**results.get("results", {}), **results.get("groups", {})}, parse_task)
    if not cells:
        return ""
    lengths = sorted({n for row in cells.values() for n in row})
    order = [*FAMILIES, "suite"]
    return table(["acc (%)", *[length_label(n) for n in lengths]], [
        [family, *[_percent(row.get(n)) for n in lengths]]
        for family, row in sorted(cells.items(), key=lambda kv: (
            order.index(kv[0]) if kv[0] in order else len(order), kv[0]))])


def _grid(named_metrics: dict, parse) -> dict:
    """``row -> {column: acc}`` of the names ``parse`` reads as ``(row, column)``."""
    cells: dict = {}
    for name, metrics in named_metrics.items():
        parsed, score = parse(name), _score(metrics)
        if parsed and score is not None:
            cells.setdefault(parsed[0], {})[parsed[1]] = score
    return cells


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}"
