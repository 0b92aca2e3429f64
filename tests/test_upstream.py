"""The upstream task folder: dropped into a copy of lm-eval, bare ``lm_eval`` runs our tasks.

The tests build the folder (``scripts/make_upstream_folder.py``), overlay it on a copy of the
installed ``lm_eval`` package (a temporary folder first on ``PYTHONPATH``, the folder in its
``tasks/``), and run ``lm_eval`` with no ``--include_path`` in an environment that can import
neither our plugin (``lc_models``) nor our package (``lc_tasks``): a ``sitecustomize`` blocks
both, so the folder runs on its own copy of the code. Its docs must equal the plugin's byte for
byte, and its scores too; the copy must be the package's code; ``lm_eval validate`` must accept
every task and group. lm-eval's own task tests and pre-commit hooks on the folder need a
checkout of lm-eval: ``scripts/check_upstream.sh`` runs them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import lm_eval
import pytest
from conftest import read_run, run_cli

from lc_eval.upstream import BASE, FOLDER, TAG, UPSTREAM_LENGTHS, folder_names
from lc_eval.upstream_folder import (
    PACKAGE,
    PREFIX,
    ROOT,
    original,
    package_files,
)
from lc_tasks import dataset
from lc_tasks.errors import UsageError
from lc_tasks.families import FAMILIES, GROUPS
from lc_tasks.upstream_entry import MARK, VALIDATION_DOCS, build, process_results

REPO = Path(__file__).resolve().parents[1]
BLOCK = """
import importlib.abc, sys
class _NoPlugin(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("lc_eval", "lc_models", "lc_tasks"):
            raise ImportError(f"{name} is not importable in this test: lc-eval is not installed")
sys.meta_path.insert(0, _NoPlugin())
"""
TASK = "lc_passkey_4k"
ARGS = ["--device", "cpu", "--tasks", TASK, "--limit", "2", "--metadata",
        json.dumps({"num_samples": 2}), "--log_samples"]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """The folder, as the script writes it."""
    root = tmp_path_factory.mktemp("made")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_upstream_folder.py"), "--out",
                    str(root)], check=True, capture_output=True)
    return root / FOLDER


@pytest.fixture(scope="module")
def overlay(made, tmp_path_factory) -> str:
    """PYTHONPATH of a copy of lm-eval with the folder in its tasks/, lc-eval blocked."""
    root = tmp_path_factory.mktemp("upstream")
    site = root / "site"
    shutil.copytree(Path(lm_eval.__file__).parent, site / "lm_eval",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(made, site / "lm_eval" / "tasks" / FOLDER)
    (root / "block").mkdir()
    (root / "block" / "sitecustomize.py").write_text(BLOCK)
    return f"{root / 'block'}:{site}"


def _bare(pythonpath: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python *args`` with the overlay and no lc-eval, from a folder outside the repository."""
    env = {**os.environ, "PYTHONPATH": pythonpath}
    return subprocess.run([sys.executable, *args], check=False, capture_output=True, text=True,
                          env=env, timeout=900, cwd=cwd or Path(pythonpath.split(":")[1]))


# --- the folder's shape -----------------------------------------------------------------------

def test_shared_configs_do_not_end_in_yaml(made):
    for path in made.rglob("*.yaml"):
        assert re.search(r"^(task|group): \S+$", path.read_text(), re.MULTILINE), \
            f"{path.name} ends in .yaml but names no task or group: lm-eval would index it"
    assert (made / BASE).is_file() and not list(made.rglob("_lc_base.yaml"))
    assert f"tag:\n  - {TAG}\n" in (made / BASE).read_text()


def test_no_stray_files(made):
    strays = [p.relative_to(made).as_posix() for p in made.rglob("*") if p.is_file()
              and not (p.suffix == ".yaml" or p.name in ("README.md", BASE)
                       or p.relative_to(made).parts[0] == PACKAGE)]
    assert strays == []
    assert "longcxt" not in "".join(p.read_text() for p in made.rglob("*yaml"))


def test_no_duplicate_task_and_group_names(made):
    names = [re.search(r"^(?:task|group): (\S+)$", p.read_text(), re.MULTILINE).group(1)
             for p in made.rglob("*.yaml")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert TAG not in names
    # nor with lm-eval's own tasks, groups and tags
    theirs = set()
    for path in (Path(lm_eval.__file__).parent / "tasks").rglob("*.yaml"):
        text = path.read_text(errors="replace")
        theirs.update(re.findall(r"^(?:task|group|tag): ['\"]?(\w+)", text, re.MULTILINE))
        for items in re.findall(r"^tag:\s*\n((?:[ \t]+- .+\n)+)", text, re.MULTILINE):
            theirs.update(re.findall(r"- ['\"]?(\w+)", items))
    assert "longcxt" in theirs, "the scan of lm-eval's names missed RULER's tag"
    assert not (set(names) | {TAG}) & theirs


def test_the_folder_holds_every_family_at_the_upstream_lengths(made):
    names = set(folder_names(made))
    for family in FAMILIES:
        for label in UPSTREAM_LENGTHS:
            assert f"lc_{family}_{label}" in names, f"lc_{family}_{label} is missing"
    for group in GROUPS:
        assert {f"lc_{group}_{label}" for label in UPSTREAM_LENGTHS} <= names
        assert (made / group / "README.md").is_file()
    labels = {m for n in names for m in re.findall(r"_(\d+[km])(?=_|$)", n)}
    assert labels == set(UPSTREAM_LENGTHS)


def test_the_readme_follows_lm_evals_template(made):
    text = (made / "README.md").read_text()
    for heading in ("## Paper", "### Citation", "#### Groups", "#### Tags", "#### Tasks",
                    "### Checklist", "### Changelog"):
        assert f"\n{heading}\n" in text, heading
    assert re.search(r"^Homepage: `https://", text, re.MULTILINE)
    for family in FAMILIES:
        assert f"`lc_{family}_<len>`" in text, family
    for group in GROUPS:
        assert f"`lc_{group}_<len>`" in text, group
    for key in ("hsieh2024ruler", "rajpurkar2018know", "yang2018hotpotqa"):
        assert key in text
    for readme in made.rglob("README.md"):
        outside_code = re.sub(r"```.*?```|`[^`]*`", "", readme.read_text(), flags=re.DOTALL)
        hidden = re.findall(r"<[^<>\s][^<>]*>", outside_code)
        assert not hidden, f"{readme.relative_to(made)}: GitHub would hide {hidden[:3]} as HTML"


# --- the copy of the code ---------------------------------------------------------------------

def test_every_function_points_into_the_copy(made):
    functions = re.findall(r"!function (\S+)", "".join(p.read_text() for p in made.rglob("*yaml")))
    assert functions and all(f.startswith(f"{PREFIX}.") for f in functions)


def test_the_copy_is_the_packages_code(made):
    copied = sorted(p.relative_to(made / PACKAGE).as_posix()
                    for p in (made / PACKAGE).rglob("*.py"))
    expected = sorted(p.relative_to(ROOT).as_posix() for p in package_files()
                      if p.suffix == ".py")
    assert copied == expected and "dataset.py" in copied and "upstream_entry.py" in copied
    for rel in copied:
        assert original((made / PACKAGE / rel).read_text()) == (ROOT / rel).read_text(), \
            f"lc_tasks/{rel} differs from its copy"
    data = [p for p in package_files() if p.suffix != ".py"]
    assert data, "the package's word lists and templates are copied"
    for path in data:
        assert (made / PACKAGE / path.relative_to(ROOT)).read_bytes() == path.read_bytes(), path
    assert not (made / PACKAGE / "task_configs").exists()


def test_the_copy_imports_no_lc_eval_module(made):
    for path in (made / PACKAGE).rglob("*.py"):
        for line in path.read_text().splitlines():
            assert not re.match(r"\s*(from|import) (lc_tasks|lc_models)\b", line), (path, line)


# --- the folder's entry points ----------------------------------------------------------------

def test_without_a_tokenizer_the_docs_are_for_validation_only():
    docs = build(family="niah_single", length=4096)["test"]
    assert len(docs) == VALIDATION_DOCS and all(doc[MARK] for doc in docs)
    with pytest.raises(UsageError, match="validation only"):
        process_results(docs[0], ["anything"])


def test_with_a_tokenizer_the_docs_are_the_plugins(tokenizer_dir):
    options = {"tokenizer": str(tokenizer_dir("char")), "num_samples": 3}
    ours = build(family="vt", length=4096, **options)["test"]
    theirs = dataset.build(family="vt", length=4096, **options)["test"]
    assert ours.to_list() == theirs.to_list() and MARK not in ours.column_names
    assert process_results(ours[0], [" ".join(ours[0]["outputs"])]) == {"acc": 1.0}


def test_qa_reads_the_hub_unless_a_file_is_named(monkeypatch):
    seen = {}
    monkeypatch.setattr(dataset, "build", lambda **kw: seen.update(kw) or {})
    build(family="qa_squad", length=4096, tokenizer="t")
    assert seen["squad"] == "hf:rajpurkar/squad_v2"
    build(family="qa_hotpot", length=4096, tokenizer="t", hotpotqa="/data/h.json")
    assert seen["hotpotqa"] == "/data/h.json"


# --- bare lm_eval with the folder -------------------------------------------------------------

@pytest.fixture(scope="module")
def bare_and_plugin(overlay, tiny_model, tmp_path_factory):
    model = ["--model", "hf", "--model_args", f"pretrained={tiny_model('llama')},dtype=float32"]
    bare = tmp_path_factory.mktemp("bare")
    proc = _bare(overlay, "-m", "lm_eval", "run", *model, *ARGS, "--output_path", str(bare))
    assert proc.returncode == 0, proc.stderr[-4000:]
    plugin = tmp_path_factory.mktemp("plugin")
    run_cli("lc-eval", "run", *model, *ARGS, "--output_path", str(plugin))
    return bare, plugin, proc


def _samples(out: Path) -> list[dict]:
    (path,) = out.rglob(f"samples_{TASK}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_bare_lm_eval_runs_our_tasks_without_lc_eval(bare_and_plugin):
    bare, _, proc = bare_and_plugin
    assert TASK in read_run(bare)["results"]
    assert "is not importable in this test" not in proc.stderr


def test_its_docs_and_scores_equal_the_plugins(bare_and_plugin):
    bare, plugin, _ = bare_and_plugin
    ours, theirs = _samples(plugin), _samples(bare)
    assert [s["doc"] for s in theirs] == [s["doc"] for s in ours], "the docs differ"
    assert [s["resps"] for s in theirs] == [s["resps"] for s in ours]
    assert read_run(bare)["results"][TASK]["acc,none"] == \
        read_run(plugin)["results"][TASK]["acc,none"]


def test_lm_eval_validate_accepts_every_task_and_group(overlay, made):
    names = sorted(folder_names(made))
    proc = _bare(overlay, "-m", "lm_eval", "validate", "--tasks", ",".join(names))
    assert proc.returncode == 0 and "All tasks found and valid" in proc.stdout, \
        proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.slow
def test_a_group_loads_alone_without_a_model(overlay):
    script = ("import json; from lm_eval.tasks import TaskManager; "
              "tasks = TaskManager().load(['lc_suite_4k'])['tasks']; "
              "print(json.dumps({t.config.task: [d['validation_only'] for d in t.test_docs()] "
              "for t in tasks.values()}))")
    proc = _bare(overlay, "-c", script)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(loaded) == sorted(f"lc_{f}_4k" for f in GROUPS["suite"])
    assert all(flags == [True] * VALIDATION_DOCS for flags in loaded.values())
