"""Acceptance for the state-capacity study through the real CLIs: ``lc-eval run`` on two tiny
local models (attention, SSM) over the pair sweep, loss by position and a read-twice run,
stock ``lm_eval run --model hf`` on the same loss tasks, then ``lc-eval report``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import run_cli
from test_report import markdown_table

from lc_eval.report.state_study import format_bytes

ARCHS = ("llama", "mamba2")
PAIRS = ("lc_kvrecall_1k_p01", "lc_kvrecall_1k_p04")
PPL = "lc_ppl_2k"


def _run(model: str, path: Path, out: Path, tasks: list[str], metadata: dict) -> None:
    run_cli(
        "lc-eval", "run", "--model", model,
        "--model_args", f"pretrained={path},dtype=float32",
        "--tasks", ",".join(tasks), "--metadata", json.dumps(metadata),
        "--gen_kwargs", "max_gen_toks=8",  # random weights: a few tokens score as well
        "--batch_size", "2", "--log_samples", "--output_path", str(out),
    )  # fmt: skip


@pytest.fixture(scope="session")
def study_output(tiny_model, tmp_path_factory) -> dict[str, Path]:
    """Output folders: ``lc_hf`` (both models, pair sweep + loss + passkey), ``twice`` (the
    mamba2 model on passkey with its question first), ``hf`` (stock, loss tasks)."""
    out = {kind: tmp_path_factory.mktemp(f"study-{kind}") for kind in ("lc_hf", "twice", "hf")}
    for arch in ARCHS:
        _run("lc_hf", tiny_model(arch), out["lc_hf"], [*PAIRS, PPL, "lc_passkey_1k"],
             {"num_samples": 2})
        _run("hf", tiny_model(arch), out["hf"], [PPL], {"num_samples": 2})
    _run("lc_hf", tiny_model("mamba2"), out["twice"], ["lc_passkey_1k"],
         {"num_samples": 2, "query_first": True})
    return out


@pytest.fixture(scope="session")
def study_report(study_output, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study-report")
    run_cli("lc-eval", "report", str(study_output["lc_hf"]), str(study_output["twice"]),
            "--out", str(out))
    return out


def _results(folder: Path) -> dict[str, dict]:
    """checkpoint basename -> results JSON."""
    return {Path(d["config"]["model_args"]["pretrained"]).name: d for d in (
        json.loads(p.read_text()) for p in sorted(folder.rglob("results_*.json")))}


def test_lc_hf_records_the_state_size(study_output, tiny_model):
    runs = _results(study_output["lc_hf"])
    llama, mamba2 = runs[tiny_model("llama").name], runs[tiny_model("mamba2").name]
    assert llama["config"]["lc_state_bytes"] == 0 and llama["config"]["lc_kv_bytes_per_token"] > 0
    assert mamba2["config"]["lc_state_bytes"] > 0
    assert llama["config"]["lc_fp32_gemm"] in ("onednn", "torch")
    assert mamba2["config"]["lc_kv_bytes_per_token"] == 0


def test_loss_buckets_equal_stock_hf_through_the_clis(study_output):
    ours, stock = _results(study_output["lc_hf"]), _results(study_output["hf"])
    assert sorted(ours) == sorted(stock)
    for name, data in stock.items():
        want = data["results"][PPL]
        got = ours[name]["results"][PPL]
        metrics = [k for k in want if k.startswith("nll") and "_stderr" not in k]
        assert sorted(metrics) == ["nll,none", "nll_0-1k,none", "nll_1k-2k,none"]
        for key in metrics:  # nats per token, token-weighted over the docs
            assert abs(got[key] - want[key]) <= 1e-4, (name, key, got[key], want[key])
            assert 0 < got[key] < 2 * math.log(200), "a random tiny model's loss"


def test_report_draws_the_study_from_real_runs(study_output, study_report, tiny_model):
    md = (study_report / "report.md").read_text()
    for figure in ("capacity_1k.png", "loss_by_position.png"):
        assert (study_report / figure).stat().st_size > 5000, figure
        assert f"({figure})" in md
    runs = _results(study_output["lc_hf"])
    sizes = markdown_table(md, "### State size")
    for arch in ARCHS:
        name = tiny_model(arch).name
        config = runs[name]["config"]
        assert sizes[name] == [format_bytes(config["lc_state_bytes"]),
                               format_bytes(config["lc_kv_bytes_per_token"])]
        capacity = markdown_table(md, "### Recall against pair count at 1k")
        row = next(v for k, v in capacity.items() if k.startswith(name))
        assert row == [f"{100 * runs[name]['results'][t]['acc,none']:.2f}" for t in PAIRS]
        losses = markdown_table(md, "### Loss by position")
        assert losses[name][1:] == [f"{runs[name]['results'][PPL][f'nll_{b},none']:.3f}"
                                    for b in ("0-1k", "1k-2k")]


def test_report_sets_a_read_twice_run_beside_the_plain_one(study_report, tiny_model):
    md = (study_report / "report.md").read_text()
    name = tiny_model("mamba2").name
    passkey = markdown_table(md, "### passkey")
    assert name in passkey and f"{name} [query first]" in passkey, sorted(passkey)


def test_report_of_the_study_tasks_alone(study_output, tmp_path):
    """Runs with only the study's tasks (no acc family) still make a report."""
    for path in study_output["lc_hf"].rglob("results_*.json"):
        data = json.loads(path.read_text())
        data["results"] = {t: v for t, v in data["results"].items() if t != "lc_passkey_1k"}
        (tmp_path / path.name).write_text(json.dumps(data))
    run_cli("lc-eval", "report", str(tmp_path), "--out", str(tmp_path / "report"))
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## State capacity" in md and "## Summary" not in md
    assert (tmp_path / "report" / "capacity_1k.png").is_file()
