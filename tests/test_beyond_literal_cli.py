"""Copying, latent needles and state tracking through the real CLIs: ``lc-eval run`` with the
bundled tiny-llama on each family at 1k and on a point of each sweep, then ``lc-eval report``.
The model is tiny, so the scores are not the point: the docs, the requests and the report are.
"""

from __future__ import annotations

import json

import pytest
from conftest import run_cli
from test_report import markdown_table

TASKS = ("lc_copy_1k", "lc_niah_latent_1k", "lc_statetrack_1k", "lc_copy_4k_w008",
         "lc_statetrack_4k_o01")


def _run(out, tasks, metadata=None):
    run_cli("lc-eval", "run", "--model", "lc_hf", "--model_args", "pretrained=tiny-llama",
            "--tasks", ",".join(tasks), "--limit", "2", "--log_samples", "--output_path",
            str(out), *(["--metadata", json.dumps(metadata)] if metadata else []))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("beyond-runs")
    _run(out / "plain", TASKS)
    return out


def test_each_family_runs_and_records_its_docs(runs):
    (path,) = (runs / "plain").rglob("results_*.json")
    results = json.loads(path.read_text())["results"]
    assert set(TASKS) <= set(results)
    assert all(0.0 <= results[t]["acc,none"] <= 1.0 for t in TASKS)
    assert "exact_match,none" in results["lc_copy_1k"]
    for task in TASKS:
        (samples,) = (runs / "plain").rglob(f"samples_{task}_*.jsonl")
        docs = [json.loads(line)["doc"] for line in samples.read_text().splitlines()]
        assert len(docs) == 2 and all(d["n_tokens"] <= d["length"] for d in docs)
    (samples,) = (runs / "plain").rglob("samples_lc_copy_4k_w008_*.jsonl")
    assert all(json.loads(line)["doc"]["copy_words"] == 8
               for line in samples.read_text().splitlines())


def test_the_report_shows_them(runs, tmp_path):
    run_cli("lc-eval", "report", str(runs / "plain"), "--out", str(tmp_path))
    md = (tmp_path / "report.md").read_text()
    for family in ("copy", "niah_latent", "statetrack"):
        assert "tiny-llama" in markdown_table(md, f"### {family}")
        assert (tmp_path / f"curves_{family}.png").is_file()
    assert "tiny-llama" in markdown_table(md, "### lc_copy against passage words at 4k")
    assert "tiny-llama" in markdown_table(md, "### lc_statetrack against swaps at 4k")


@pytest.mark.slow  # a second real run; test_report_beyond pairs the two on lm-eval's output
def test_the_report_sets_the_literal_control_beside_the_latent_run(runs, tmp_path):
    _run(runs / "literal", ["lc_niah_latent_1k"], {"literal": True})
    run_cli("lc-eval", "report", str(runs / "plain"), str(runs / "literal"), "--out",
            str(tmp_path))
    pairs = markdown_table((tmp_path / "report.md").read_text(), "### Latent against literal")
    assert pairs[""] == ["1k"] and "tiny-llama" in pairs
