"""Acceptance for ``lc-eval report``: real ``lc-eval run --log_samples`` output of two tiny
local models over two lengths, turned into a report by the real executable.

The two CLI runs (~30 s each, mostly lm-eval indexing its task folder) happen once per
session. Random tiny models score about 0, so one test also rescores a copy of the real
output with known per-document values, to check the tables against non-trivial numbers.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import run_cli

from lc_eval.report import build_report, write_report
from lc_eval.report.names import length_label

ARCHS = ("llama", "mamba")
FAMILIES = ("passkey", "niah_single")
LENGTHS = ("1k", "2k")
LC_TASKS = [f"lc_{family}_{n}" for family in FAMILIES for n in LENGTHS]
DOCS = 3  # per task, at depths 0, 10 and 20%
# A non-lc task (a stand-in for a leaderboard's) in the same runs: a local multiple choice.
TOY_TASK = "toy_arith_mc"


def _toy_task(folder: Path) -> Path:
    rows = [{"q": f"{i} + 1 =", "choices": [str(i + 1), str(i + 5)], "label": 0} for i in range(4)]
    data = folder / "toy.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / f"{TOY_TASK}.yaml").write_text(
        f"task: {TOY_TASK}\n"
        "dataset_path: json\n"
        f"dataset_kwargs: {{data_files: {{test: {data}}}}}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: '{{q}}'\n"
        "doc_to_choice: '{{choices}}'\n"
        "doc_to_target: label\n"
        "metric_list: [{metric: acc}, {metric: acc_norm}]\n"
    )
    return folder


@pytest.fixture(scope="session")
def lm_eval_output(tiny_model, tmp_path_factory) -> Path:
    """``--output_path`` folder of one real ``lc-eval run`` per tiny model."""
    out = tmp_path_factory.mktemp("lm_eval_output")
    extra = _toy_task(tmp_path_factory.mktemp("toy_task"))
    for arch in ARCHS:
        run_cli(
            "lc-eval", "run", "--model", "hf",
            "--model_args", f"pretrained={tiny_model(arch)},dtype=float32",
            "--tasks", ",".join([*LC_TASKS, TOY_TASK]), "--include_path", str(extra),
            "--metadata", json.dumps({"num_samples": DOCS}),
            # Random weights answer nothing; a few tokens score them just as well.
            "--gen_kwargs", "max_gen_toks=8",
            "--batch_size", "1", "--log_samples", "--output_path", str(out),
        )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def names(tiny_model) -> dict[str, str]:
    """arch -> the model's name in the report: its checkpoint folder's basename."""
    return {arch: tiny_model(arch).name for arch in ARCHS}


@pytest.fixture(scope="session")
def report_dir(lm_eval_output, names, tmp_path_factory) -> Path:
    """The report of the real runs, made by the real ``lc-eval report`` executable."""
    out = tmp_path_factory.mktemp("report")
    proc = run_cli(
        "lc-eval", "report", str(lm_eval_output), "--out", str(out),
        "--training-length", f"{names['mamba']}=1k",
    )  # fmt: skip
    assert "report.md" in proc.stdout, proc.stdout
    return out


def results_by_model(output: Path) -> dict[str, dict]:
    """checkpoint basename (the model's name in the report) -> its run's results JSON."""
    found = {}
    for path in sorted(output.rglob("results_*.json")):
        data = json.loads(path.read_text())
        found[Path(data["config"]["model_args"]["pretrained"]).name] = data
    return found


def markdown_table(md: str, heading: str) -> dict[str, list[str]]:
    """First Markdown table after ``heading``: first cell -> other cells; header under ''."""
    lines = md.split(heading + "\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if not all(set(c) <= set(":-") for c in cells):
            rows.append(cells)
    return {("" if i == 0 else row[0]): row[1:] for i, row in enumerate(rows)}


def test_the_runs_hold_what_the_report_needs(lm_eval_output, names):
    runs = results_by_model(lm_eval_output)
    assert sorted(runs) == sorted(names.values())
    for data in runs.values():
        assert set(LC_TASKS) <= set(data["results"]), sorted(data["results"])
        assert TOY_TASK in data["results"]
    samples = sorted(p.name for p in lm_eval_output.rglob("samples_lc_passkey_1k_*.jsonl"))
    assert len(samples) == len(ARCHS), samples


def test_family_tables_match_the_results_json(lm_eval_output, report_dir):
    md = (report_dir / "report.md").read_text()
    runs = results_by_model(lm_eval_output)
    for family in FAMILIES:
        table = markdown_table(md, f"### {family}")
        assert table[""] == list(LENGTHS), f"{family}: columns must be the lengths in order"
        for folder, data in runs.items():
            expected = [
                f"{100 * data['results'][f'lc_{family}_{n}']['acc,none']:.2f}" for n in LENGTHS
            ]
            assert table[folder] == expected, f"{family} / {folder}"


def test_scores_csv_rows_match_results_and_samples(lm_eval_output, report_dir):
    with open(report_dir / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    keys = [(r["model"], r["family"], r["length"], r["depth"]) for r in rows]
    assert len(keys) == len(set(keys)), "one row per (model, family, length, depth)"
    runs = results_by_model(lm_eval_output)
    for folder, data in runs.items():
        for task in LC_TASKS:
            mine = [r for r in rows if r["model"] == folder and r["task"] == task]
            overall = [r for r in mine if r["depth"] == ""]
            assert len(overall) == 1, (folder, task)
            assert float(overall[0]["score"]) == pytest.approx(
                100 * data["results"][task]["acc,none"], abs=1e-6
            )
            assert int(overall[0]["n"]) == DOCS
            by_depth = [r for r in mine if r["depth"] != ""]
            assert sum(int(r["n"]) for r in by_depth) == DOCS, "every doc binned by its depth"
            assert {r["depth"] for r in by_depth} == {"0", "10", "20"}, by_depth
            assert sum(float(r["score"]) * int(r["n"]) for r in by_depth) / DOCS == pytest.approx(
                float(overall[0]["score"]), abs=1e-4
            )


def test_depth_tables_match_the_sample_logs(lm_eval_output, report_dir):
    md = (report_dir / "report.md").read_text()
    for folder in results_by_model(lm_eval_output):
        expected: dict[tuple[str, str], list[float]] = defaultdict(list)
        for path in (lm_eval_output).rglob("samples_lc_passkey_*.jsonl"):
            if not path.parent.name.endswith(folder):
                continue
            for line in path.read_text().splitlines():
                sample = json.loads(line)
                depth = sample["doc"]["depth"]
                depth = depth[0] if isinstance(depth, list) else depth
                binned = math.floor(depth / 10 + 0.5) * 10  # nearest 10%, halves up
                cell = (f"{binned:g}%", length_label(sample["doc"]["length"]))
                expected[cell].append(100 * sample["acc"])
        table = markdown_table(md, f"### {folder} / passkey")
        lengths = [h.split(" ")[0] for h in table.pop("")]
        got = {
            (depth, n): value
            for depth, values in table.items()
            for n, value in zip(lengths, values)
            if value != "-"
        }
        assert got == {k: f"{sum(v) / len(v):.2f}" for k, v in expected.items()}, folder


def test_other_tasks_stand_beside_the_long_context_summary(lm_eval_output, report_dir, names):
    md = (report_dir / "report.md").read_text()
    summary = markdown_table(md, "## Summary")
    runs = results_by_model(lm_eval_output)
    column = summary[""].index(f"{TOY_TASK} (acc)")
    for name, data in runs.items():
        assert summary[name][column] == f"{data['results'][TOY_TASK]['acc,none']:.4f}"
    llama, mamba = names["llama"], names["mamba"]
    assert summary[llama][0] == "4k", "llama's training length: max_position_embeddings"
    assert summary[mamba][0] == "1k", "mamba's training length: the --training-length option"
    assert summary[""][3] == "passkey at 2x training length"
    mamba_2k = runs[mamba]["results"]["lc_passkey_2k"]["acc,none"]
    assert summary[mamba][3] == f"{100 * mamba_2k:.2f}"
    assert summary[llama][3] == "-", "8k was not run"


def test_the_report_says_how_the_runs_were_made(report_dir, names):
    md = (report_dir / "report.md").read_text()
    inputs = markdown_table(md, "## Inputs")
    assert inputs[""][-1] == "docs per task"
    assert {inputs[name][-1] for name in names.values()} == {str(DOCS)}
    for name in names.values():
        assert f"{name}: run with --gen_kwargs max_gen_toks=8: these override" in md


def test_figures_are_valid_pngs(report_dir, names):
    from matplotlib.image import imread
    from PIL import Image

    pngs = sorted(p.name for p in report_dir.glob("*.png"))
    expected_heatmaps = [f"heatmap_{names[a]}_{f}.png" for a in ARCHS for f in FAMILIES]
    assert pngs == sorted([f"curves_{f}.png" for f in FAMILIES] + expected_heatmaps)
    md = (report_dir / "report.md").read_text()
    for name in pngs:
        assert f"]({name})" in md, f"{name} is not linked from report.md"
        with Image.open(report_dir / name) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100
        assert imread(report_dir / name).ndim == 3


def test_rescored_real_output_gives_the_rescored_numbers(lm_eval_output, names, tmp_path):
    """Real files, known scores: acc = 1 for even doc ids at 1k, only doc 0 at 2k."""
    copy = shutil.copytree(lm_eval_output, tmp_path / "runs")
    for path in copy.rglob("samples_lc_*.jsonl"):
        samples = [json.loads(line) for line in path.read_text().splitlines()]
        for s in samples:
            s["acc"] = float(
                s["doc_id"] % 2 == 0 if s["doc"]["length"] == 1024 else s["doc_id"] == 0
            )
        path.write_text("".join(json.dumps(s) + "\n" for s in samples))
        results_path = next(path.parent.glob("results_*.json"))
        results = json.loads(results_path.read_text())
        task = path.name[len("samples_") :].rsplit("_", 1)[0]
        results["results"][task]["acc,none"] = sum(s["acc"] for s in samples) / len(samples)
        results_path.write_text(json.dumps(results))
    out = tmp_path / "report"
    write_report(build_report([copy], threshold=50), out, figures=False)
    md = (out / "report.md").read_text()
    for family in FAMILIES:
        table = markdown_table(md, f"### {family}")
        for name in names.values():
            assert table[name] == ["66.67", "33.33"], (family, name)
    effective = markdown_table(md, "## Effective context length")
    assert effective[names["llama"]] == ["1k", "1k"], "66.67 >= 50 at 1k, 33.33 < 50 at 2k"
