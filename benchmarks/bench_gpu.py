"""Prefill on a CUDA GPU: stock ``hf`` against ``lc_hf`` on both kernel paths, fp32 and bf16.

The GPU counterpart of ``bench_prefill.py``, for whoever has a GPU machine (none was lent
where this was written: it has not run on a GPU; see docs/performance.md). For
every family, at real small sizes with random weights (``configs.py``: Mamba-130m,
Mamba2-130m, RWKV-6-170m, RWKV-7-190m, RecurrentGemma's layout at d_model 768, Llama-160m),
each dtype and each input length, one ``loglikelihood`` request per measurement, each in its
own process (``measure.py``): tokens/s and peak CUDA memory (``torch.cuda.max_memory_allocated``
over the request) of

* ``hf``: lm-eval's stock model, one full forward (not for the native RWKV ``.pth`` files,
  which only lc_hf loads);
* ``lc_hf kernels=torch``: the portable torch forms of every recurrence (``lc_models.ops``);
* ``lc_hf kernels=auto``: the vendor CUDA kernels where installed (fla, mamba_ssm,
  causal-conv1d; ``pip install lc-eval[cuda]``), else the same torch forms.

Once a model fails at a length (out of memory, say), its longer lengths are reported as
skipped. Results go to ``<out>/gpu.json`` and ``<out>/gpu.md``.

    python benchmarks/bench_gpu.py                                   # 4k-64k, fp32 and bf16
    python benchmarks/bench_gpu.py --lengths 4096,16384 --configs rwkv7,mamba
    python benchmarks/bench_gpu.py --device cpu                      # smoke run, seconds

``--device cpu`` is a smoke run of the script itself: tiny random models of every family,
short lengths (default 64), measured in this process (no peak CUDA memory).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_prefill import child, finish, loadavg, machine, sweep
from configs import CONFIGS, description

DEFAULT_LENGTHS = [4096, 8192, 16384, 32768, 65536]
SMOKE_LENGTHS = [64]
FAMILIES = ("mamba", "mamba2", "rwkv6", "rwkv7", "recurrentgemma", "llama")
# column -> (lm-eval model, extra model args)
VARIANTS = {"hf": ("hf", ""), "lc_hf torch": ("lc_hf", "kernels=torch"),
            "lc_hf auto": ("lc_hf", "kernels=auto")}
TINY_ARCH = {"mamba": "mamba", "mamba2": "mamba2", "recurrentgemma": "recurrent_gemma",
             "llama": "llama"}


def variants(name: str) -> list[str]:
    """The columns measured for ``name``: stock hf only where transformers loads it."""
    return [v for v in VARIANTS if v != "hf" or name in CONFIGS]


def build_tiny(name: str, path: Path) -> Path:
    """A tiny random checkpoint of family ``name`` with the char tokenizer (the smoke run)."""
    from lc_models.zoo.tiny import build_tokenizer, save_tiny_model
    from lc_models.zoo.tiny_native import save_rwkv6, save_rwkv7

    if path.is_dir():
        return path
    if name in TINY_ARCH:
        return save_tiny_model(path, arch=TINY_ARCH[name])
    (save_rwkv6 if name == "rwkv6" else save_rwkv7)(path / "model.pth", "pth")
    build_tokenizer("char").save_pretrained(path / "tokenizer")
    return path


def measure_here(model: str, path: Path, lengths: list[int], extra: str) -> list[dict]:
    """The smoke run's measurements, in this process (``measure.run_request``, warmed up at
    the shortest length rather than its 256 tokens)."""
    import measure

    points = []
    for length in lengths:
        try:
            points.append(measure.run_request("loglikelihood", model, str(path), length, extra,
                                              warmup=min(lengths)))
        except Exception as err:  # noqa: BLE001  (reported in the table, as sweep() does)
            points.append({"tokens": length, "error": f"{type(err).__name__}: {err}"})
    return points


def _cell(point: dict, key: str, scale: float = 1.0, fmt: str = "{:.0f}") -> str:
    if "skipped" in point:
        return "skipped"
    if "error" in point:
        return "failed"
    return fmt.format(point[key] / scale) if key in point else "-"


def _ratio(a: dict | None, b: dict | None) -> str:
    ok = a is not None and b is not None and all("tokens_per_s" in p for p in (a, b))
    return f"{a['tokens_per_s'] / b['tokens_per_s']:.2f}x" if ok else "-"


def markdown(results: dict) -> str:
    names = list(VARIANTS)
    header = ("| config | dtype | input tokens | "
              + " | ".join(f"{v} tok/s | {v} peak GB" for v in names)
              + " | auto / hf | auto / torch |")
    lines = [f"Device: {results['device']}; load {results['load_start']} -> {results['load_end']}",
             "", header, "| --- " * (3 + 2 * len(names) + 2) + "|"]
    for key, points in results["runs"].items():
        name, dtype = key.split("/")
        for i, length in enumerate(results["lengths"]):
            row = {v: points[v][i] if v in points else None for v in names}
            cells = []
            for v in names:
                p = row[v]
                cells += (["-", "-"] if p is None else
                          [_cell(p, "tokens_per_s"), _cell(p, "cuda_peak_mb", 1024, "{:.2f}")])
            lines.append(f"| {name} | {dtype} | {length} | " + " | ".join(cells) + " | "
                         f"{_ratio(row['lc_hf auto'], row['hf'])} | "
                         f"{_ratio(row['lc_hf auto'], row['lc_hf torch'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=",".join(FAMILIES))
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--lengths", default=None,
                   help="input tokens, comma-separated (default 4k-64k; 64 with --device cpu)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--max-seconds", type=float, default=120.0,
                   help="skip a length predicted to take longer than this")
    p.add_argument("--out", type=Path, default=HERE / "out")
    opts = p.parse_args(argv)
    smoke = opts.device == "cpu"
    if not smoke:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("bench_gpu: error: no CUDA device here; pass --device cpu for a "
                             "smoke run, or run it on a GPU machine")
    default = SMOKE_LENGTHS if smoke else DEFAULT_LENGTHS
    lengths = sorted(int(x) for x in opts.lengths.split(",")) if opts.lengths else default
    # sweep() reads these: the memory check is off (GPU memory is not RSS), no extra lc_hf args.
    opts.mem_limit_gb, opts.lc_model_args, opts.repeat = float("inf"), "", 1
    results = {"machine": machine(), "device": opts.device, "smoke": smoke,
               "load_start": loadavg(), "lengths": lengths, "runs": {},
               "command": " ".join([Path(sys.executable).name, *sys.argv])}
    for name in opts.configs.split(","):
        path = opts.out / ("tiny" if smoke else "ckpt") / name
        if smoke:
            build_tiny(name, path)
        else:
            built = child(["build", name, str(path)], timeout=900)
            if "error" in built:
                raise SystemExit(f"building the {name} checkpoint failed: {built['error']}")
            print(f"{name}: {description(name)}", file=sys.stderr, flush=True)
        for dtype in opts.dtypes.split(","):
            runs = {}
            for column in variants(name):
                model, extra = VARIANTS[column]
                extra = ",".join(x for x in (f"device={opts.device},dtype={dtype}", extra) if x)
                runs[column] = (measure_here(model, path, lengths, extra) if smoke else
                                sweep("loglikelihood", f"{model}:{extra}", path, lengths, opts))
            results["runs"][f"{name}/{dtype}"] = runs
    finish(results, opts.out, "gpu", markdown)


if __name__ == "__main__":
    main()
