"""llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``) on 127.0.0.1, started and
stopped by a test or a benchmark, serving a real GGUF checkpoint.

The server runs with llama.cpp's extra CPU buffer types off (``use_extra_bufts``, the weight
repacking for AMX and similar): with them, llama-cpp-python 0.3.36 built on an Intel Xeon with
AMX crashes (SIGSEGV in ``llama_decode``) on the first prompt of more than one token (measured
2026-12-07). The arithmetic is llama.cpp's own either way.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

LAUNCH = """
import sys, llama_cpp, llama_cpp.llama
default = llama_cpp.llama_model_default_params
def params():
    p = default()
    p.use_extra_bufts = False
    return p
llama_cpp.llama_model_default_params = params
llama_cpp.llama.llama_cpp.llama_model_default_params = params
from llama_cpp.server.__main__ import main
main()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def llama_server(gguf: Path, n_ctx: int = 4096, log: Path | None = None,
                 extra: tuple[str, ...] = ()):
    """``with llama_server(path) as base: ...``: ``base`` is ``http://127.0.0.1:<port>/v1``;
    ``extra``: more server flags (``--type_k 0 --type_v 0``: a float32 KV cache)."""
    port = free_port()
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "--model", str(gguf), "--n_ctx", str(n_ctx),
         "--host", "127.0.0.1", "--port", str(port), *extra], stdout=out,
        stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                    json.loads(r.read())
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"llama.cpp's server did not start (exit {proc.poll()})")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()
