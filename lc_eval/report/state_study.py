"""The state-capacity study in the report: recall against pair count, loss by position, and
the size of each model's state.

* ``lc_kvrecall_<len>_p<N>``: ``acc`` against the pair count N, per sweep length, with each
  model's state size in the legend (Zoology's capacity plot);
* ``lc_ppl_<len>``: nats per token in each position bucket, from each model's longest
  ``lc_ppl`` task, with its training length marked (does the loss keep falling past it?);
* ``lc_state_bytes`` and ``lc_kv_bytes_per_token``, which ``lc_hf`` records in the results'
  config (``lc_models.footprint``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lc_eval.report.load import STATE_KEYS
from lc_eval.report.names import length_label, parse_length, parse_pair_task, parse_task
from lc_eval.report.scores import pick_metric

__all__ = ["StateStudy", "collect", "draw", "format_bytes", "nll_metrics", "parse_bucket"]

PPL = "ppl"
ALL = "all"  # the label of the whole-document loss (metric ``nll``)


@dataclass
class StateStudy:
    """What the runs hold of the study, by display name of the model."""

    capacity: dict[int, dict[str, dict[int, float]]] = field(default_factory=dict)
    # ^ sweep length -> model -> {pairs: acc %}
    losses: dict[str, tuple[int, dict[tuple[int, int], float]]] = field(default_factory=dict)
    # ^ model -> (lc_ppl length, {(bucket start, end): nats per token})
    footprints: dict[str, dict[str, float]] = field(default_factory=dict)
    # ^ model -> {"lc_state_bytes": ..., "lc_kv_bytes_per_token": ...}

    @property
    def empty(self) -> bool:
        return not (self.capacity or self.losses or self.footprints)

    def legend(self, model: str) -> str:
        """``model (state 210.0 KiB + 0 B/token)``, or the bare name when not recorded."""
        fp = self.footprints.get(model)
        if not fp:
            return model
        return (f"{model} (state {format_bytes(fp['lc_state_bytes'])} + "
                f"{format_bytes(fp['lc_kv_bytes_per_token'])}/token)")


def parse_bucket(label: str) -> tuple[int, int]:
    """``"1k-2k"`` -> ``(1024, 2048)``; ``"0-1k"`` -> ``(0, 1024)``."""
    start, end = label.split("-")
    return parse_length(start), parse_length(end)


def nll_metrics(metrics: dict) -> dict[str, float]:
    """An ``lc_ppl`` results entry's unfiltered losses: bucket label (or ``"all"``) -> nats.

    >>> nll_metrics({"nll,none": 2.5, "nll_0-1k,none": 3.0, "nll_stderr,none": "N/A"})
    {'all': 2.5, '0-1k': 3.0}
    """
    out = {}
    for key, value in metrics.items():
        name, _, filt = key.partition(",")
        if filt == "none" and isinstance(value, (int, float)) and (
                name == "nll" or name.startswith("nll_") and "_stderr" not in name):
            out[ALL if name == "nll" else name[len("nll_"):]] = float(value)
    return out


def format_bytes(n: float) -> str:
    """``215040 -> '210.0 KiB'``; ``0 -> '0 B'``.

    >>> format_bytes(215040), format_bytes(0), format_bytes(3 * 2**30)
    ('210.0 KiB', '0 B', '3.0 GiB')
    """
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def collect(models) -> StateStudy:
    """The study's numbers from ``ModelReport``s (their merged runs)."""
    study = StateStudy()
    for m in models:
        for task, run in m.runs.task_run.items():
            pair = parse_pair_task(task)
            if pair is not None:
                picked = pick_metric(run.results[task])
                if picked is not None:
                    length, pairs = pair
                    study.capacity.setdefault(length, {}).setdefault(m.name, {})[pairs] = (
                        100 * picked[0])
                continue
            parsed = parse_task(task)
            if parsed is None or parsed[0] != PPL:
                continue
            buckets = {parse_bucket(label): value
                       for label, value in nll_metrics(run.results[task]).items() if label != ALL}
            if buckets and parsed[1] >= study.losses.get(m.name, (0, {}))[0]:
                study.losses[m.name] = (parsed[1], buckets)
        recorded = [r.state_info for r in m.runs.runs if set(STATE_KEYS) <= set(r.state_info)]
        if recorded:
            study.footprints[m.name] = recorded[-1]
    study.capacity = dict(sorted(study.capacity.items()))
    return study


def draw(study: StateStudy, training: dict[str, int | None], out: Path, unique) -> dict[str, str]:
    """The study's figures into ``out``; figure key -> file name (``unique`` picks free names)."""
    from lc_eval.report.figures import plot_lines

    drawn = {}
    for length, by_model in study.capacity.items():
        name = unique(f"capacity_{length_label(length)}.png")
        plot_lines(out / name, f"Recall against pair count at {length_label(length)} "
                   "(lc_kvrecall)", by_model, xlabel="key-number pairs in the context (log2)",
                   ylabel="acc (%)", ylim=(-3, 103), tick_label=str,
                   labels={m: study.legend(m) for m in by_model})
        drawn[f"capacity/{length}"] = name
    if study.losses:
        curves = {m: {b: v for (_, b), v in losses.items()}
                  for m, (_, losses) in study.losses.items()}
        name = unique("loss_by_position.png")
        plot_lines(out / name, "Loss by position (lc_ppl)", curves, training=training,
                   xlabel="position bucket (its end, tokens, log2); dotted lines: training "
                   "lengths", ylabel="nats per token")
        drawn["loss"] = name
    return drawn
