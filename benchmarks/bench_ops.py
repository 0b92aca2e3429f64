"""The cost of the portable path: each op's torch form against its native kernel and its
per-token reference, on the CPU.

For one layer of each recurrence at a real small model's size (below), batch 1, float32:
tokens/s of ``backend="native"``, ``backend="torch"`` and the ``*_ref`` loop at each length
(default 2k-16k), and the torch form's dispatched torch ops per token at 4096 tokens. A
reference whose time, extrapolated linearly from its shorter lengths, would pass
``--max-seconds`` is skipped (the table says so). Each cell is the best of ``--repeat`` runs.
Results go to ``<out>/ops.json`` and ``<out>/ops.md``.

    python benchmarks/bench_ops.py
    python benchmarks/bench_ops.py --ops wkv7,linear_scan --lengths 2048,4096 --repeat 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_prefill import finish, loadavg, machine

from lc_models.ops import dispatch, native
from lc_models.ops.linear_scan import linear_scan, linear_scan_ref
from lc_models.ops.selective_scan import selective_scan, selective_scan_ref
from lc_models.ops.ssd import ssd, ssd_ref
from lc_models.ops.wkv6 import wkv6, wkv6_ref
from lc_models.ops.wkv7 import wkv7, wkv7_ref

DEFAULT_LENGTHS = [2048, 4096, 8192, 16384]
# op -> the model size its inputs are shaped after
SHAPES = {
    "wkv7": "RWKV-7-190m: 12 heads of 64",
    "wkv6": "RWKV-6-170m: 12 heads of 64",
    "selective_scan": "Mamba-130m: d_inner 1536, d_state 16",
    "ssd": "Mamba2-130m: 24 heads of 64, d_state 128",
    "linear_scan": "RecurrentGemma at d_model 768: lru_width 768",
}
# op -> (fast path, its reference, keyword arguments both take)
OPS = {
    "wkv7": (wkv7, wkv7_ref, {}),
    "wkv6": (wkv6, wkv6_ref, {}),
    "selective_scan": (selective_scan, selective_scan_ref, {"delta_softplus": True}),
    "ssd": (ssd, ssd_ref, {}),
    "linear_scan": (linear_scan, linear_scan_ref, {}),
}


def inputs(op: str, L: int, g: torch.Generator) -> tuple:
    def rn(*shape):
        return torch.randn(*shape, generator=g)

    if op == "wkv7":
        kk = torch.nn.functional.normalize(rn(1, L, 12, 64), dim=-1)
        log_w = -torch.exp(-0.5 - torch.rand(1, L, 12, 64, generator=g) * 2)
        return rn(1, L, 12, 64), log_w, rn(1, L, 12, 64), rn(1, L, 12, 64), -kk, kk * 0.5
    if op == "wkv6":
        return (rn(1, L, 12, 64), rn(1, L, 12, 64), rn(1, L, 12, 64),
                -torch.exp(rn(1, L, 12, 64)), rn(12, 64))
    if op == "selective_scan":
        return (rn(1, 1536, L), rn(1, 1536, L), -torch.exp(rn(1536, 16)), rn(1, 16, L),
                rn(1, 16, L))
    if op == "ssd":
        return rn(1, L, 24, 64), torch.rand(1, L, 24, generator=g), -torch.exp(rn(24)), rn(
            1, L, 1, 128), rn(1, L, 1, 128)
    return torch.rand(1, L, 768, generator=g), rn(1, L, 768)


def run(op: str, args: tuple, backend: str):
    """One call of ``op`` on ``args`` through ``backend`` ("native", "torch" or "ref")."""
    fast, ref, kwargs = OPS[op]
    return ref(*args, **kwargs) if backend == "ref" else fast(*args, **kwargs, backend=backend)


class _Count(TorchDispatchMode):
    count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def ops_per_token(op: str, L: int = 4096) -> float:
    """Torch ops the torch form dispatches per token at ``L`` tokens."""
    args = inputs(op, L, torch.Generator().manual_seed(0))
    with dispatch.forced("torch"), _Count() as counter:
        run(op, args, "torch")
    return counter.count / L


def seconds(op: str, args: tuple, backend: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run(op, args, backend)
        best = min(best, time.perf_counter() - start)
    return best


def bench(op: str, lengths: list[int], backends: list[str], repeat: int,
          max_seconds: float) -> dict:
    g = torch.Generator().manual_seed(0)
    run(op, inputs(op, 64, g), "torch")  # warm up: thread pools, the kernel build
    rows: dict[str, list[dict]] = {b: [] for b in backends}
    for L in lengths:
        args = inputs(op, L, g)
        for b in backends:
            done = [p for p in rows[b] if "seconds" in p]
            predicted = done[-1]["seconds"] * L / done[-1]["tokens"] if done else 0.0
            if predicted > max_seconds or any("skipped" in p for p in rows[b]):
                rows[b].append({"tokens": L, "skipped": f"predicted {predicted:.0f} s"})
                continue
            s = seconds(op, args, b, 1 if b == "ref" else repeat)
            rows[b].append({"tokens": L, "seconds": s, "tokens_per_s": L / s})
            print(f"  {op:14s} {b:6s} {L:6d}: {L / s:10.0f} tok/s", file=sys.stderr, flush=True)
    return {"shape": SHAPES[op], "ops_per_token_torch": ops_per_token(op), "runs": rows}


def markdown(results: dict) -> str:
    head = (f"CPU: {results['machine'].get('cpu', '?')}, {results['threads']} threads; load "
            f"{results['load_start']} -> {results['load_end']}; {results['finished']}")
    lines = [head, "", "| op (size) | backend | "
             + " | ".join(f"{L} tok/s" for L in results["lengths"]) + " | torch ops/token |",
             "| --- " * (3 + len(results["lengths"])) + "|"]
    for op, r in results["ops"].items():
        for b, points in r["runs"].items():
            cells = [f"{p['tokens_per_s']:.0f}" if "tokens_per_s" in p else "skipped"
                     for p in points]
            ops = f"{r['ops_per_token_torch']:.2f}" if b == "torch" else ""
            lines.append(f"| {op} ({r['shape']}) | {b} | " + " | ".join(cells) + f" | {ops} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", default=",".join(SHAPES))
    p.add_argument("--lengths", default=",".join(map(str, DEFAULT_LENGTHS)))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--max-seconds", type=float, default=30.0,
                   help="skip a length whose predicted time passes this")
    p.add_argument("--out", type=Path, default=HERE / "out")
    opts = p.parse_args(argv)
    lengths = sorted(int(x) for x in opts.lengths.split(","))
    backends = ["native", "torch", "ref"] if native.available() else ["torch", "ref"]
    results = {"machine": machine(), "threads": torch.get_num_threads(),
               "load_start": loadavg(), "lengths": lengths, "ops": {}}
    for op in opts.ops.split(","):
        results["ops"][op] = bench(op, lengths, backends, opts.repeat, opts.max_seconds)
    finish(results, opts.out, "ops", markdown)


if __name__ == "__main__":
    main()
