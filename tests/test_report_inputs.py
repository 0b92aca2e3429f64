"""``lc-eval report`` on the runs users really have: partial sweeps, reruns, API models,
other suites' tasks, and bad input. The runs are written by lm-eval's own tracker
(``report_helpers.write_run``); ``test_report.py`` covers output of the real CLI.
"""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
from conftest import run_cli
from report_helpers import read_results, write_run

from lc_eval.cli import main as lc_eval
from lc_eval.report import build_report, write_report
from lc_eval.report.names import SUITE_FAMILIES


def report_md(out) -> str:
    return (out / "report.md").read_text(encoding="utf-8")


def table_rows(md: str, heading: str) -> dict[str, list[str]]:
    """The first Markdown table after ``heading``: first cell -> the other cells (the
    header row under the key '')."""
    lines = md.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if not all(set(c) <= set(":-") for c in cells):  # skip the alignment row
            rows.append(cells)
    return {("" if i == 0 else row[0]): row[1:] for i, row in enumerate(rows)}


def csv_rows(out) -> list[dict[str, str]]:
    with open(out / "scores.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_partial_sweeps_leave_gaps_and_sort_lengths_numerically(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, {"pretrained": "/ckpt/llama"}, {
        "lc_passkey_1k": [1, 1, 1, 1], "lc_passkey_2k": [1, 1, 0, 1], "lc_passkey_16k": [0, 0, 0, 1],
    })  # fmt: skip
    write_run(
        runs, {"pretrained": "/ckpt/mamba"}, {"lc_passkey_1k": [1, 0], "lc_passkey_16k": [0, 0]}
    )
    out = tmp_path / "report"
    lc_eval(["report", str(runs), "--out", str(out), "--no-figures"])
    rows = table_rows(report_md(out), "### passkey")
    assert rows[""] == ["1k", "2k", "16k"]
    assert rows["llama"] == ["100.00", "75.00", "25.00"]
    assert rows["mamba"] == ["50.00", "-", "0.00"], "a length not run must show as '-'"


def test_newest_run_wins_per_task_and_the_report_says_so(tmp_path):
    runs = tmp_path / "runs"
    args = {"pretrained": "/ckpt/llama"}
    new = write_run(runs, args, {"lc_passkey_2k": [1, 1]}, date=2_000_000_000.0)
    old = write_run(
        runs, args, {"lc_passkey_1k": [1, 0], "lc_passkey_2k": [0, 0]}, date=1_000_000_000.0
    )
    out = tmp_path / "report"
    write_report(build_report([runs]), out, figures=False)
    md = report_md(out)
    assert table_rows(md, "### passkey")["llama"] == ["50.00", "100.00"]
    assert "2 runs merged, the newest run wins" in md
    assert f"replaced by newer runs: {old.name}: lc_passkey_2k" in md
    assert str(new) in md and str(old) in md, "both files are listed as inputs"


def test_a_recorded_group_score_is_dropped_when_a_subtask_was_rerun(tmp_path):
    runs = tmp_path / "runs"
    args = {"pretrained": "/ckpt/llama"}
    tasks = {f"lc_{f}_1k": [1.0, 1.0] for f in SUITE_FAMILIES}
    write_run(runs, args, tasks, groups={"lc_suite_1k": list(tasks)}, date=1.0)
    write_run(runs, args, {"lc_vt_1k": [0.0, 0.0]}, date=2.0)
    report = build_report([runs])
    suite = [s for s in report.scores if s.family == "suite" and s.depth is None]
    assert [(s.score, s.source) for s in suite] == [
        (pytest.approx(1000 / 11), "mean of 11 families")
    ]
    assert any("lc_suite_1k score dropped" in note for note in report.notes)


def test_suite_group_score_is_used_as_recorded(tmp_path):
    runs = tmp_path / "runs"
    tasks = {f"lc_{f}_4k": [float(i % 2), 1.0] for i, f in enumerate(SUITE_FAMILIES)}
    write_run(runs, {"pretrained": "/ckpt/llama"}, tasks, groups={"lc_suite_4k": list(tasks)})
    out = tmp_path / "report"
    write_report(build_report([runs]), out, figures=False)
    md = report_md(out)
    expected = 100 * sum(sum(v) / 2 for v in tasks.values()) / 11
    assert table_rows(md, "### suite (average of 11 families, lc_suite_<len>)")["llama"] == [
        f"{expected:.2f}"
    ]
    assert "Summary family: **suite" in md
    row = [r for r in csv_rows(out) if r["family"] == "suite"]
    assert [(r["source"], r["task"]) for r in row] == [("group", "lc_suite_4k")]


def test_no_suite_average_from_some_families_only(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, {"pretrained": "/ckpt/llama"}, {"lc_vt_1k": [1], "lc_cwe_1k": [0]})
    report = build_report([runs])
    assert not [s for s in report.scores if s.family == "suite"]
    assert report.summary_family == "vt"
    assert any("no suite average at 1k" in note and "niah_single" in note for note in report.notes)


