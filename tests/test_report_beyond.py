"""The report's "Beyond literal retrieval" section from lm-eval output written by lm-eval's own
tracker (``report_helpers``): the copy and swap-count sweeps as tables and curves, and each
model's latent score beside its literal control, length by length."""

from __future__ import annotations

import json

from conftest import run_cli
from report_helpers import write_run
from test_report import markdown_table

from lc_eval.report.build import build_report


def _add(results_file, tasks: dict[str, float], metadata: dict | None = None) -> None:
    """Add sweep tasks (their names are not ``lc_<family>_<len>``) and task metadata."""
    data = json.loads(results_file.read_text())
    for task, acc in tasks.items():
        data["results"][task] = {"alias": task, "acc,none": acc, "acc_stderr,none": 0.0}
        data["configs"][task] = {"task": task}
    for config in data["configs"].values():
        config["metadata"] = {"version": 1.0, **(metadata or {})}
    results_file.write_text(json.dumps(data))


def _runs(tmp_path):
    for i, (model, scale) in enumerate((("attn", 1.0), ("ssm", 0.5))):
        plain = write_run(tmp_path / "plain", f"pretrained=/m/{model}",
                          {"lc_niah_latent_1k": [scale * 0.5], "lc_niah_latent_4k": [0.0],
                           "lc_copy_1k": [scale], "lc_statetrack_1k": [0.2]},
                          date=1e9 + i)
        _add(plain, {"lc_copy_4k_w008": scale, "lc_copy_4k_w064": scale / 2,
                     "lc_statetrack_16k_o001": 1.0, "lc_statetrack_16k_o016": scale / 4})
        literal = write_run(tmp_path / "literal", f"pretrained=/m/{model}",
                            {"lc_niah_latent_1k": [scale], "lc_niah_latent_4k": [0.5]},
                            date=2e9 + i)
        _add(literal, {}, {"literal": True})


def test_the_section_sets_latent_beside_literal_and_draws_the_sweeps(tmp_path):
    _runs(tmp_path)
    out = tmp_path / "report"
    run_cli("lc-eval", "report", str(tmp_path / "plain"), str(tmp_path / "literal"), "--out",
            str(out))
    md = (out / "report.md").read_text()
    pairs = markdown_table(md, "### Latent against literal")
    assert pairs[""] == ["1k", "4k"]
    assert pairs["attn"] == ["50.00 / 100.00 (-50)", "0.00 / 50.00 (-50)"]
    assert pairs["ssm"] == ["25.00 / 50.00 (-25)", "0.00 / 50.00 (-50)"]
    copy = markdown_table(md, "### lc_copy against passage words at 4k")
    assert copy[""] == ["8", "64"] and copy["ssm"] == ["50.00", "25.00"]
    ops = markdown_table(md, "### lc_statetrack against swaps at 16k")
    assert ops[""] == ["1", "16"] and ops["attn"] == ["100.00", "25.00"]
    for figure in ("copy_sweep_4k.png", "statetrack_sweep_16k.png"):
        assert (out / figure).stat().st_size > 5000 and f"({figure})" in md
    # the families' own length tables hold both runs, the literal one named as such
    assert {"attn", "attn [literal]"} <= set(markdown_table(md, "### niah_latent"))
    # sweep points are not "other lm-eval tasks"
    assert "lc_copy_4k_w008" not in md.split("## Beyond literal retrieval")[0]


def test_latent_without_its_control_is_not_paired(tmp_path):
    write_run(tmp_path, "pretrained=/m/attn", {"lc_niah_latent_1k": [1.0]})
    report = build_report([tmp_path])
    assert report.beyond.latent == {} and report.beyond.empty
