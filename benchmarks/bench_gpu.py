"""Prefill on a CUDA GPU: stock ``hf`` against ``lc_hf``, fp32 and bf16, side by side.

The GPU counterpart of ``bench_prefill.py``, for whoever has a GPU machine (none was lent
where this was written; see the README's Performance section). For Mamba2-130m- and
Llama-160m-sized random models (``configs.py``), each dtype and each input length, one
``loglikelihood`` request per measurement, each in its own process (``measure.py``):
tokens/s and peak CUDA memory (``torch.cuda.max_memory_allocated`` over the request), and
the ratio lc_hf / hf. Once a model fails at a length (out of memory, say), its longer
lengths are reported as skipped. Results go to ``<out>/gpu.json`` and ``<out>/gpu.md``.

    python benchmarks/bench_gpu.py                                  # 4k-64k, fp32 and bf16
    python benchmarks/bench_gpu.py --device cpu --lengths 512 --dtypes float32   # a smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_prefill import child, finish, loadavg, machine, sweep
from configs import description

DEFAULT_LENGTHS = [4096, 8192, 16384, 32768, 65536]
MODELS = ("hf", "lc_hf")


def _cell(point: dict, key: str, scale: float = 1.0, fmt: str = "{:.0f}") -> str:
    if "skipped" in point:
        return "skipped"
    if "error" in point:
        return "failed"
    return fmt.format(point[key] / scale) if key in point else "-"


def markdown(results: dict) -> str:
    header = ("| config | dtype | input tokens | hf tok/s | hf peak GB | lc_hf tok/s | "
              "lc_hf peak GB | speedup | memory ratio |")
    lines = [f"Device: {results['device']}; load {results['load_start']} -> {results['load_end']}",
             "", header, "| --- " * 9 + "|"]
    for key, points in results["runs"].items():
        name, dtype = key.split("/")
        for hf, lc in zip(points["hf"], points["lc_hf"], strict=True):
            ok = all("tokens_per_s" in p for p in (hf, lc))
            speed = f"{lc['tokens_per_s'] / hf['tokens_per_s']:.2f}x" if ok else "-"
            mem = (f"{lc['cuda_peak_mb'] / hf['cuda_peak_mb']:.2f}x"
                   if ok and "cuda_peak_mb" in hf and "cuda_peak_mb" in lc else "-")
            lines.append(f"| {name} | {dtype} | {hf['tokens']} | {_cell(hf, 'tokens_per_s')} | "
                         f"{_cell(hf, 'cuda_peak_mb', 1024, '{:.2f}')} | "
                         f"{_cell(lc, 'tokens_per_s')} | "
                         f"{_cell(lc, 'cuda_peak_mb', 1024, '{:.2f}')} | {speed} | {mem} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="mamba2,llama")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--lengths", default=",".join(map(str, DEFAULT_LENGTHS)))
    p.add_argument("--device", default="cuda")
    p.add_argument("--max-seconds", type=float, default=120.0,
                   help="skip a length predicted to take longer than this")
    p.add_argument("--out", type=Path, default=HERE / "out")
    opts = p.parse_args(argv)
    if opts.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("bench_gpu: error: no CUDA device here; pass --device cpu for a "
                             "smoke run, or run it on a GPU machine")
    lengths = sorted(int(x) for x in opts.lengths.split(","))
    # sweep() reads these: the memory check is off (GPU memory is not RSS), no extra lc_hf args.
    opts.mem_limit_gb, opts.lc_model_args, opts.repeat = float("inf"), "", 1
    results = {"machine": machine(), "device": opts.device, "load_start": loadavg(),
               "lengths": lengths, "runs": {},
               "command": " ".join([Path(sys.executable).name, *sys.argv])}
    for name in opts.configs.split(","):
        path = opts.out / "ckpt" / name
        built = child(["build", name, str(path)], timeout=900)
        if "error" in built:
            raise SystemExit(f"building the {name} checkpoint failed: {built['error']}")
        print(f"{name}: {description(name)}", file=sys.stderr, flush=True)
        for dtype in opts.dtypes.split(","):
            extra = f"device={opts.device},dtype={dtype}"
            results["runs"][f"{name}/{dtype}"] = {
                model: sweep("loglikelihood", f"{model}:{extra}", path, lengths, opts)
                for model in MODELS}
    finish(results, opts.out, "gpu", markdown)


if __name__ == "__main__":
    main()
