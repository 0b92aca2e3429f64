"""ops/allocator.py: glibc's thresholds raised once, off with LC_EVAL_MALLOPT=0."""

from __future__ import annotations

import platform
import subprocess
import sys


def _run(env_value: str) -> str:
    code = ("from lc_models.ops.allocator import keep_freed_memory as k; "
            "print(k(), k.cache_info().hits)")
    env = {"LC_EVAL_MALLOPT": env_value, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True).stdout.split()


def test_the_switch_turns_it_off():
    assert _run("0")[0] == "False"


def test_it_applies_on_glibc():
    applied, _ = _run("1")
    if platform.libc_ver()[0] == "glibc":
        assert applied == "True", "mallopt was refused"