@pytest.mark.parametrize(
    "model, model_args, name",
    [
        (
            "vllm",
            {"pretrained": "/ckpt/Meta-Llama-3-8B", "tensor_parallel_size": 2},
            "Meta-Llama-3-8B",
        ),
        ("local-completions", "model=gpt-4o-mini,base_url=http://localhost:8000/v1", "gpt-4o-mini"),
        ("hf", "pretrained=org/some-model,peft=/adapters/lora-7", "lora-7"),
        ("lc_hf", {"pretrained": "/ckpt/mamba2/"}, "mamba2"),
    ],
    ids=["vllm", "api-string-args", "peft-adapter", "lc_hf-trailing-slash"],
)
def test_any_lm_eval_model_type_is_named_from_its_args(tmp_path, model, model_args, name):
    write_run(tmp_path / "runs", model_args, {"lc_passkey_1k": [1]}, model=model)
    report = build_report([tmp_path / "runs"])
    assert [m.name for m in report.models] == [name]


def test_other_tasks_are_listed_beside_the_summary(tmp_path):
    runs = tmp_path / "runs"
    other = {
        "leaderboard_mmlu_pro": {"acc,none": 0.3125, "acc_stderr,none": 0.01},
        "hellaswag": {"acc,none": 0.5, "acc_norm,none": 0.625},
    }
    write_run(runs, {"pretrained": "/ckpt/llama"}, {"lc_passkey_1k": [1, 1]}, other=other)
    out = tmp_path / "report"
    write_report(build_report([runs]), out, figures=False)
    md = report_md(out)
    summary = table_rows(md, "## Summary")
    assert summary[""][-2:] == ["leaderboard_mmlu_pro (acc)", "hellaswag (acc)"]
    assert summary["llama"][-2:] == ["0.3125", "0.5000"]
    other_section = md.split("## Other lm-eval tasks", 1)[1]
    for row in ("| hellaswag | acc | 0.5000 |", "| hellaswag | acc_norm | 0.6250 |"):
        assert row in other_section, other_section


def test_runs_without_log_samples_give_tables_but_no_depth_detail(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, {"pretrained": "/ckpt/llama"}, {"lc_passkey_1k": [1, 0]}, log_samples=False)
    out = tmp_path / "report"
    written = write_report(build_report([runs]), out)
    assert "## Depth x length" not in report_md(out)
    assert [p.name for p in written if p.suffix == ".png"] == ["curves_passkey.png"]
    assert [r["depth"] for r in csv_rows(out)] == [""]


def test_depths_are_binned_and_multi_needle_docs_use_their_controlled_depth(tmp_path):
    runs = tmp_path / "runs"
    accs = {"lc_niah_single_1k": [1, 0, 1, 1], "lc_niah_multikey_1k": [1, 0], "lc_vt_1k": [1, 0]}
    depths = {
        "lc_niah_single_1k": [49.7, 51.0, 3.0, [96.0]],
        # niah: the first asked-for needle sits at the doc's depth, the others at random
        "lc_niah_multikey_1k": [[10.0, 60.0, 3.0], [20.0, 10.0, 97.0]],
        # vt: every link of the chain at a random depth; no depth to plot against
        "lc_vt_1k": [[1.5, 31.5, 88.0], [5.0, 40.0, 61.0]],
    }
    write_run(runs, {"pretrained": "/ckpt/llama"}, accs, depths=depths)
    report = build_report([runs])
    cells = report.depth_cells("llama", "niah_single")
    assert cells == {(0.0, 1024): 100.0, (50.0, 1024): 50.0, (100.0, 1024): 100.0}
    assert report.depth_cells("llama", "niah_multikey") == {(10.0, 1024): 100.0, (20.0, 1024): 0.0}
    assert report.depth_cells("llama", "vt") == {}


