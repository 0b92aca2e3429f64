"""Loss by position: the position buckets of one long document against one pass over it.

``lc_ppl_<len>`` asks one loglikelihood request per position bucket of a document, each with
the whole document before it as context. Scored one by one, the buckets would feed every
prefix again (about twice the document at any length); ``lc_hf`` serves them in one pass
(``lc_models.shared_prefix``). In one process, on the same random-weight checkpoint
(``benchmarks/configs.py``, character tokenizer), this times:

* **one pass**: a single loglikelihood request over the whole document (after its first word:
  the same tokens, every position's logits);
* **buckets**: the ``lc_ppl`` requests of that document through ``lc_hf``;
* **buckets, unshared** (unless ``--no-unshared``): the same requests planned one pass per
  context, as ``lc_hf`` did before prefix sharing.

The runs alternate (one pass, buckets, unshared, then again) and the fastest of
``--repeat`` counts. Each is timed in wall-clock seconds and in the CPU seconds of this
process (all its threads): on a shared machine the CPU time is what other jobs disturb least.
Results: ``<out>/buckets.json`` and ``.md``.

    python benchmarks/bench_buckets.py --config mamba2 --length 32768
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_prefill import finish, loadavg, machine
from configs import CONFIGS, NATIVE, build_checkpoint, description


def unshared(requests):
    """``plan_passes`` without riders: one pass per distinct context."""
    from lc_models.shared_prefix import Pass

    by_context: dict = {}
    for i, (context, _) in enumerate(requests):
        by_context.setdefault(tuple(context), []).append(i)
    return [Pass(c, by_context[c]) for c in sorted(by_context, key=len, reverse=True)]


def timed(lm, requests) -> tuple[tuple[float, float], list]:
    """``((wall seconds, CPU seconds of this process), results)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = lm.loglikelihood(requests, disable_tqdm=True)
    return (time.perf_counter() - wall, time.process_time() - cpu), out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="mamba2", choices=sorted({*CONFIGS, *NATIVE}))
    parser.add_argument("--length", type=int, default=32768)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-unshared", action="store_true",
                        help="skip the unshared run (it feeds about twice the document)")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    opts = parser.parse_args(argv)

    from lm_eval.api.instance import Instance

    from lc_models.adapter import LongContextLM
    from lc_tasks.generators import generate
    from lc_tasks.generators.ppl import bucket_requests
    from lc_tasks.options import task_spec

    results = {"machine": machine(), "load_start": loadavg(), "config": opts.config,
               "description": description(opts.config), "length": opts.length,
               "chunk_size": opts.chunk_size, "threads": os.environ.get("OMP_NUM_THREADS")}
    with tempfile.TemporaryDirectory() as tmp:
        path = build_checkpoint(opts.config, Path(tmp) / "ckpt")
        lm = LongContextLM(pretrained=str(path), chunk_size=opts.chunk_size, device="cpu",
                           dtype="float32")
        doc = generate(task_spec("ppl", opts.length, num_samples=1, haystack="noise"),
                       lm.tokenizer)[0]
        pairs = bucket_requests(doc)
        whole = [Instance("loglikelihood", {}, (pairs[0][0], doc["input"][len(pairs[0][0]):]),
                          0)]
        buckets = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
        runs = {"one pass": [], "buckets": [], "buckets, unshared": []}
        sums = {}
        for _ in range(opts.repeat):
            seconds, out = timed(lm, whole)
            runs["one pass"].append(seconds)
            sums["one pass"] = out[0][0]
            seconds, out = timed(lm, buckets)
            runs["buckets"].append(seconds)
            sums["buckets"] = sum(ll for ll, _ in out)
            if not opts.no_unshared:
                with mock.patch("lc_models.adapter.plan_passes", unshared):
                    seconds, out = timed(lm, buckets)
                runs["buckets, unshared"].append(seconds)
                sums["buckets, unshared"] = sum(ll for ll, _ in out)
            print(f"  {', '.join(f'{k} {v[-1][0]:.1f} s' for k, v in runs.items() if v)} "
                  f"(load {loadavg()})", file=sys.stderr, flush=True)
    results["seconds"] = {k: min(w for w, _ in v) for k, v in runs.items() if v}
    results["cpu_seconds"] = {k: min(c for _, c in v) for k, v in runs.items() if v}
    results["all_seconds"] = {k: v for k, v in runs.items() if v}
    results["loglikelihood"] = sums
    results["tokens"] = doc["n_tokens"]
    results["buckets"] = [b["label"] for b in doc["buckets"]]
    finish(results, opts.out, "buckets", markdown)


def markdown(r: dict) -> str:
    wall, cpu = r["seconds"], r["cpu_seconds"]
    rows = "".join(
        f"| {name} | {wall[name]:.1f} | {wall[name] / wall['one pass']:.2f}x | {cpu[name]:.1f} | "
        f"{cpu[name] / cpu['one pass']:.2f}x | {r['loglikelihood'][name]:.2f} |\n"
        for name in wall)
    m = r["machine"]
    return (
        f"# Position buckets against one pass\n\n"
        f"{r['description']}, fp32, random weights; one {r['tokens']}-token document "
        f"(`lc_ppl_{r['length'] // 1024}k`, buckets {', '.join(r['buckets'])}), chunk_size "
        f"{r['chunk_size']}; fastest of {len(r['all_seconds']['one pass'])} runs each, "
        f"alternating.\n\n"
        f"| requests | wall s | against one pass | CPU s | against one pass | "
        f"log-likelihood (sum) |\n| --- | --- | --- | --- | --- | --- |\n{rows}\n"
        f"Machine: {m.get('cpu', '?')}, {m.get('cores')} cores, torch {m.get('torch')}; "
        f"load average {r['load_start']} before, {r['load_end']} after.\n"
    )


if __name__ == "__main__":
    main()
