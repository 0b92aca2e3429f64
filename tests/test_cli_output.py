"""What a newcomer reads: ``lc-eval run``'s own messages are true, once, and in order.

Two real runs of the same command on a tiny Llama built for 512 positions (``--limit 3`` on
lc_passkey at 1k and 2k): the first builds three docs per task, the second loads them from the
doc cache; neither prints lm-eval's RULER hint or transformers' per-encode length warning; the
one note about positions names the longest request; the last table lists lengths in numeric
order.
"""

from __future__ import annotations

import re

import pytest
from conftest import run_cli


@pytest.fixture(scope="module")
def two_runs(tiny_model, tmp_path_factory):
    model = tiny_model("llama", max_position_embeddings=512)
    cache = tmp_path_factory.mktemp("doc-cache")
    args = ["run", "--model", "lc_hf", "--model_args", f"pretrained={model}", "--device", "cpu",
            "--tasks", "lc_passkey_2k,lc_passkey_1k", "--limit", "3"]
    env = {"LC_EVAL_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return [run_cli("lc-eval", *args, env=env) for _ in range(2)]


def output(proc):
    return proc.stdout + proc.stderr


def test_only_the_docs_that_run_are_built_then_loaded_from_the_cache(two_runs):
    first, second = (output(p) for p in two_runs)
    for task in ("lc_passkey_1k", "lc_passkey_2k"):
        assert f"{task}: 0 docs from the doc cache, 3 built" in first, first[-3000:]
        assert f"{task}: 3 docs from the doc cache, 0 built" in second, second[-3000:]


def test_hints_and_warnings_that_mean_nothing_here_are_gone(two_runs):
    text = output(two_runs[0])
    assert "max_seq_lengths" not in text
    assert "Token indices sequence length" not in text


def test_the_position_note_appears_once_and_names_the_longest_request(two_runs):
    notes = re.findall(r"past the model's max_position_embeddings=512 \(the longest is (\d+)",
                       output(two_runs[0]))
    assert len(notes) == 1, notes
    assert 1900 < int(notes[0]) <= 2048


def test_the_last_table_lists_lengths_in_numeric_order(two_runs):
    text = two_runs[0].stdout
    table = text[text.index("lc-eval: our tasks by length"):]
    assert "| acc (%) | 1k | 2k |" in table
    assert re.search(r"\| passkey \| [\d.]+ \| [\d.]+ \|", table)


def test_the_request_bar_says_the_longest_run_first(two_runs):
    assert "generate_until requests (longest first)" in output(two_runs[0])