def test_options_threshold_families_summary_names_and_training_length(tmp_path):
    runs = tmp_path / "runs"
    accs = {
        "lc_passkey_1k": [1, 1],
        "lc_passkey_2k": [1, 0],
        "lc_passkey_4k": [0, 0],
        "lc_vt_1k": [1, 1],
    }
    write_run(runs, {"pretrained": "/ckpt/llama"}, accs)
    out = tmp_path / "report"
    lc_eval([
        "report", str(runs), "--out", str(out), "--no-figures", "--threshold", "50",
        "--families", "passkey", "--summary", "passkey", "--name", "llama=Llama-7B",
        "--training-length", "Llama-7B=1k",
    ])  # fmt: skip
    md = report_md(out)
    summary = table_rows(md, "## Summary")
    assert summary[""][:4] == [
        "training length",
        "effective length (passkey >= 50)",
        "passkey at training length",
        "passkey at 2x training length",
    ]
    assert summary["Llama-7B"][:4] == ["1k", "2k", "100.00", "50.00"]
    assert "### vt" not in md and {r["family"] for r in csv_rows(out)} == {"passkey"}
    assert "Llama-7B: --training-length" in md


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "no such file or folder"),
        (lambda p: p, "no lm-eval results file"),
        (lambda p: _write(p / "x.json", '{"a": 1}'), "not an lm-eval results file"),
        (lambda p: _write(p / "x.json", "{broken"), "not valid JSON"),
        (
            lambda p: write_run(
                p, {"pretrained": "/m"}, {}, other={"hellaswag": {"acc,none": 0.5}}
            ),
            "no lc-eval task (lc_<family>_<len>) in 1 results file(s) (tasks found: hellaswag)",
        ),
    ],
    ids=["missing-path", "empty-folder", "not-results-json", "broken-json", "another-suite"],
)
def test_bad_input_gets_one_clear_line(tmp_path, make, message):
    target = make(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        lc_eval(["report", str(target), "--out", str(tmp_path / "out")])
    text = str(exit_info.value.code)
    assert text.startswith("lc-eval report: ") and message in text, text
    assert "\n" not in text, "one line, no traceback"


@pytest.mark.parametrize(
    "option, message",
    [
        (["--name", "gpt2=x"], "--name gpt2=...: no model of that name"),
        (["--training-length", "gpt2=4k"], "--training-length gpt2=...: no model of that name"),
        (["--training-length", "llama=4kb"], "bad length '4kb'"),
        (["--families", "nope"], "--families nope: no scores for that family"),
        (["--summary", "vt"], "--summary vt: no scores for that family"),
    ],
    ids=[
        "unknown-name",
        "unknown-training-model",
        "bad-length",
        "unknown-family",
        "unknown-summary",
    ],
)
def test_bad_options_get_one_clear_line(tmp_path, option, message):
    write_run(tmp_path / "runs", {"pretrained": "/ckpt/llama"}, {"lc_passkey_1k": [1]})
    with pytest.raises(SystemExit) as exit_info:
        lc_eval(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), *option])
    assert message in str(exit_info.value.code), exit_info.value.code


def test_the_same_input_gives_the_same_files(tmp_path):
    runs = tmp_path / "runs"
    write_run(
        runs,
        {"pretrained": "/ckpt/llama"},
        {"lc_niah_single_1k": [1, 0, 1], "lc_niah_single_2k": [0, 0, 1]},
    )
    digests = []
    for out in (tmp_path / "a", tmp_path / "b"):
        written = write_report(build_report([runs]), out)
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in written})
    assert digests[0] == digests[1]
    assert set(digests[0]) == {
        "report.md",
        "scores.csv",
        "curves_niah_single.png",
        "heatmap_llama_niah_single.png",
        "leaderboard.md",
        "leaderboard.csv",
    }


def _write(path, text):
    path.write_text(text)
    return path


def test_the_executable_reports_bad_input_in_one_line(tmp_path):
    proc = run_cli("lc-eval", "report", str(tmp_path), "--out", str(tmp_path / "o"), check=False)
    assert proc.returncode == 1
    expected = (
        f"lc-eval report: {tmp_path}: no lm-eval results file (results_*.json) in this folder; "
        "pass the --output_path of an `lm_eval run` / `lc-eval run`"
    )
    assert proc.stderr.strip().splitlines() == [expected], proc.stderr
    assert "report" in run_cli("lc-eval", "--help").stdout


def test_output_path_ending_in_json_is_found_in_its_folder(tmp_path):
    """``--output_path runs/sweep.json`` writes ``runs/sweep_<date>.json`` and samples beside it."""
    write_run(tmp_path / "runs" / "sweep.json", {"pretrained": "/ckpt/llama"}, {"lc_vt_1k": [1, 0]})
    report = build_report([tmp_path / "runs"])
    assert report.runs[0].path.name.startswith("sweep_")
    assert [(s.depth, s.score) for s in report.scores] == [(None, 50.0), (0.0, 100.0), (50.0, 0.0)]


def test_samples_that_disagree_with_their_results_are_flagged(tmp_path):
    path = write_run(tmp_path / "runs", {"pretrained": "/ckpt/llama"}, {"lc_passkey_1k": [1, 0]})
    data = read_results(path)
    data["results"]["lc_passkey_1k"]["acc,none"] = 1.0
    path.write_text(json.dumps(data))
    report = build_report([tmp_path / "runs"])
    assert any("do not average to its recorded score" in note for note in report.notes)


def test_limited_runs_are_noted(tmp_path):
    write_run(tmp_path / "runs", {"pretrained": "/m/llama"}, {"lc_vt_1k": [1]}, limit=0.25)
    report = build_report([tmp_path / "runs"])
    assert "llama: run with --limit 0.25: scores cover only that fraction of the documents" in (
        " ".join(report.notes)
    )
