"""benchmarks/bench_gpu.py's smoke mode (``--device cpu``): every family, every column, in a
subprocess; the GPU run itself needs a GPU machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"
FAMILIES = ("mamba", "mamba2", "rwkv6", "rwkv7", "recurrentgemma", "llama")


def test_smoke_run_measures_every_family_on_both_kernel_paths(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH), "--device", "cpu", "--dtypes", "float32",
                           "--lengths", "16", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "gpu.json").read_text())
    assert sorted(results["runs"]) == sorted(f"{f}/float32" for f in FAMILIES)
    for key, columns in results["runs"].items():
        stock = not key.startswith("rwkv")  # transformers cannot load the native .pth files
        assert sorted(columns) == sorted(["lc_hf torch", "lc_hf auto", *(["hf"] * stock)])
        for column, points in columns.items():
            assert [p["tokens"] for p in points] == [16], f"{key} {column}: {points}"
            assert points[0].get("tokens_per_s", 0) > 0, f"{key} {column}: {points[0]}"
    table = (tmp_path / "gpu.md").read_text()
    assert "| lc_hf torch tok/s |" in table and "| rwkv7 | float32 | 16 |" in table


def test_without_cuda_the_gpu_run_says_how_to_smoke_test():
    import torch

    if torch.cuda.is_available():
        return
    proc = subprocess.run([sys.executable, str(BENCH)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode != 0 and "pass --device cpu" in proc.stderr.strip().splitlines()[-1]
