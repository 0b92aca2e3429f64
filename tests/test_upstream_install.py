"""The upstream folder is a function of the package's modules, not of how lc-eval was
installed: built from a wheel install, it equals the folder built from the checkout (a wheel
install also holds ``lc_tasks/task_configs/``, which once landed in the copy: 460 YAMLs
instead of 174, and lm-eval's test failed at collection)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_upstream_folder.py"


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def make_folder(out: Path, env=None, cwd=None) -> Path:
    proc = run_cli_script("--out", str(out), env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "lc_eval"


def test_the_folder_from_a_wheel_install_equals_the_checkouts(wheel_site, wheel_env, tmp_path):
    where = subprocess.run([sys.executable, "-c", "import lc_tasks; print(lc_tasks.__file__)"],
                           check=True, capture_output=True, text=True, env=wheel_env,
                           cwd=tmp_path)
    assert where.stdout.startswith(str(wheel_site)), "the script would not run the install"
    assert (wheel_site / "lc_tasks" / "task_configs").is_dir()  # what once leaked in
    installed = tree(make_folder(tmp_path / "from-wheel", env=wheel_env, cwd=tmp_path))
    checkout = tree(make_folder(tmp_path / "from-checkout"))
    assert not any("task_configs" in name for name in installed)
    assert sorted(installed) == sorted(checkout), (
        f"only in the wheel's: {sorted(set(installed) - set(checkout))[:5]}; only in the "
        f"checkout's: {sorted(set(checkout) - set(installed))[:5]}")
    differing = [name for name in checkout if installed[name] != checkout[name]]
    assert not differing, f"files that differ: {differing[:5]}"


@pytest.mark.parametrize("under", ["", "/sub"], ids=["a file", "under a file"])
def test_out_naming_a_file_is_one_line(tmp_path, under):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    proc = run_cli_script("--out", f"{afile}{under}")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{afile} is a file" in lines[-1] and "pass a folder" in lines[-1], lines[-1]
    assert afile.read_text() == "x"


def run_cli_script(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], check=False,
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


