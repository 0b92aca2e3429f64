"""Task generation speed: lc-eval's niah_single vs lm-eval's RULER niah_single_1.

    python benchmarks/bench_tasks.py                 # 20 samples at 131072 tokens
    python benchmarks/bench_tasks.py --with-1m       # also lc_niah_single_1m, 3 samples
    python benchmarks/bench_tasks.py --first-request # time to the first request, cold/warm

Three measurements:

* the generators themselves (``generate`` against RULER's ``generate_samples``), 20 docs;
* the same 20 docs of ours built through lm-eval's task load (``TaskManager``), as a user meets
  them (RULER's task load always builds its 500 docs per length, whatever ``--limit`` says);
* ``--first-request``: the time from a fresh process to the first request of
  ``lc_niah_single_128k`` and ``_1m`` with ``--limit 2`` (what ``lc-eval run`` builds: 2 docs),
  with a cold doc cache and a warm one, beside one tokenizer pass over the docs it built; the
  "docs" part is the task's data builder alone, with the tokenizer already loaded (as in a run,
  where lc-eval's checks and the model load it first).

Both sides get the same offline byte-level BPE tokenizer (``lc_models.zoo.tiny``),
saved to a temporary folder and loaded back with ``AutoTokenizer``, and build
the same task: one word key -> 7-digit number needle in RULER's repeated
noise, sized to the same length. lm-eval's RULER sizes its haystack by growing
it 25 lines at a time and re-tokenizing the whole prompt at every step;
lc-eval searches on cached piece counts and encodes each final prompt once or
twice. Prints a table and writes JSON (``--out``).

Needs lm-eval's RULER extras: ``pip install wonderwords nltk``. lm-eval's
module asks nltk to download its sentence splitter on import; niah_single_1
does not use it, so the download is skipped here (no network needed).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_tokenizer(folder: str):
    from transformers import AutoTokenizer

    from lc_models.zoo.tiny import build_tokenizer

    build_tokenizer("bpe").save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def ours(tokenizer, length: int, samples: int) -> dict:
    from lc_tasks.generators import generate
    from lc_tasks.options import task_spec

    start = time.perf_counter()
    docs = generate(task_spec("niah_single", length, num_samples=samples), tokenizer, seed=42)
    seconds = time.perf_counter() - start
    fills = [(d["n_tokens"] + 128) / length for d in docs]
    return {"seconds": seconds, "samples": len(docs), "fill_min": min(fills),
            "fill_mean": statistics.mean(fills),
            "tokens_mean": statistics.mean(d["n_tokens"] for d in docs)}


TASK_LOAD = r"""
import json, sys, time
start = time.perf_counter()
from lm_eval.tasks import TaskManager
import lc_tasks
from lc_tasks import dataset
spent = []
original = dataset.docs
def timed(*args, **kwargs):
    begin = time.perf_counter()
    out = original(*args, **kwargs)
    spent.append(time.perf_counter() - begin)
    return out
dataset.docs = timed
folder, length, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
from lc_tasks.tokenizer import load_tokenizer
load_tokenizer(folder)  # as in a run: lc-eval's checks (and lc_hf) load it before the tasks
metadata = {"tokenizer": folder, "num_samples": samples}
manager = TaskManager(include_path=lc_tasks.include_path(), include_defaults=False,
                      metadata=metadata)
task = next(iter(manager.load([f"lc_niah_single_{length}"])["tasks"].values()))
task.build_all_requests(limit=samples, rank=0, world_size=1)
seconds = time.perf_counter() - start
docs = list(task.test_docs())
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(folder)
start = time.perf_counter()
for doc in docs:
    tok(doc["input"])
print(json.dumps({"seconds": seconds, "docs_seconds": sum(spent), "docs": len(docs),
                  "one_tokenizer_pass": time.perf_counter() - start}))
