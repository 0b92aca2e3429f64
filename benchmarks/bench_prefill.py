"""Prefill speed and memory: lm-eval's stock ``hf`` against our ``lc_hf``, side by side.

On one machine, in one process tree, for each model config (random weights built locally, or
a real model's GGUF weights from an installed package: ``smollm2``, ``gemma3``):

* the machine's own fp32 GEMM rate (the faster of torch's default GEMM and oneDNN's), which
  with 2 x (params outside the embedding and the output head) FLOPs per token gives the
  weights-only roofline (the embedding is a lookup; the head runs only where logits are
  needed), and with attention's QKᵀ and PV FLOPs over the causal context added
  (``roofline.py``), the full roofline of each length;
* one ``loglikelihood`` request per input length, each in its own subprocess so that its
  peak RSS is its own: tokens/s, peak RSS, speedup, share of the roofline, memory growth;
* ``generate_until`` on a passkey prompt (16k tokens by default): time to answer.

A measurement whose memory or time, extrapolated from the shorter lengths, would exceed
``--mem-limit-gb`` or ``--max-seconds`` is reported as skipped, as are longer lengths after it.
Results go to ``<out>/prefill.json`` and ``<out>/prefill.md``; the Markdown is also printed.

    python benchmarks/bench_prefill.py                          # every random-weight config (over an hour)
    python benchmarks/bench_prefill.py --configs mamba --lengths 2048,4096 --no-passkey
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from configs import CONFIGS, NATIVE, REAL, baseline, description
from roofline import rooflines

MEASURE = HERE / "measure.py"
DEFAULT_LENGTHS = [2048, 4096, 8192, 16384, 32768, 65536]


def machine() -> dict:
    info = {"python": platform.python_version(), "cores": os.cpu_count()}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(ln.split(":", 1)[1].strip() for ln in cpu.splitlines()
                           if ln.startswith("model name"))
        mem = Path("/proc/meminfo").read_text().splitlines()
        info["mem_total_gb"] = int(mem[0].split()[1]) / 2**20
        info["mem_available_gb"] = next(int(ln.split()[1]) for ln in mem
                                        if ln.startswith("MemAvailable")) / 2**20
    except (OSError, StopIteration):
        pass
    import torch

    info["torch"] = torch.__version__
    return info


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def child(args: list[str], timeout: float) -> dict:
    """Run measure.py in a fresh process; its last stdout line is JSON."""
    cmd = [sys.executable, str(MEASURE), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    return json.loads(lines[-1])


def extrapolate(points: list[dict], length: int, key: str) -> float | None:
    """Linear extrapolation of ``key`` to ``length`` through the last two measured points."""
    done = [p for p in points if key in p]
    if len(done) < 2:
        return None
    (l1, v1), (l2, v2) = [(p["tokens"], p[key]) for p in done[-2:]]
    return v2 + (v2 - v1) / (l2 - l1) * (length - l2)


def sweep(mode, model, path, lengths, opts) -> list[dict]:
    """Measure ``model`` at each length, shortest first, skipping what will not fit."""
    points: list[dict] = []
    skip_reason = None
    for length in lengths:
        if skip_reason is None:
            rss = extrapolate(points, length, "peak_rss_mb")
            secs = extrapolate(points, length, "seconds")
            if rss is not None and rss / 1024 > opts.mem_limit_gb:
                skip_reason = f"predicted {rss / 1024:.0f} GB > {opts.mem_limit_gb:.0f} GB"
            elif secs is not None and secs > opts.max_seconds:
                skip_reason = f"predicted {secs:.0f} s > {opts.max_seconds:.0f} s"
        if skip_reason is not None:
            points.append({"tokens": length, "skipped": skip_reason})
            skip_reason = "a shorter length was skipped"
            continue
        name, _, extra = model.partition(":")  # e.g. "lc_hf:dtype=bfloat16"
        if name == "lc_hf" and opts.lc_model_args:
            extra = ",".join(x for x in (opts.lc_model_args, extra) if x)
        args = [mode, name, str(path), str(length)] + (["--model_args", extra] if extra else [])
        runs = [child(args, timeout=opts.max_seconds * 3 + 300) for _ in range(opts.repeat)]
        good = [r for r in runs if "error" not in r]
        if not good:
            points.append({"tokens": length, **runs[-1]})
            skip_reason = "an earlier length failed"
            continue
        best = max(good, key=lambda r: r["tokens_per_s"])
        best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in good)
        best["all_tokens_per_s"] = [r["tokens_per_s"] for r in good]
        best["loadavg"] = loadavg()
        points.append(best)
        print(f"  {model:6s} {mode:13s} {length:6d} tok: {best['tokens_per_s']:8.1f} tok/s, "
              f"peak RSS {best['peak_rss_mb'] / 1024:.2f} GB (load {best['loadavg']})",
              file=sys.stderr, flush=True)
    return points


def passkey(model, path, ll_points, opts) -> list[dict]:
    """generate_until at ``--passkey-tokens``, unless loglikelihood showed it will not fit."""
    n = opts.passkey_tokens
    at = next((q for q in ll_points if q["tokens"] == n), None)
    if at is not None and "skipped" in at:
        return [{"tokens": n, "skipped": at["skipped"]}]
    rss = extrapolate([q for q in ll_points if q["tokens"] <= n], n, "peak_rss_mb")
    if rss is not None and rss / 1024 > opts.mem_limit_gb:
        return [{"tokens": n, "skipped": f"predicted {rss / 1024:.0f} GB"}]
    return sweep("generate", model, path, [n], opts)


def _cell(point: dict | None, value) -> str:
    """A table cell: ``value(point)`` for a measured point, else why there is none."""
    if point is None:
        return "-"
    if "skipped" in point:
        return f"skipped ({point['skipped']})"
    if "error" in point:
        return f"error ({point['error'][:60]})"
    return value(point)


def _rate(p: dict) -> str:
    return f"{p['tokens_per_s']:.0f}"


def _rss(p: dict) -> str:
    return f"{p['peak_rss_mb'] / 1024:.2f}"


def _variant_notes(ll: dict) -> list[str]:
    """How far each model's log-likelihoods are from those of the model it is compared with:
    a ``NAME:ARGS`` column from plain NAME's, any other column from the baseline's (the first)."""
    notes = []
    models = list(ll)
    for model, points in ll.items():
        name = model.partition(":")[0]
        base = name if model != name and name in ll else models[0]
        if model == base:
            continue
        diffs = []
        for p in points:
            q = next((q for q in ll[base] if q["tokens"] == p["tokens"]), None)
            if q and "loglikelihood" in p and "loglikelihood" in q:
                diffs.append(f"{abs(p['loglikelihood'] - q['loglikelihood']):.3g} "
                             f"at {p['tokens']}")
        if diffs:
            notes += ["", f"{model} vs {base}, |difference in the request's log-likelihood| "
                      f"(nats, 8 continuation tokens): " + ", ".join(diffs) + "."]
    return notes


def _kv_accounting(points: list[dict]) -> list[str]:
    """For a model with a KV cache: lc_hf's peak RSS against what it must hold, the process
    before the request (weights, runtime) plus the request's KV cache by arithmetic."""
    done = [p for p in points if p.get("lc_kv_bytes_per_token") and "rss_before_request_mb" in p]
    if not done:
        return []
    parts = []
    for p in done:
        before = p["rss_before_request_mb"] / 1024
        kv = p["lc_kv_bytes_per_token"] * p["tokens"] / 2**30
        parts.append(f"{p['tokens']}: {before:.2f} + {kv:.2f} = {before + kv:.2f} GB, peak "
                     f"{p['peak_rss_mb'] / 1024:.2f} GB ({p['peak_rss_mb'] / 1024 / (before + kv):.2f}x)")
    return ["", "lc_hf's peak RSS against the process before the request (weights, runtime) "
            "plus the request's KV cache (KV bytes per token x tokens): " + "; ".join(parts) + "."]


