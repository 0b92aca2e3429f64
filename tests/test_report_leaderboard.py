"""RULER's leaderboard table: the averages as RULER computes them, our models beside published
rows, one clear line for a bad published CSV."""

from __future__ import annotations

import csv

import pytest
from conftest import run_cli
from report_helpers import write_run

from lc_eval.cli import main as lc_eval
from lc_eval.report.leaderboard import averages

# RULER's published table (README of NVIDIA/RULER): per-length scores 4K..128K and its
# Avg, wAvg (inc), wAvg (dec), as printed (one decimal).
PUBLISHED = {
    "GPT-4-1106-preview": ([96.6, 96.3, 95.2, 93.2, 87.0, 81.2], (91.6, 89.0, 94.1)),
    "Jamba-1.5-large": ([96.7, 96.6, 96.4, 96.0, 95.4, 95.1], (96.0, 95.7, 96.3)),
}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_weighted_averages_recompute_rulers_published_row(model):
    scores, printed = PUBLISHED[model]
    assert tuple(round(x, 1) for x in averages(scores)) == printed


def test_inc_weighs_the_long_lengths_and_dec_the_short_ones():
    avg, inc, dec = averages([100.0, 0.0])
    assert (avg, round(inc, 4), round(dec, 4)) == (50.0, 33.3333, 66.6667)


def write_published(path):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "claimed length", "effective length", "1k", "2k", "Avg."])
        writer.writerow(["Published-A", "4k", "2k", "90.0", "88.0", "89.0"])
        writer.writerow(["Published-B", "1k", "< 1k", "10.0", "", ""])
    return path


def test_the_report_writes_the_leaderboard_with_published_rows_beside_ours(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, {"pretrained": "/ckpt/llama"},
              {"lc_passkey_1k": [1, 1, 1, 1], "lc_passkey_2k": [1, 0, 0, 0]})
    write_run(runs, {"pretrained": "/ckpt/mamba"},
              {"lc_passkey_1k": [1, 1, 1, 1], "lc_passkey_2k": [1, 1, 1, 0]})
    out = tmp_path / "report"
    lc_eval(["report", str(runs), "--out", str(out), "--no-figures", "--published",
             str(write_published(tmp_path / "ruler.csv")), "--claimed-length", "llama=4k"])
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    by_model = {r["model"]: r for r in rows}
    assert [r["model"] for r in rows] == ["Published-A", "mamba", "llama", "Published-B"]
    assert by_model["mamba"]["1k"] == "100.0" and by_model["mamba"]["2k"] == "75.0"
    assert by_model["mamba"]["wAvg (inc)"] == f"{(100 + 2 * 75) / 3:.1f}"
    assert by_model["llama"]["claimed length"] == "4k"
    assert by_model["llama"]["effective length"] == "1k"
    assert by_model["Published-B"]["wAvg (inc)"] == "-", "a row missing a length has no average"
    assert by_model["Published-A"]["source"] == "ruler.csv"
    md = (out / "leaderboard.md").read_text()
    assert "| model | claimed length | effective length | 1k | 2k | Avg | wAvg (inc) |" in md


def test_a_bad_published_csv_is_one_line(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, {"pretrained": "/ckpt/llama"}, {"lc_passkey_1k": [1, 1]})
    bad = tmp_path / "bad.csv"
    bad.write_text("name,score\nx,1\n")
    proc = run_cli("lc-eval", "report", str(runs), "--out", str(tmp_path / "r"), "--published",
                   str(bad), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "its header must start with model, claimed length, effective length" in proc.stderr
