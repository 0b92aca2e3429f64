"""The state-capacity study's tasks as a specification: key-value recall, loss by position, and
read-twice prompts (generators only; lm-eval runs are in test_tasks_lmeval.py and
test_state_study_cli.py).
"""

from __future__ import annotations

import re
from itertools import pairwise

import pytest

from lc_models.zoo.tiny import build_tokenizer
from lc_tasks.dataset import build
from lc_tasks.errors import UsageError
from lc_tasks.families import FAMILIES, position_buckets
from lc_tasks.generators import generate
from lc_tasks.generators.common import COPY_SEP
from lc_tasks.generators.ppl import bucket_requests
from lc_tasks.options import task_spec

PAIR = re.compile(r"The number of ([a-z]+-[a-z]+) is (\d+)\.")
FILL = 0.97


@pytest.fixture(scope="module")
def tokenizers():
    return {kind: build_tokenizer(kind) for kind in ("char", "bpe", "word")}


# ----------------------------------------------------------------------------- kvrecall
@pytest.mark.parametrize("pairs,queries", [(1, 1), (16, 1), (64, 4)], ids=["p1", "p16", "p64q4"])
def test_kvrecall_docs_hold_their_pairs_and_record_distances(pairs, queries, tokenizers):
    tok = tokenizers["bpe"]
    spec = task_spec("kvrecall", 4096, num_samples=6, num_pairs=pairs, num_queries=queries)
    for doc in generate(spec, tok, seed=3):
        found = PAIR.findall(doc["input"])
        assert len(found) == pairs and doc["num_pairs"] == pairs
        values = dict(found)
        assert len(set(values.values())) == pairs, "values must be distinct"
        asked = re.findall(r"numbers? of (.+?)(?:, in that order)?\? The", doc["input"])[-1]
        keys = re.split(r", and |, ", asked)
        assert doc["outputs"] == [values[k] for k in keys], "answers in the asked order"
        n = len(tok(doc["input"])["input_ids"])
        assert n == doc["n_tokens"] and n + 48 <= 4096 and n + 48 >= FILL * 4096
        assert doc["distances"] == [n - p for p in doc["needle_positions"]]
        for key, pos in zip(keys, doc["needle_positions"]):
            text = tok.decode(tok(doc["input"])["input_ids"][pos:][:20]).lstrip()
            assert text.startswith(f"The number of {key}"), text


def test_kvrecall_first_asked_pair_sits_at_the_doc_depth(tokenizers):
    docs = generate(task_spec("kvrecall", 4096, num_samples=11, num_pairs=11), tokenizers["bpe"])
    assert [d["depth"][0] for d in docs] == [float(10 * i) for i in range(11)]
    distances = [d["distances"][0] for d in docs]
    assert distances == sorted(distances, reverse=True), "deeper pairs sit nearer the question"


@pytest.mark.parametrize("copies", [1, 2], ids=["once", "twice"])
def test_kvrecall_distances_option_places_the_asked_pair(copies, tokenizers):
    targets = [100, 1000, 1500] if copies == 2 else [100, 1000, 2000, 3500]
    docs = generate(task_spec("kvrecall", 4096, num_samples=len(targets), num_pairs=64,
                              distances=targets, repeat_context=copies), tokenizers["bpe"],
                    seed=0)
    spacing = 4096 / copies / 63  # tokens between neighbouring pairs
    for doc, target in zip(docs, targets):
        assert abs(doc["distances"][0] - target) < spacing + 80, (doc["distances"], target)


def test_pair_sweep_tasks_fix_the_pair_count(tokenizer_dir):
    folder = str(tokenizer_dir("bpe"))
    docs = build(family="kvrecall", length=1024, sweep_pairs=4, tokenizer=folder,
                 num_samples=2)["test"]
    assert [d["num_pairs"] for d in docs] == [4, 4]
    with pytest.raises(UsageError, match="conflicts with this task's 4 pairs") as err:
        build(family="kvrecall", length=1024, sweep_pairs=4, tokenizer=folder, num_pairs=8)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("options, message", [
    ({"num_queries": 9, "num_pairs": 16}, "at most"),
    ({"num_queries": 5, "num_pairs": 4}, "at most num_pairs"),
    ({"distances": "far"}, "distances"),
    ({"distances": [10], "depths": [50]}, "give one of them"),
    ({"num_pairs": 9001}, "distinct 4-digit values"),
], ids=["too-many-queries", "queries-over-pairs", "bad-distance", "both-placements",
        "more-pairs-than-values"])
def test_kvrecall_bad_options_are_one_line(options, message):
    with pytest.raises(UsageError, match=message) as err:
        task_spec("kvrecall", 4096, **options)
    assert "\n" not in str(err.value)


def test_too_many_pairs_for_the_length_says_what_to_change(tokenizers):
    with pytest.raises(UsageError, match=r"lc_kvrecall at 1024 tokens: .*fewer pairs") as err:
        generate(task_spec("kvrecall", 1024, num_samples=1, num_pairs=200), tokenizers["char"])
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- read twice
READ_TWICE = ["passkey", "niah_single", "niah_multikey", "vt", "kvrecall", "cwe", "fwe",
              "qa_squad"]
REWORDED = ("vt", "cwe", "fwe")  # their first question says "below" where the last says "above"


def _copies(family: str, doc: dict) -> int:
    """How many times the doc's context appears in its prompt."""
    text, answer = doc["input"], doc["outputs"][0]
    if family in ("cwe", "fwe"):  # the list or coded text: copies joined by COPY_SEP
        start = "most often.\n" if family == "cwe" else "coded words. "
        context = text[text.rindex(start) + len(start) : text.rindex("\nQuestion:")]
        parts = context.split(COPY_SEP)
        assert len(set(parts)) == 1, "the copies must be identical"
        return len(parts)
    if family == "qa_squad":
        return text.count("Document 1:\n")
    # a needle the answer depends on: it appears once per copy of the context
    needle = (rf"VAR {answer} = \d+" if family == "vt"
              else rf"[^\n.]*\b{re.escape(answer)}\b")
    return text.count(re.search(needle, text).group())


