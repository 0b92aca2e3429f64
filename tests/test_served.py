"""Our tasks through served engines (``lc_eval.served``), against a test-made OpenAI-compatible
server (``fake_server``) that behaves like vLLM or like llama-cpp-python where it matters: the
real ``lc-eval`` CLI, lm-eval's real API models, a real tokenizer with a chat template.

* What the server receives is, byte for byte, what ``lc_hf`` reads: plain, and with the chat
  template rendered on the client (the completions route).
* The chat route continues the answer prefix where the server can, and is refused where it
  cannot.
* Every first-try failure is one line.

The same against llama.cpp's real server and a real checkpoint: ``test_served_llamacpp.py``.
"""

from __future__ import annotations

import importlib.util
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import read_run, run_cli
from fake_server import CHAT_TEMPLATE, FakeServer

from lc_eval import server as http
from lc_tasks.errors import UsageError

SYSTEM = "Reply with the number only."
TASK = ["--tasks", "lc_passkey_1k", "--limit", "2", "--metadata", json.dumps({"num_samples": 2})]
CHAT = ["--apply_chat_template", "--system_instruction", SYSTEM]


@pytest.fixture(scope="module")
def chat_tokenizer(tmp_path_factory):
    """A char tokenizer with a chat template, saved: ``(folder, tokenizer)``."""
    from transformers import AutoTokenizer

    from lc_models.zoo.tiny import build_tokenizer

    folder = tmp_path_factory.mktemp("chat-tok")
    tok = build_tokenizer("char")
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    return folder, AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def bos_tokenizer(tmp_path_factory):
    """A char tokenizer that puts ``<s>`` before a text, with a chat template that starts with
    it (as Llama-3's and Gemma's do): ``(folder, tokenizer)``."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    from lc_models.zoo.tiny import build_tokenizer

    folder = tmp_path_factory.mktemp("bos-tok")
    tok = build_tokenizer("char")
    bos = tok.convert_tokens_to_ids("<s>")
    tok.backend_tokenizer.post_processor = TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", bos)])
    tok.bos_token = "<s>"
    tok.chat_template = "<s>" + CHAT_TEMPLATE
    tok.save_pretrained(folder)
    return folder, AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def servers(chat_tokenizer, bos_tokenizer):
    """vLLM-like and llama-cpp-python-like servers: contexts of 4096, 1500 and 1024 tokens, and
    two whose tokenizer puts a BOS before a text (``bos_tokenizer``)."""
    tok = chat_tokenizer[1]
    made = {"vllm": FakeServer(tok, "vllm", 4096),
            "llamacpp": FakeServer(tok, "llama-cpp-python", 1500),
            "vllm-1k": FakeServer(tok, "vllm", 1024),
            "vllm-bos": FakeServer(bos_tokenizer[1], "vllm", 4096),
            "llamacpp-bos": FakeServer(bos_tokenizer[1], "llama-cpp-python", 4096)}
    yield made
    for fake in made.values():
        fake.close()


def served(fake: FakeServer, route: str = "completions", model: str = "served-model",
           **extra) -> list[str]:
    """``--model local-(chat-)completions --model_args ...`` for a fake server."""
    name = "local-chat-completions" if route == "chat/completions" else "local-completions"
    args = {"model": model, "base_url": fake.url(route), "tokenizer": "{tok}", **extra}
    return ["--model", name, "--model_args", ",".join(f"{k}={v}" for k, v in args.items())]


def lc_eval(tmp_path, chat_tokenizer, *args, check=True):
    folder = chat_tokenizer[0]
    args = [a.replace("{tok}", str(folder)) for a in args]
    return run_cli("lc-eval", "run", *args, "--output_path", str(tmp_path), "--log_samples",
                   check=check)


def sent_contexts(out) -> list[str]:
    """The contexts lm-eval logged for each doc of the run under ``out``, by doc id."""
    [samples] = sorted(out.rglob("samples_*.jsonl"))
    rows = sorted((json.loads(line) for line in samples.read_text().splitlines()),
                  key=lambda r: r["doc_id"])
    return [r["arguments"]["gen_args_0"]["arg_0"] for r in rows]


@pytest.fixture(scope="module")
def lc_hf_prompts(tiny_model, chat_tokenizer, tmp_path_factory):
    """The prompts ``lc_hf`` reads, plain and templated: ``{"plain": [...], "chat": [...]}``."""
    model = tiny_model("llama")
    found = {}
    for kind, extra in (("plain", []), ("chat", CHAT)):
        out = tmp_path_factory.mktemp(f"lc-hf-{kind}")
        lc_eval(out, chat_tokenizer, "--model", "lc_hf", "--model_args",
                f"pretrained={model},tokenizer={{tok}}", "--device", "cpu", *TASK, *extra)
        found[kind] = sent_contexts(out)
    return found


def score(out) -> float:
    return read_run(out)["results"]["lc_passkey_1k"]["acc,none"]


def test_plain_prompts_reach_the_server_as_lc_hf_reads_them(servers, chat_tokenizer,
                                                              lc_hf_prompts, tmp_path):
    fake = servers["vllm"]
    fake.bodies.clear()
    lc_eval(tmp_path, chat_tokenizer, *served(fake, tokenized_requests=False), *TASK)
    assert sorted(fake.prompts()) == sorted(lc_hf_prompts["plain"])
    assert score(tmp_path) == 1.0


def test_chat_over_the_completions_route_is_rendered_on_the_client(servers, chat_tokenizer,
                                                                    lc_hf_prompts, tmp_path):
    fake = servers["llamacpp"]  # a server that could not continue a chat message itself
    fake.bodies.clear()
    lc_eval(tmp_path, chat_tokenizer, *served(fake, tokenized_requests=False), *TASK, *CHAT)
    prompts = fake.prompts()
    assert sorted(prompts) == sorted(lc_hf_prompts["chat"]), "not lc_hf's templated prompts"
    assert all(p.startswith(f"[SYSTEM]\n{SYSTEM}") and p.endswith("The pass key is")
               for p in prompts), "the answer prefix does not continue the assistant turn"
    assert all(isinstance(b["prompt"], str) for b in fake.bodies), "not sent as text"
    assert all(b["repeat_penalty"] == 1.0 for b in fake.bodies), "not greedy: repeats penalized"
    assert score(tmp_path) == 1.0


def test_chat_route_continues_the_final_message_where_the_server_can(servers, chat_tokenizer,
                                                                      lc_hf_prompts, tmp_path):
    fake = servers["vllm"]
    fake.bodies.clear()
    lc_eval(tmp_path, chat_tokenizer, *served(fake, "chat/completions"), *TASK, *CHAT)
    runs = [b for b in fake.bodies if b["max_tokens"] > 1]
    assert runs and all(b["continue_final_message"] is True and b["add_generation_prompt"]
                        is False for b in runs)
    assert sorted(fake.prompts()) == sorted(lc_hf_prompts["chat"])
    assert score(tmp_path) == 1.0


def test_a_task_as_long_as_the_servers_context_runs(servers, chat_tokenizer, lc_hf_prompts,
                                                     tmp_path):
    """lm-eval's client max_length (2048 unless given) becomes the server's 1024 tokens, and a
    task of exactly 1024 tokens runs."""
    fake = servers["vllm-1k"]
    fake.bodies.clear()
    lc_eval(tmp_path, chat_tokenizer, *served(fake, tokenized_requests=False), *TASK)
    assert sorted(fake.prompts()) == sorted(lc_hf_prompts["plain"])
    assert score(tmp_path) == 1.0


def test_a_templated_prompt_holding_a_bos_gets_no_second_one(servers, bos_tokenizer, tmp_path):
    """vLLM would put the tokenizer's BOS before a text that holds one already (lc_hf reads
    one): lc-eval asks it for no special tokens, and the server reads lc_hf's count."""
    fake = servers["vllm-bos"]
    fake.bodies.clear()
    lc_eval(tmp_path, bos_tokenizer, *served(fake, tokenized_requests=False), *TASK, *CHAT)
    runs = [b for b in fake.bodies if b["max_tokens"] > 1]
    tok = bos_tokenizer[1]
    assert runs and all(b["prompt"].startswith("<s>[SYSTEM]") for b in runs)
    assert all(b.get("add_special_tokens") is False for b in runs)
    assert score(tmp_path) == 1.0
    assert tok("Hi")["input_ids"][0] == tok.bos_token_id  # the tokenizer does add one


