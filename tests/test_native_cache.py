"""A read-only ``LC_EVAL_CACHE`` does not stop the native kernels: they build in a temporary
folder of the process's own (issue 34)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = ("from lc_models.ops import native; lib = native.load(); "
         "print(lib is not None, native._cache_dir())")


def unwritable_folder(tmp_path) -> Path:
    """A folder this process cannot write in: read-only to a normal user; for root (who may
    write anywhere on a writable file system) a path under /proc."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    folder = Path("/proc/lc-eval-read-only-cache")
    if not Path("/proc").is_dir():
        pytest.skip("no unwritable folder for root here")
    return folder


@pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None, reason="no C compiler")
def test_a_read_only_cache_builds_the_kernels_in_a_temporary_folder(tmp_path):
    cache = unwritable_folder(tmp_path)
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env={**os.environ, "LC_EVAL_CACHE": str(cache)}, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    built, where = proc.stdout.split()
    assert built == "True", f"the kernels did not build: {proc.stderr[-2000:]}"
    assert not where.startswith(str(cache)), where