@pytest.mark.parametrize("kind", ["char", "bpe"])
@pytest.mark.parametrize("options", [{"query_first": True}, {"repeat_context": 2},
                                     {"query_first": True, "repeat_context": 3}],
                         ids=["query-first", "twice", "both-3x"])
@pytest.mark.parametrize("family", READ_TWICE)
def test_read_twice_prompts_fit_and_repeat_the_context(family, options, kind, tokenizers,
                                                       qa_options):
    tok, length = tokenizers[kind], 4096
    gen_toks = FAMILIES[family].max_gen_toks
    plain = generate(task_spec(family, length, num_samples=2, **qa_options), tok, seed=4)
    for doc, base in zip(generate(task_spec(family, length, num_samples=2, **options,
                                            **qa_options), tok, seed=4), plain):
        n = len(tok(doc["input"])["input_ids"])
        assert n == doc["n_tokens"] and n + gen_toks <= length
        assert n + gen_toks >= FILL * length, f"fills {(n + gen_toks) / length:.3f}"
        copies = options.get("repeat_context", 1)
        assert _copies(family, doc) == copies
        assert doc["outputs"] == base["outputs"], "the same question is asked"
        question = doc["input"].rsplit("\n", 1)[-1].split("?")[0]
        if family not in REWORDED:
            assert doc["input"].count(question) == (2 if options.get("query_first") else 1)
        else:  # the first question is reworded ("below"): count that wording
            first = {"vt": "in the text below.", "cwe": "in the list below?",
                     "fwe": "in the coded text below?"}[family]
            assert doc["input"].count(first) == (1 if options.get("query_first") else 0)
        if copies > 1 and family in ("passkey", "niah_single", "niah_multikey", "kvrecall"):
            needle = re.search(rf"[^\n.]*\b{re.escape(doc['outputs'][0])}\b",
                               doc["input"]).group()
            before_last = doc["input"].rindex(needle) - len(COPY_SEP)
            assert len(tok(doc["input"][:before_last])["input_ids"]) < doc["needle_positions"][0]


def test_read_twice_is_refused_where_there_is_no_question():
    with pytest.raises(UsageError, match="scores documents") as err:
        task_spec("ppl", 4096, query_first=True)
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match="true or false"):
        task_spec("passkey", 4096, query_first="maybe")


# ------------------------------------------------------------------------ loss by position
@pytest.mark.parametrize("haystack", ["prose", "noise"])
@pytest.mark.parametrize("kind", ["char", "bpe", "word"])
def test_ppl_buckets_cut_the_document_at_its_own_tokens(kind, haystack, tokenizers):
    tok, length = tokenizers[kind], 8192
    for doc in generate(task_spec("ppl", length, num_samples=2, haystack=haystack), tok):
        ids = tok(doc["input"], add_special_tokens=False)["input_ids"]
        assert length * FILL <= doc["n_tokens"] <= length
        buckets = doc["buckets"]
        assert [b["label"] for b in buckets] == ["0-1k", "1k-2k", "2k-4k", "4k-8k"]
        assert buckets[-1]["end"] == len(ids) and buckets[0]["start"] <= 8
        for (start, end), b in zip(position_buckets(length), buckets):
            assert b["start"] <= max(start, 8) and b["end"] <= end
            assert end - b["end"] < 64 or b is buckets[-1], "a cut sits just below its edge"
        for b, nxt in pairwise(buckets):
            assert b["end"] == nxt["start"], "buckets tile the document"
        for (context, continuation), b in zip(bucket_requests(doc), buckets):
            # as lm-eval's _encode_pair splits them: whole, then the context's own encode
            assert not context[-1:].isspace()
            whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
            ctx = tok(context, add_special_tokens=False)["input_ids"]
            assert len(ctx) == b["start"] and whole == ids[: b["end"]]


def test_ppl_never_cuts_inside_a_whitespace_run(tokenizers):
    """A context ending in whitespace would have lm-eval move it into the continuation, scoring
    that token twice; our prose's paragraph breaks ("\\n\\n", two tokens of the char tokenizer)
    must not be cut."""
    tok = tokenizers["char"]
    for doc in generate(task_spec("ppl", 8192, num_samples=20), tok):
        for (context, continuation), b in zip(bucket_requests(doc), doc["buckets"]):
            assert not context[-1].isspace() and continuation[0].isspace(), b


def test_ppl_refuses_a_reserve_that_leaves_its_last_bucket_empty(tokenizers):
    with pytest.raises(UsageError, match="lower reserve") as err:
        generate(task_spec("ppl", 4096, num_samples=1, reserve=2100), tokenizers["char"])
    assert "\n" not in str(err.value)


def test_ppl_reads_the_users_text(tmp_path, tokenizers):
    path = tmp_path / "book.txt"
    path.write_text("It was a bright cold day in April, and the clocks were striking. " * 400)
    doc = generate(task_spec("ppl", 2048, num_samples=1, haystack=str(path)),
                   tokenizers["bpe"])[0]
    assert "clocks were striking" in doc["input"] and len(doc["buckets"]) == 2


def test_ppl_has_no_read_twice_or_depth_options():
    with pytest.raises(UsageError, match="scores documents"):
        task_spec("ppl", 4096, repeat_context=2)
    assert task_spec("ppl", 4096).num_samples == 20