def test_concurrent_requests_score_the_same(servers, chat_tokenizer, tmp_path):
    fake = servers["vllm"]
    lc_eval(tmp_path, chat_tokenizer, *served(fake, tokenized_requests=False, num_concurrent=4),
            "--tasks", "lc_passkey_1k", "--limit", "4", "--metadata",
            json.dumps({"num_samples": 4}))
    assert score(tmp_path) == 1.0


# id -> (server, arguments after `lc-eval run`, what the last line must contain)
FAILURES = {
    "chat route on a server that closes the message": (
        "llamacpp", lambda s: [*served(s, "chat/completions"), *TASK, *CHAT],
        ["cannot be seen to continue the final assistant message", "its turn were closed",
         "--model local-completions"]),
    "a BOS the server adds and cannot be told not to": (
        "llamacpp-bos", lambda s: [*served(s, tokenized_requests=False), *TASK, *CHAT],
        ["a BOS token of its own", "tokenized_requests=True"]),
    "lc_ppl through a server": (
        "vllm", lambda s: [*served(s, tokenized_requests=False), "--tasks", "lc_ppl_1k",
                           "--limit", "1"], ["lc_ppl scores log-likelihoods", "--model lc_hf"]),
    "the chat endpoint for local-completions": (
        "vllm", lambda s: [*served(s, "chat/completions")[:1], "local-completions",
                           *served(s, "chat/completions")[2:], *TASK],
        ["is the chat/completions endpoint", "base_url=<server>/v1/completions"]),
    "token-id prompts refused": (
        "llamacpp", lambda s: [*served(s), *TASK], ["refuses token-id prompts",
                                                    "tokenized_requests=False"]),
    "task longer than the server's reported context": (
        "vllm", lambda s: [*served(s, tokenized_requests=False, max_length=16384), "--tasks",
                           "lc_passkey_8k", "--limit", "1"],
        ["lc_passkey_8k needs 8192 tokens", "context of 4096"]),
    "task longer than the context a 400 names": (
        "llamacpp", lambda s: [*served(s, tokenized_requests=False, max_length=4096),
                               "--tasks", "lc_passkey_2k", "--limit", "1"],
        ["lc_passkey_2k at 2048 tokens", "context of 1500"]),
    "the same with concurrent requests": (
        "llamacpp", lambda s: [*served(s, tokenized_requests=False, max_length=4096,
                                       num_concurrent=4), "--tasks", "lc_passkey_2k",
                               "--limit", "3"],
        ["lc_passkey_2k at 2048 tokens", "context of 1500"]),
    "server not reachable": (
        "vllm", lambda s: ["--model", "local-completions", "--model_args",
                           "model=m,base_url=http://127.0.0.1:9/v1/completions,tokenizer={tok}",
                           *TASK],
        ["cannot reach the server at base_url=http://127.0.0.1:9/v1/completions"]),
    "model the server does not serve": (
        "vllm", lambda s: [*served(s, model="nosuch", tokenized_requests=False), *TASK],
        ["does not serve model='nosuch'", "served-model"]),
    "base_url not the endpoint": (
        "vllm", lambda s: ["--model", "local-completions", "--model_args",
                           (f"model=served-model,base_url={s.url('')[:-1]},tokenizer={{tok}},"
                           "tokenized_requests=False"), *TASK],
        ["answered HTTP 404", "/v1/completions"]),
    "chat route without --apply_chat_template": (
        "vllm", lambda s: [*served(s, "chat/completions"), *TASK],
        ["needs --apply_chat_template"]),
    "no base_url": (
        "vllm", lambda s: ["--model", "local-completions", "--model_args",
                           "model=m,tokenizer={tok}", *TASK], ["needs the server's URL"]),
    "vllm not installed": (
        "vllm", lambda s: ["--model", "vllm", "--model_args", "pretrained=tiny-llama", *TASK],
        ["pip install vllm"]),
}


