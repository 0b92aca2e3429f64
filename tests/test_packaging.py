"""A non-editable install ships everything the package reads at run time.

Builds the wheel, installs it (without dependencies) into a bare folder and
imports from there, away from the source checkout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, pathlib, lc_tasks, lc_models
from lc_models import zoo
from lc_models.models import FAMILIES
from lc_models.zoo.tiny import build_tokenizer
from lc_tasks.generators import generate
from lc_tasks.options import task_spec

root = pathlib.Path(lc_tasks.include_path())
docs = generate(task_spec("niah_prose", 1024, num_samples=1), build_tokenizer("char"), seed=0)
print(json.dumps({
    "lc_tasks": lc_tasks.__file__,
    "lc_models": lc_models.__file__,
    "include_path": str(root),
    "yaml": sorted(p.name for p in root.rglob("*.yaml")),
    "c_sources": sorted(p.name for p in pathlib.Path(lc_models.__file__).parent.rglob("*.c")),
    "zoo": {name: sorted(p.name for p in zoo.path(name).iterdir()) for name in zoo.tiny_names()},
    "doc_ok": docs[0]["outputs"][0] in docs[0]["input"],
    "families": [__import__(name, fromlist=["x"]).__file__ for name in FAMILIES],
}))
"""


@pytest.fixture(scope="module")
def installed(wheel_site, wheel_env, tmp_path_factory):
    out = subprocess.run([sys.executable, "-c", PROBE], check=False, capture_output=True,
                         text=True, cwd=tmp_path_factory.mktemp("elsewhere"), env=wheel_env)
    assert out.returncode == 0, out.stderr[-3000:]
    return wheel_site, json.loads(out.stdout.strip().splitlines()[-1])


def test_packages_are_imported_from_the_install(installed):
    target, probe = installed
    assert probe["lc_tasks"].startswith(str(target)), probe["lc_tasks"]
    assert probe["lc_models"].startswith(str(target)), probe["lc_models"]


def test_task_configs_ship_inside_the_wheel(installed):
    target, probe = installed
    assert probe["include_path"] == str(target / "lc_tasks" / "task_configs")
    source = sorted(p.name for p in (ROOT / "task_configs").rglob("*.yaml"))
    assert probe["yaml"] == source
    assert "lc_passkey_1k.yaml" in probe["yaml"]


def test_generators_find_their_templates_and_word_lists(installed):
    assert installed[1]["doc_ok"]


def test_own_model_families_ship(installed):
    from lc_models.models import FAMILIES

    target, probe = installed
    assert len(probe["families"]) == len(FAMILIES)
    assert all(path.startswith(str(target)) for path in probe["families"]), probe["families"]


def test_native_kernel_sources_ship(installed):
    """Every C source the native kernels are built from (lc_models.ops.native.SOURCES)."""
    from lc_models.ops.native import SOURCES

    assert installed[1]["c_sources"] == sorted(source.name for source in SOURCES)


def test_bundled_models_ship_whole(installed):
    zoo = installed[1]["zoo"]
    assert sorted(zoo) == ["tiny-llama", "tiny-mamba2"]
    for files in zoo.values():
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(files), files
