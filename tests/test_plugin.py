"""The plugin's front door: package layout, registry, and the real executables."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli


def test_include_path_is_a_folder_of_yaml():
    import lc_tasks

    path = Path(lc_tasks.include_path())
    assert path.is_absolute() and path.is_dir(), path
    assert any(path.rglob("*.yaml")), f"no task YAMLs under {path}"


def test_importing_lc_models_keeps_stock_models():
    from lm_eval.api.registry import get_model

    import lc_models  # noqa: F401

    assert get_model("hf").__name__ == "HFLM"
    assert get_model("lc_hf").__name__ == "LongContextLM"


def test_importing_the_packages_is_light():
    """`import lc_tasks, lc_models` must not pull torch in (lm-eval's registry is lazy)."""
    import subprocess
    import sys

    code = "import sys, lc_tasks, lc_models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--help"], "run"),
        (["--help"], "lc_hf"),
        (["run", "--help"], "--model_args"),
        pytest.param(["ls", "tasks"], "lc_passkey_1k", marks=pytest.mark.slow),  # full index
        (["tasks"], "lc_niah_single"),
        (["tasks", "--names"], "lc_suite_1m"),
    ],
    ids=["help", "help-names-ours", "run-help", "ls-tasks", "tasks", "task-names"],
)
def test_lc_eval_executable(args, expect):
    out = run_cli("lc-eval", *args)
    assert expect in out.stdout, out.stdout[-3000:]


def test_stock_lm_eval_finds_our_tasks_with_include_path():
    import lc_tasks

    out = run_cli("lm_eval", "ls", "tasks", "--include_path", lc_tasks.include_path())
    assert "lc_passkey_1k" in out.stdout


@pytest.mark.slow  # lm-eval's full index; test_adapter_cli runs a user's tasks beside ours
def test_user_include_path_works_beside_ours(tmp_path):
    (tmp_path / "my_task.yaml").write_text(
        "task: my_own_probe_task\n"
        "dataset_path: json\n"
        "dataset_kwargs: {data_files: {test: nothing.json}}\n"
        "test_split: test\n"
        "output_type: generate_until\n"
        "doc_to_text: x\n"
        "doc_to_target: y\n"
        "metric_list: [{metric: exact_match}]\n"
    )
    out = run_cli("lc-eval", "ls", "tasks", "--include_path", str(tmp_path))
    assert "my_own_probe_task" in out.stdout
    assert "lc_passkey_1k" in out.stdout


def _samples(out: Path) -> dict[str, list]:
    """task -> [(doc_id, filtered response)] from the logged samples of a run."""
    import json

    found: dict[str, list] = {}
    for path in sorted(out.rglob("samples_*.jsonl")):
        task = path.name[len("samples_") :].rsplit("_", 1)[0]
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        found[task] = sorted((r["doc_id"], r["filtered_resps"]) for r in rows)
    return found


def test_lc_eval_run_hf_behaves_like_lm_eval_run_hf(stock_hf_run, tiny_model, tmp_path):
    """Same arguments through `lc-eval run` and `lm_eval run`: same scores, same answers."""
    from conftest import read_run, stock_hf_args

    stock, stock_out = stock_hf_run
    run_cli("lc-eval", *stock_hf_args(tiny_model("llama"), tmp_path))
    ours = read_run(tmp_path)
    assert ours["results"] == stock["results"]
    assert ours["config"]["model"] == stock["config"]["model"] == "hf"
    assert _samples(tmp_path) == _samples(stock_out)