@pytest.fixture(scope="module")
def failures(servers, chat_tokenizer, tmp_path_factory):
    """Each case of ``FAILURES`` run once, two at a time: id -> the finished process."""
    def run(item):
        case, (server, make, _) = item
        out = tmp_path_factory.mktemp("failure")
        return case, lc_eval(out, chat_tokenizer, *make(servers[server]), check=False)

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(run, FAILURES.items()))


@pytest.mark.parametrize("case", list(FAILURES))
def test_first_try_failures_are_one_line(case, failures):
    if case == "vllm not installed" and importlib.util.find_spec("vllm"):
        pytest.skip("vllm is installed here")
    proc = failures[case]
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0, f"{case}: exit 0\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, f"{case}: a traceback\n{proc.stderr[-3000:]}"
    assert last.startswith("lc-eval: error: "), f"{case}: last line {last!r}"
    for words in FAILURES[case][2]:
        assert words in last, f"{case}: {words!r} not in {last!r}"


def test_missing_api_extra_names_the_install(monkeypatch):
    from lc_eval import served

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "aiohttp" else real(name, *a))
    with pytest.raises(UsageError, match=r"pip install 'lm-eval\[api\]'"):
        served.check_model("local-completions", {"base_url": "http://x/v1/completions"},
                           False, [("passkey", 1024)])


