"""Where lc_hf's prefill time goes, per model family: GEMM, scan, attention, conv, norm, other.

One ``loglikelihood`` request per config and length through lm-eval's ``lc_hf`` (the same code
path as ``bench_prefill.py``: chunked prefill, architecture patches, KV reservation), with a
wall-clock timer around every call of each kind of work:

* **gemm**: every ``nn.Linear`` (projections, MLPs, the output head where it runs);
* **scan**: the SSM / linear-attention scans (``selective_scan``, ``ssd``, ``wkv6``, the
  RG-LRU), including their own small batched matmuls;
* **attention**: softmax attention (transformers' attention functions, mamba_ssm ``MHA``'s);
* **conv**: the depthwise causal convs; **norm**: every module whose class name has "Norm";
* **other**: the rest of the request (embedding, residual adds, activations, rotary, the
  KV cache writes, lm-eval's tokenisation and scoring).

Nested timers count once (a norm inside a timed mixer is the norm's). The CPU runs every op
synchronously, so a timer is the op's own time. Results go to ``<out>/profile.json`` and
``profile.md``; the Markdown is also printed::

    python benchmarks/profile_prefill.py --configs mamba2,llama --lengths 2048,4096
    python benchmarks/profile_prefill.py --configs smollm2 --lengths 4096 --model-args dtype=bfloat16

The roofline shares are the weights-only one and the full one (attention's FLOPs added,
``roofline.py``), both from the fp32 GEMM rate.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_prefill import child, finish, loadavg, machine
from configs import CONFIGS, NATIVE, REAL, build_checkpoint, description, loglikelihood_request
from roofline import attention_flops, rooflines

CATEGORIES = ("gemm", "scan", "attention", "conv", "norm", "other")
# (module, function name) -> category: functions looked up by name at call time
FUNCTIONS = {
    ("lc_models.models.mamba_mixer", "selective_scan"): "scan",
    ("lc_models.models.mamba_mixer", "ssd"): "scan",
    ("lc_models.models.mamba_mixer", "causal_conv1d"): "conv",
    ("lc_models.models.mamba_mixer", "gated_rms_norm"): "norm",
    ("lc_models.models.mixer_model", "causal_conv1d"): "conv",
    ("lc_models.models.mixer_model", "attend"): "attention",
    ("lc_models.models.rwkv6", "wkv6"): "scan",
    ("lc_models.models.rwkv7", "wkv7"): "scan",
}
# transformers module classes timed as a whole (their own forward, not a function they call)
CLASSES = {"RecurrentGemmaRglru": "scan"}


class Timers:
    """Exclusive wall time per category; a timed call inside another counts for itself only."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._children: list[float] = []  # time spent in timed calls nested in each open call

    def wrap(self, category: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            self._children.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                nested = self._children.pop()
                elapsed = time.perf_counter() - start
                self.seconds[category] += elapsed - nested
                if self._children:
                    self._children[-1] += elapsed

        timed.__wrapped__ = fn
        return timed

    def reset(self) -> None:
        self.seconds.clear()


def instrument(model, timers: Timers) -> None:
    """Put a timer around each module and function of a known category in ``model``."""
    import torch
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    for module in model.modules():
        name = type(module).__name__
        category = ("gemm" if isinstance(module, torch.nn.Linear) else CLASSES.get(name)
                    or ("norm" if "norm" in name.lower() else None))
        if category is not None:
            module.forward = timers.wrap(category, module.forward)
        elif isinstance(module, torch.nn.Conv1d):
            module.forward = timers.wrap("conv", module.forward)
    for (where, fn_name), category in FUNCTIONS.items():
        mod = importlib.import_module(where)
        setattr(mod, fn_name, timers.wrap(category, getattr(mod, fn_name)))
    mapping = ALL_ATTENTION_FUNCTIONS._global_mapping
    for key, fn in list(mapping.items()):
        mapping[key] = timers.wrap("attention", fn)


def profile(name: str, lengths: list[int], out: Path, chunk_size: int, repeat: int,
            model_args: str = "") -> list[dict]:
    """Profile one config's lc_hf prefill at each length (in this process); of ``repeat`` runs
    per length the fastest is kept (a shared machine slows some runs, never speeds one up).
    ``model_args`` adds to lc_hf's (e.g. ``dtype=bfloat16``)."""
    import torch
    from lm_eval.api.instance import Instance
    from measure import WARMUP_TOKENS, load_lm, n_params

    path = build_checkpoint(name, out / "ckpt" / name)
    extra = ",".join(x for x in (f"chunk_size={chunk_size}", model_args) if x)
    lm = load_lm("lc_hf", str(path), max(lengths), extra)
    tok = lm.tokenizer if name in REAL else None  # the char tokenizer: characters are tokens
    timers = Timers()
    instrument(lm.model, timers)
    params = n_params(lm)[1]

    def request(n):
        return Instance("loglikelihood", {}, loglikelihood_request(n, tokenizer=tok), 0)

    lm.loglikelihood([request(WARMUP_TOKENS)], disable_tqdm=True)
    rows = []
    for n in lengths:
        runs = []
        for _ in range(repeat):
            timers.reset()
            start = time.perf_counter()
            lm.loglikelihood([request(n)], disable_tqdm=True)
            runs.append((time.perf_counter() - start, dict(timers.seconds)))
        total, timed = min(runs, key=lambda run: run[0])
        seconds = {c: timed.get(c, 0.0) for c in CATEGORIES[:-1]}
        seconds["other"] = total - sum(seconds.values())
        rows.append({"tokens": n, "total_s": total, "tokens_per_s": n / total,
                     "all_tokens_per_s": [n / run[0] for run in runs], "seconds": seconds,
                     "params_nonembedding": params, "threads": torch.get_num_threads(),
                     "attn_flops": attention_flops(lm.model.config, n),
                     "dtype": str(lm.model.dtype).removeprefix("torch."),
                     "loadavg": loadavg()})
        print(f"  {name} {n}: {n / total:.0f} tok/s, "
              + ", ".join(f"{c} {s / total:.0%}" for c, s in seconds.items())
              + f" (load {loadavg()})", file=sys.stderr, flush=True)
    return rows


def markdown(results: dict) -> str:
    m = results["machine"]
    gemm = results["gemm"].get("gemm_gflops", float("nan"))
    by = results["gemm"].get("gemm_by_backend", {})
    each = " (" + ", ".join(f"{k} {v:.0f}" for k, v in by.items()) + ")" if by else ""
    head = (f"Machine: {m.get('cpu', '?')}, {m.get('cores')} cores; torch {m.get('torch')}, "
            f"fp32; GEMM {gemm:.0f} GFLOP/s{each}; chunk_size {results['chunk_size']}; load average "
            f"{results['load_start']} at start, {results['load_end']} at end.")
    lines = [head, "", "Share of one loglikelihood request's wall time (lc_hf).", "",
             "| config | dtype | tokens | tok/s | roofline share | full roofline share | "
             + " | ".join(CATEGORIES) + " |", "|" + " --- |" * (6 + len(CATEGORIES))]
    for name, rows in results["configs"].items():
        for r in rows:
            roof, full = rooflines(gemm, r["params_nonembedding"], r["tokens"],
                                   r.get("attn_flops", 0.0))
            shares = [f"{r['seconds'][c] / r['total_s']:.0%}" for c in CATEGORIES]
            lines.append(f"| {name} | {r.get('dtype', 'float32')} | {r['tokens']} | "
                         f"{r['tokens_per_s']:.0f} | {r['tokens_per_s'] / roof:.0%} | "
                         f"{r['tokens_per_s'] / full:.0%} | " + " | ".join(shares) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [*CONFIGS, *NATIVE, *REAL]
    p.add_argument("--configs", default="mamba,mamba2,llama",
                   help="comma list of " + ",".join(names))
    p.add_argument("--lengths", default="2048,4096")
    p.add_argument("--chunk-size", type=int, default=1024, help="lc_hf's chunk_size")
    p.add_argument("--repeat", type=int, default=1, help="runs per length; the fastest is kept")
    p.add_argument("--model-args", default="", help="extra model_args for lc_hf, e.g. "
                   "dtype=bfloat16")
    p.add_argument("--out", type=Path, default=HERE / "out")
    opts = p.parse_args(argv)
    lengths = sorted(int(x) for x in opts.lengths.split(","))
    results = {"machine": machine(), "load_start": loadavg(), "chunk_size": opts.chunk_size,
               "configs": {}, "command": " ".join([Path(sys.executable).name, *sys.argv])}
    results["gemm"] = child(["gemm"], timeout=300)
    for name in opts.configs.split(","):
        if name not in names:
            raise SystemExit(f"unknown config {name!r}; choose from {', '.join(names)}")
        print(f"{name}: {description(name)}", file=sys.stderr, flush=True)
        results["configs"][name] = profile(name, lengths, opts.out, opts.chunk_size,
                                            opts.repeat, opts.model_args)
    finish(results, opts.out, "profile", markdown)


if __name__ == "__main__":
    main()