"""


def task_load(folder: str, label: str, samples: int, cache: str) -> dict:
    """Seconds from a fresh process to the first request of lc_niah_single_<label>."""
    import os
    import subprocess

    env = {**os.environ, "LC_EVAL_CACHE": cache, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", TASK_LOAD, folder, label, str(samples)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def first_requests(folder: str) -> list[dict]:
    rows = []
    for label in ("128k", "1m"):
        with tempfile.TemporaryDirectory() as cache:
            cold = task_load(folder, label, 2, cache)
            warm = task_load(folder, label, 2, cache)
        rows.append({"task": f"lc_niah_single_{label}", "cold": cold, "warm": warm})
    return rows


def ruler(tokenizer, length: int, samples: int) -> dict:
    import nltk

    nltk.download = lambda *args, **kwargs: False  # see the module docstring
    start = time.perf_counter()
    from lm_eval.tasks.ruler.niah_utils import TEMPLATE
    from lm_eval.tasks.ruler.prepare_niah import generate_samples, get_haystack

    import_seconds = time.perf_counter() - start
    start = time.perf_counter()
    docs = generate_samples(
        get_haystack(type_haystack="repeat"),
        max_seq_length=length,
        template=TEMPLATE,
        type_haystack="repeat",
        type_needle_k="words",
        type_needle_v="numbers",
        num_samples=samples,
        TOKENIZER=tokenizer,
    )
    seconds = time.perf_counter() - start
    # RULER counts the prompt without its answer prefix (lm-eval adds it as gen_prefix).
    fills = [d["length"] / length for d in docs]
    return {"seconds": seconds, "import_seconds": import_seconds, "samples": len(docs),
            "fill_min": min(fills), "fill_mean": statistics.mean(fills),
            "tokens_mean": statistics.mean(d["length"] - 128 for d in docs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=131072)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--with-1m", action="store_true",
                        help="also time lc_niah_single_1m (3 samples, ours only)")
    parser.add_argument("--first-request", action="store_true",
                        help="also time the first request of lc_niah_single_128k and _1m, "
                             "--limit 2, with a cold and a warm doc cache")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "bench_tasks.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        tok = load_tokenizer(folder)
        result = {
            "machine": f"{platform.processor() or platform.machine()}, "
                       f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}",
            "tokenizer": "lc_models.zoo.tiny byte-level BPE (vocab 512), loaded by AutoTokenizer",
            "length": args.length,
            "requested_samples": args.samples,
            "lc_eval": ours(tok, args.length, args.samples),
            "lm_eval_ruler": ruler(tok, args.length, args.samples),
        }
        label = f"{args.length // 1024}k"
        with tempfile.TemporaryDirectory() as cache:  # cold: every doc is built
            result["lc_eval_task_load"] = task_load(folder, label, args.samples, cache)
        if args.first_request:
            result["first_request"] = first_requests(folder)
        result["speedup"] = result["lm_eval_ruler"]["seconds"] / result["lc_eval"]["seconds"]
        if args.with_1m:
            result["lc_eval_1m"] = ours(tok, 1 << 20, 3)

    rows = [("lc-eval niah_single", result["lc_eval"]),
            ("lm-eval RULER niah_single_1", result["lm_eval_ruler"])]
    if "lc_eval_1m" in result:
        rows.append(("lc-eval niah_single, 1m", result["lc_eval_1m"]))
    print(f"| generator ({args.samples} samples at {args.length} tokens) | seconds | "
          "s/sample | mean prompt tokens | min fill |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in rows:
        print(f"| {name} | {r['seconds']:.1f} | {r['seconds'] / r['samples']:.2f} | "
              f"{r['tokens_mean']:.0f} | {r['fill_min']:.4f} |")
    print(f"\nlc-eval is {result['speedup']:.1f}x faster "
          f"(lm-eval's RULER module import, not timed above: "
          f"{result['lm_eval_ruler']['import_seconds']:.1f} s)")
    load = result["lc_eval_task_load"]
    print(f"lc-eval's {load['docs']} docs through lm-eval's task load, from a fresh process: "
          f"{load['seconds']:.1f} s ({result['lm_eval_ruler']['seconds'] / load['seconds']:.2f}x "
          "RULER's generator time above)")
    for row in result.get("first_request", []):
        cold, warm = row["cold"], row["warm"]
        print(f"{row['task']} --limit 2, first request: cold {cold['seconds']:.1f} s (docs "
              f"{cold['docs_seconds']:.2f} s, {cold['docs_seconds'] / cold['one_tokenizer_pass']:.1f}x "
              f"one tokenizer pass of {cold['one_tokenizer_pass']:.2f} s over them), warm "
              f"{warm['seconds']:.1f} s (docs {warm['docs_seconds']:.2f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
