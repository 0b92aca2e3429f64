"""Reports from lm-eval output: the model x length tables, effective context lengths,
score-vs-length curves and depth x length heatmaps of a long-context study.

>>> from lc_eval.report import build_report, write_report
>>> report = build_report(["results/"], training_lengths={"llama": 4096})  # doctest: +SKIP
>>> write_report(report, "report/")  # report.md, scores.csv, *.png  # doctest: +SKIP

Modules, one job each: ``names`` (task names and lengths), ``load`` (lm-eval files),
``models`` (model names, training lengths), ``merge`` (newest run wins), ``scores`` (the
score table), ``effective`` (effective context length), ``build`` (assembling a
``Report``), ``markdown``, ``figures`` and ``write`` (output), ``cli`` (``lc-eval report``).
"""

from __future__ import annotations

from lc_eval.report.build import Report, build_report
from lc_eval.report.write import write_report

__all__ = ["Report", "build_report", "write_report"]
