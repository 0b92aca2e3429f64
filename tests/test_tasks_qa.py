"""The QA families (RULER qa_1 on SQuAD v2, qa_2 on HotpotQA), from test-made data files.

Sizing, determinism and the oracle's perfect score are checked with every other family
(test_tasks_generators.py, test_tasks_lmeval.py); here: what is particular to QA.
"""

from __future__ import annotations

import json

import pytest
from conftest import read_run, run_cli

from lc_tasks.errors import UsageError
from lc_tasks.generators import generate
from lc_tasks.options import task_spec
from lc_tasks.qa_data import load


def docs(family, length, tokenizer, n=11, **options):
    return generate(task_spec(family, length, num_samples=n, **options), tokenizer, seed=3)


def test_unanswerable_squad_questions_are_left_out(qa_options):
    data = load("squad", qa_options["squad"])
    assert len(data.questions) == 750  # the file holds 750 answerable and 750 unanswerable
    assert all(q.answers for q in data.questions)


@pytest.mark.parametrize("family", ["qa_squad", "qa_hotpot"])
def test_the_gold_documents_sit_at_the_docs_depth(family, qa_options, tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir("bpe"))
    for doc in docs(family, 4096, tok, **qa_options):
        ids = tok(doc["input"])["input_ids"]
        share = doc["needle_positions"][0] / len(ids)
        assert abs(share - doc["depth"] / 100) < 0.15, (share, doc["depth"])
        assert tok.decode(ids[doc["needle_positions"][0]:][:12]).lstrip().startswith("Document")
        assert doc["input"].count("Document 1:\n") == 1
        assert doc["input"].endswith(" Answer:")


def test_hotpotqa_supporting_paragraphs_are_both_in_the_prompt(qa_options, tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir("bpe"))
    for doc in docs("qa_hotpot", 2048, tok, n=4, **qa_options):
        assert len(doc["needle_positions"]) == 2
        first = doc["input"].index(" works with ")
        assert doc["needle_positions"][0] < doc["needle_positions"][1]
        assert doc["outputs"][0] in doc["input"][first:]


def test_a_qa_task_without_its_data_is_one_clear_line():
    from lc_models.zoo.tiny import build_tokenizer

    with pytest.raises(UsageError, match=r"lc_qa_squad_1k needs the SQuAD v2 dev set: pass "
                                         r"--metadata .*dev-v2\.0\.json"):
        docs("qa_squad", 1024, build_tokenizer("char"), n=1)


def test_a_length_the_data_cannot_fill_is_refused(qa_options):
    from lc_models.zoo.tiny import build_tokenizer

    with pytest.raises(UsageError, match="fewer than the .* this length needs without "
                                         "repeating one"):
        docs("qa_squad", 1 << 20, build_tokenizer("char"), n=1, **qa_options)


@pytest.fixture(scope="module")
def cli_runs(tiny_model, qa_options, tmp_path_factory):
    """lc_qa_squad_1k, then the lc_ruler_1k group, through the real lc-eval CLI."""
    out = {}
    for tasks in ("lc_qa_squad_1k", "lc_ruler_1k"):
        folder = tmp_path_factory.mktemp(tasks)
        run_cli("lc-eval", "run", "--model", "lc_hf", "--model_args",
                f"pretrained={tiny_model('llama')}", "--device", "cpu", "--tasks", tasks,
                "--limit", "2", "--metadata", json.dumps(qa_options), "--output_path",
                str(folder))
        out[tasks] = read_run(folder)
    return out


def test_the_cli_runs_a_qa_task_and_the_thirteen_task_group(cli_runs):
    assert 0.0 <= cli_runs["lc_qa_squad_1k"]["results"]["lc_qa_squad_1k"]["acc,none"] <= 1.0
    ruler = cli_runs["lc_ruler_1k"]
    assert "lc_ruler_1k" in ruler["results"] or "lc_ruler_1k" in ruler.get("groups", {})
    members = set(ruler["group_subtasks"]["lc_ruler_1k"])
    assert len(members) == 13 and {"lc_qa_squad_1k", "lc_qa_hotpot_1k"} <= members


def test_the_cli_names_the_missing_qa_data_in_one_line(tiny_model):
    proc = run_cli("lc-eval", "run", "--model", "lc_hf", "--model_args",
                   f"pretrained={tiny_model('llama')}", "--tasks", "lc_ruler_1k", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "needs the" in proc.stderr.strip().splitlines()[-1]