def markdown(results: dict) -> str:
    m = results["machine"]
    gemm = results["gemm"].get("gemm_gflops", float("nan"))
    by = results["gemm"].get("gemm_by_backend", {})
    each = " (" + ", ".join(f"{k} {v:.0f}" for k, v in by.items()) + ")" if by else ""
    machine_line = (
        f"Machine: {m.get('cpu', '?')}, {m.get('cores')} cores, "
        f"{m.get('mem_total_gb', 0):.0f} GiB; torch {m.get('torch')}, fp32, "
        f"{results['gemm'].get('threads', '?')} threads; GEMM {gemm:.0f} GFLOP/s{each}; "
        f"load average {results['load_start']} at start, {results['load_end']} at end."
    )
    lines = [machine_line, ""]
    for name, res in results["configs"].items():
        ll = res["loglikelihood"]
        sizes = next(((p["params"], p["params_nonembedding"]) for pts in ll.values()
                      for p in pts if "params" in p), None)
        roof = rooflines(gemm, sizes[1], 1, 0.0)[0] if sizes else None  # the same at any length
        head = f"### {description(name)}"
        if sizes:
            head += (f": {sizes[0] / 1e6:.1f}M params ({sizes[1] / 1e6:.1f}M outside embedding "
                     f"and head), GEMM roofline {roof:.0f} tok/s")
        lines += [head, "", "One loglikelihood request; peak RSS of the whole process.", ""]
        models = list(ll)
        cols = ["input tokens"]
        for model in models:
            cols += [f"{model} tok/s", f"{model} peak RSS (GB)"]
        base = models[0]  # the baseline comes first
        if "lc_hf" in models and base != "lc_hf":
            cols += [f"speedup over {base}"]
        target = "lc_hf" if "lc_hf" in models else models[-1]
        attention = any(p.get("attn_flops") for p in ll[target])
        if roof:
            cols += [f"{target} share of roofline"]
            if attention:
                cols += [f"{target} share of full roofline"]
        lines += ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        lengths = sorted({p["tokens"] for pts in ll.values() for p in pts})
        for length in lengths:
            at = {mdl: next((p for p in ll[mdl] if p["tokens"] == length), None)
                  for mdl in models}
            row = [str(length)]
            for model in models:
                row += [_cell(at[model], _rate), _cell(at[model], _rss)]
            if f"speedup over {base}" in cols:
                a, b = at.get(base), at.get("lc_hf")
                ok = a and b and "tokens_per_s" in a and "tokens_per_s" in b
                row.append(f"{b['tokens_per_s'] / a['tokens_per_s']:.1f}x" if ok else "-")
            if roof:
                last = at[target]
                done = last and "tokens_per_s" in last
                row.append(f"{last['tokens_per_s'] / roof:.0%}" if done else "-")
                if attention:
                    full = rooflines(gemm, sizes[1], length, last["attn_flops"])[1] if done else 0
                    row.append(f"{last['tokens_per_s'] / full:.0%}" if done else "-")
            lines.append("| " + " | ".join(row) + " |")
        growth = []
        for model in models:
            done = [p for p in ll[model] if "peak_rss_mb" in p]
            if len(done) >= 2:
                growth.append(f"{model} {done[-1]['peak_rss_mb'] / done[0]['peak_rss_mb']:.2f}x "
                              f"({done[0]['tokens']} -> {done[-1]['tokens']} tokens)")
        if growth:
            lines += ["", "Peak RSS growth: " + "; ".join(growth) + "."]
        lines += _variant_notes(ll) + _kv_accounting(ll.get("lc_hf", []))
        gen = res.get("generate", {})
        if gen:
            parts = []
            for model, pts in gen.items():
                p = pts[0] if pts else None
                parts.append(f"{model} " + _cell(p, lambda q: f"{q['seconds']:.1f} s"))
            a, b = (gen.get(k, [None])[0] for k in ("hf", "lc_hf"))
            if a and b and "seconds" in a and "seconds" in b:
                parts.append(f"speedup {a['seconds'] / b['seconds']:.1f}x")
            n = results["passkey_tokens"]
            lines += ["", f"generate_until on a {n}-token passkey prompt, time to answer "
                      "(8 new tokens at most): " + ", ".join(parts) + "."]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [*CONFIGS, *NATIVE, *REAL]
    p.add_argument("--configs", default=",".join([*CONFIGS, *NATIVE]),
                   help="comma list of " + ",".join(names) + " (default: all but the real "
                   "models, which need their packages)")
    p.add_argument("--lengths", default=",".join(map(str, DEFAULT_LENGTHS)))
    p.add_argument("--models", default=None,
                   help="lm-eval model names, baseline first; NAME:ARGS adds model_args, e.g. "
                        "lc_hf:dtype=bfloat16 (default: each config's baseline, then lc_hf: hf "
                        "for transformers configs, rwkv_pkg for rwkv6 and rwkv7, none for mamba_ssm)")
    p.add_argument("--passkey-tokens", type=int, default=16384)
    p.add_argument("--no-passkey", action="store_true")
    p.add_argument("--repeat", type=int, default=1, help="runs per point; the best is kept")
    p.add_argument("--mem-limit-gb", type=float, default=None,
                   help="skip what would pass this peak RSS (default: 80%% of available)")
    p.add_argument("--max-seconds", type=float, default=900.0)
    p.add_argument("--lc-model-args", default="", help="extra model_args for lc_hf")
    p.add_argument("--out", type=Path, default=HERE / "out")
    opts = p.parse_args(argv)
    info = machine()
    if opts.mem_limit_gb is None:
        opts.mem_limit_gb = 0.8 * info.get("mem_available_gb", 8.0)
    lengths = sorted(int(x) for x in opts.lengths.split(","))
    results = {"machine": info, "load_start": loadavg(), "lengths": lengths,
               "passkey_tokens": opts.passkey_tokens, "configs": {},
               "command": " ".join([Path(sys.executable).name, *sys.argv])}
    print(f"GEMM rate (load {loadavg()}) ...", file=sys.stderr, flush=True)
    results["gemm"] = child(["gemm"], timeout=300)
    for name in opts.configs.split(","):
        if name not in names:
            raise SystemExit(f"unknown config {name!r}; choose from {', '.join(names)}")
        models = (opts.models.split(",") if opts.models
                  else [m for m in (baseline(name), "lc_hf") if m])
        built = child(["build", name, str(opts.out / "ckpt" / name)], timeout=900)
        if "error" in built:
            raise SystemExit(f"building the {name} checkpoint failed: {built['error']}")
        path = Path(built["path"])  # a real model's .gguf file, or the checkpoint built
        print(f"{name}: {description(name)}", file=sys.stderr, flush=True)
        res = {"loglikelihood": {}, "generate": {}}
        for model in models:
            res["loglikelihood"][model] = sweep("loglikelihood", model, path, lengths, opts)
            if not opts.no_passkey and model != "rwkv_pkg":
                res["generate"][model] = passkey(model, path, res["loglikelihood"][model], opts)
        results["configs"][name] = res
    finish(results, opts.out, "prefill", markdown)


def finish(results: dict, out: Path, stem: str, to_markdown) -> None:
    """Stamp the end of a run, write ``<out>/<stem>.json`` and ``.md``, print the Markdown."""
    results["load_end"] = loadavg()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2))
    text = to_markdown(results)
    (out / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