def test_in_process_engine_context_shorter_than_a_task_is_refused(monkeypatch):
    from lc_eval import served

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name in ("vllm", "sglang") else real(name, *a))
    with pytest.raises(UsageError, match=r"max_model_len=4096 is shorter than the longest task "
                                         r"\(8192 tokens\)"):
        served.check_model("vllm", {"max_model_len": "4096"}, False,
                           [("passkey", 1024), ("vt", 8192)])
    with pytest.raises(UsageError, match="context_length=2000"):
        served.check_model("sglang", {"context_length": 2000}, False, [("passkey", 2048)])
    served.check_model("vllm", {"max_model_len": 8192}, False, [("passkey", 8192)])  # fits


@pytest.mark.parametrize(("text", "context"), [
    ("Requested tokens (8200) exceed context window of 4096", 4096),
    ("This model's maximum context length is 4096 tokens, however you requested 8192", 4096),
    ("The input (9000 tokens) is longer than the model's context length (8192 tokens).", 8192),
    ("Requested token count exceeds the model's maximum context length of 8192 tokens.", 8192),
    (('{"error":{"code":400,"message":"request (9000 tokens) exceeds the available context size '
     '(4096 tokens), try increasing it","type":"exceed_context_size_error","n_ctx":4096}}'), 4096),
    ("Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4100",
     4096),
    ("Input validation error: `inputs` must have less than 2048 tokens. Given: 3000", 2048),
    ("the context window is full", 0),
    ("Internal server error", None),
], ids=["llama-cpp-python Llama", "vllm / llama-cpp-python server", "sglang prompt",
        "sglang total", "llama-server", "tgi total", "tgi prompt", "unnamed", "other"])
def test_context_errors_are_read_from_each_server(text, context):
    assert http.context_in_error(text) == context


def test_client_rendering_is_lm_evals_hf_rendering(chat_tokenizer):
    from types import SimpleNamespace

    from lm_eval.models.huggingface import HFLM

    from lc_eval.served import render_chat

    tok = chat_tokenizer[1]
    history = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Q?"},
               {"role": "assistant", "content": "The pass key is"}]
    hf = SimpleNamespace(tokenizer=tok, chat_template_args={})
    for add in (False, True):
        want = HFLM.apply_chat_template(hf, history if not add else history[:2], add)
        assert render_chat(tok, history if not add else history[:2], add) == want


def test_gpu_check_script_names_what_it_needs_without_a_gpu():
    """benchmarks/gpu_check.sh (vLLM beside lc_hf on a GPU) parses, and says in one line what
    it needs where vllm or CUDA is missing (here)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    if importlib.util.find_spec("vllm"):
        pytest.skip("vllm is installed here")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", str(root / "benchmarks" / "gpu_check.sh")], check=False,
                          cwd=root,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "gpu_check: needs vllm (pip install vllm) and a CUDA GPU"), proc.stderr
