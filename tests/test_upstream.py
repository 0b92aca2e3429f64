"""The upstream task folder: dropped into a copy of lm-eval, bare ``lm_eval`` runs our tasks.

The test builds the folder (``scripts/make_upstream_folder.py``), overlays it on a copy of the
installed ``lm_eval`` package (a temporary folder first on ``PYTHONPATH``, the folder in its
``tasks/``), and runs ``lm_eval run --model hf ... --tasks lc_passkey_1k`` with no
``--include_path`` in an environment that cannot import our plugin (``lc_models`` is blocked
by a ``sitecustomize``; the data library ``lc_tasks``, the folder's declared dependency, stays
importable). Its docs must equal the plugin's byte for byte, and its scores too; ``lm_eval
validate`` must accept the tasks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import lm_eval
import pytest
from conftest import read_run, run_cli

ROOT = Path(__file__).resolve().parents[1]
BLOCK = """
import importlib.abc, sys
class _NoPlugin(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "lc_models" or name.startswith("lc_models."):
            raise ImportError("lc-eval's model plugin is not importable in this test")
sys.meta_path.insert(0, _NoPlugin())
"""
ARGS = ["--device", "cpu", "--tasks", "lc_passkey_1k", "--limit", "3", "--metadata",
        json.dumps({"num_samples": 3}), "--log_samples"]


@pytest.fixture(scope="module")
def overlay(tmp_path_factory):
    """(PYTHONPATH of the lm-eval copy with our folder, the folder)."""
    root = tmp_path_factory.mktemp("upstream")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_upstream_folder.py"), "--out",
                    str(root / "made")], check=True, capture_output=True)
    site = root / "site"
    shutil.copytree(Path(lm_eval.__file__).parent, site / "lm_eval",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "made" / "lc_eval", site / "lm_eval" / "tasks" / "lc_eval")
    (root / "block").mkdir()
    (root / "block" / "sitecustomize.py").write_text(BLOCK)
    return f"{root / 'block'}:{site}", site / "lm_eval" / "tasks" / "lc_eval"


def samples(out):
    (path,) = out.rglob("samples_lc_passkey_1k_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def bare_and_plugin(overlay, tiny_model, tmp_path_factory):
    pythonpath, _ = overlay
    model = ["--model", "hf", "--model_args", f"pretrained={tiny_model('llama')},dtype=float32"]
    bare = tmp_path_factory.mktemp("bare")
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "run", *model, *ARGS, "--output_path", str(bare)],
        check=False, capture_output=True, text=True, env={**_env(), "PYTHONPATH": pythonpath}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    plugin = tmp_path_factory.mktemp("plugin")
    run_cli("lc-eval", "run", *model, *ARGS, "--output_path", str(plugin))
    return bare, plugin, proc


def _env():
    import os

    return dict(os.environ)


def test_the_folder_has_the_yamls_the_readme_and_the_extra(overlay):
    _, folder = overlay
    assert len(list(folder.rglob("lc_*.yaml"))) == len(list((ROOT / "task_configs").rglob(
        "lc_*.yaml")))
    readme = (folder / "README.md").read_text()
    assert "### Checklist" in readme and "longcxt" in readme
    assert 'lc_eval = ["lc-eval' in (folder / "pyproject-extra.toml").read_text()
    assert "tag:\n  - longcxt" in (folder / "_lc_base.yaml").read_text()


def test_bare_lm_eval_runs_our_tasks_without_the_plugin(bare_and_plugin):
    bare, _, proc = bare_and_plugin
    assert "lc_passkey_1k" in read_run(bare)["results"]
    assert "lc_models" not in proc.stderr, "the plugin was imported"


def test_its_docs_and_scores_equal_the_plugins(bare_and_plugin):
    bare, plugin, _ = bare_and_plugin
    ours, theirs = samples(plugin), samples(bare)
    assert [s["doc"] for s in theirs] == [s["doc"] for s in ours], "the docs differ"
    assert [s["resps"] for s in theirs] == [s["resps"] for s in ours]
    assert read_run(bare)["results"]["lc_passkey_1k"]["acc,none"] == \
        read_run(plugin)["results"]["lc_passkey_1k"]["acc,none"]


def test_lm_eval_validate_accepts_the_tasks(overlay):
    pythonpath, _ = overlay
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "validate", "--tasks", "lc_passkey_1k,lc_suite_1k"],
        check=False, capture_output=True, text=True, env={**_env(), "PYTHONPATH": pythonpath}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
