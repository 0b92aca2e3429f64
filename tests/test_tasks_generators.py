"""The task generators as a specification: sizing, answers, depths, determinism, options.

Offline tokenizers of three grains (char, byte-level BPE, word) stand in for
real ones; every check here holds for any tokenizer.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from lc_models.zoo.tiny import build_tokenizer
from lc_tasks import prose
from lc_tasks.families import DEFAULT_DEPTHS, FAMILIES, LENGTHS
from lc_tasks.generators import generate
from lc_tasks.options import task_spec
from lc_tasks.sizing import SizingError, TokenCounter, fit_to_length
from lc_tasks.tokenizer import MissingTokenizer, resolve_tokenizer

NEEDLE_FAMILIES = [f for f, info in FAMILIES.items() if info.kind in ("passkey", "niah",
                                                                      "kvrecall")]
# Families whose docs are prompts with answers (lc_ppl's are documents, scored by likelihood).
PROMPT_FAMILIES = [f for f, info in FAMILIES.items() if info.kind != "ppl"]
FILL = 0.97  # the prompt plus max_gen_toks fills at least this share of L


@pytest.fixture(scope="module")
def tokenizers():
    return {kind: build_tokenizer(kind) for kind in ("char", "bpe", "word")}


@pytest.mark.parametrize("length", [1024, 4096, 16384], ids=["1k", "4k", "16k"])
@pytest.mark.parametrize("kind", ["char", "bpe", "word"])
@pytest.mark.parametrize("family", PROMPT_FAMILIES)
def test_prompt_fits_fills_and_holds_its_answer(family, kind, length, tokenizers, qa_options):
    tok = tokenizers[kind]
    gen_toks = FAMILIES[family].max_gen_toks
    for doc in generate(task_spec(family, length, num_samples=3, **qa_options), tok, seed=1):
        n = len(tok(doc["input"])["input_ids"])  # as lm-eval's hf model encodes it
        assert n == doc["n_tokens"], "n_tokens must be the prompt's real token count"
        assert n + gen_toks <= length, f"doc {doc['index']}: {n}+{gen_toks} > {length}"
        assert n + gen_toks >= FILL * length, f"doc {doc['index']}: fills {(n + gen_toks) / length:.3f}"
        assert doc["outputs"] and all(o in doc["input"] for o in doc["outputs"])
        assert doc["length"] == length and doc["family"] == family


@pytest.mark.parametrize("family", NEEDLE_FAMILIES)
def test_needle_positions_point_at_the_needles(family, tokenizers):
    tok = tokenizers["bpe"]
    for doc in generate(task_spec(family, 4096, num_samples=4), tok, seed=2):
        ids = tok(doc["input"])["input_ids"]
        depths = doc["depth"] if isinstance(doc["depth"], list) else [doc["depth"]]
        assert len(depths) == len(doc["needle_positions"])
        first = tok.decode(ids[doc["needle_positions"][0]:][:12]).lstrip()
        assert first.startswith(("The pass key is", "One of the special", "The number of")), first
        # The asked needle sits near its depth within the prompt.
        share = doc["needle_positions"][0] / len(ids)
        assert abs(share - depths[0] / 100) < 0.15, (share, depths[0])


def test_docs_cycle_through_the_depths_so_limit_spans_them(tokenizers):
    docs = generate(task_spec("niah_single", 2048, num_samples=22), tokenizers["char"], seed=0)
    assert [d["depth"] for d in docs[:11]] == list(DEFAULT_DEPTHS)
    assert [d["depth"] for d in docs[11:]] == list(DEFAULT_DEPTHS)
    positions = [d["needle_positions"][0] for d in docs[:11]]
    assert positions == sorted(positions), "deeper needles must sit later"


_DUMP = """
import hashlib, json, sys
from lc_models.zoo.tiny import build_tokenizer
from lc_tasks.families import FAMILIES
from lc_tasks.generators import generate
from lc_tasks.options import task_spec
tok = build_tokenizer("bpe")
h = hashlib.sha256()
for family in FAMILIES:
    for doc in generate(task_spec(family, 2048, num_samples=3, **json.loads(sys.argv[1])), tok,
                        seed=7):
        h.update(json.dumps(doc, sort_keys=True).encode())
print(h.hexdigest())
"""


def test_same_docs_from_two_separate_processes(qa_options):
    digests = []
    for hashseed in ("1", "2"):  # different str-hash seeds: no set/dict order may leak
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        out = subprocess.run([sys.executable, "-c", _DUMP, json.dumps(qa_options)],
                             capture_output=True, text=True, env=env, check=True)
        digests.append(out.stdout.strip())
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_seed_changes_the_docs(tokenizers):
    a = generate(task_spec("passkey", 1024, num_samples=2), tokenizers["char"], seed=1)
    b = generate(task_spec("passkey", 1024, num_samples=2), tokenizers["char"], seed=2)
    assert a[0]["outputs"] != b[0]["outputs"] and a[0]["seed"] != b[0]["seed"]


@pytest.mark.parametrize("hops,chains", [(2, 1), (6, 3)], ids=["2hops", "6hops-3chains"])
def test_vt_hops_and_chains(hops, chains, tokenizers):
    docs = generate(task_spec("vt", 4096, num_samples=2, num_hops=hops, num_chains=chains),
                    tokenizers["bpe"], seed=0)
    for doc in docs:
        assert len(doc["outputs"]) == hops + 1
        assert len(doc["needle_positions"]) == chains * (hops + 1)
        assert f"{hops + 1} variables are assigned the value" in doc["input"]


@pytest.mark.parametrize("haystack", ["noise", "prose", "file", "hf"])
def test_haystack_choices(haystack, tmp_path, tokenizers):
    options = {"haystack": haystack}
    marker = "Quartz lanterns hum beside the frozen canal."
    if haystack == "file":
        path = tmp_path / "book.txt"
        path.write_text((marker + " The tide came in slowly.\n\n") * 50)
        options["haystack"] = str(path)
    if haystack == "hf":
        (tmp_path / "data").mkdir()
        rows = [{"text": marker + f" Row {i} of the local dataset."} for i in range(40)]
        (tmp_path / "data" / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
        options["haystack"] = f"hf:{tmp_path / 'data'}"
    doc = generate(task_spec("niah_prose", 2048, num_samples=1, **options), tokenizers["bpe"],
                   seed=0)[0]
    expect = {"noise": "The grass is green.", "prose": "", "file": marker, "hf": marker}
    assert expect[haystack] in doc["input"]
    if haystack == "prose":
        assert "The grass is green." not in doc["input"]


def test_prose_does_not_repeat_visibly():
    """About a million tokens of prose: no sentence run repeats."""
    sents = [s for s, _ in prose.sentences(random.Random(0), 45_000)]
    triples = Counter(zip(sents, sents[1:], sents[2:]))
    assert max(triples.values()) == 1, "a run of three sentences repeats"
    assert len(set(sents)) > 0.99 * len(sents)
    assert not any(ch.isdigit() or "-" in s for s in sents[:2000] for ch in s)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"depths": [50, 120]}, "depths"),
        ({"num_samples": 0}, "num_samples"),
        ({"num_hops": "x"}, "num_hops"),
        ({"haystack": "/no/such/file.txt"}, "neither 'noise', 'prose'"),
    ],
    ids=["depth-over-100", "zero-samples", "bad-hops", "missing-file"],
)
def test_bad_options_give_one_clear_line(options, message, tokenizers):
    with pytest.raises(ValueError, match=message) as err:
        generate(task_spec("vt", 2048, **{"num_samples": 1, **options}), tokenizers["char"])
    assert "\n" not in str(err.value)


def test_missing_tokenizer_says_how_to_pass_one():
    with pytest.raises(MissingTokenizer, match=r"--model_args pretrained=<model>.*--metadata"):
        resolve_tokenizer({"dtype": "float32"}, "lc_passkey_1k")


def test_too_short_a_length_is_an_error_not_a_truncation(tokenizers):
    with pytest.raises(SizingError):
        generate(task_spec("niah_multiquery", 200, num_samples=1), tokenizers["char"])


@pytest.mark.parametrize("budget", [0, 1, 63, 64, 999], ids=lambda b: f"budget{b}")
def test_fit_to_length_finds_the_largest_size_that_fits(budget, tokenizers):
    counter = TokenCounter(tokenizers["char"])
    pieces = ["ab", " c", " def", "g", " hij"] * 60  # uneven piece sizes
    lengths = [0]
    for p in pieces:
        lengths.append(lengths[-1] + len(p))

    def build(n):
        return "".join(pieces[:n]), None

    # A deliberately poor estimate: the fitter must still land on the exact answer.
    best = max(n for n in range(len(pieces) + 1) if lengths[n] <= budget)
    fit = fit_to_length(build, lambda n: 1.3 * lengths[n], budget=budget, n_min=0,
                        n_max=len(pieces), counter=counter)
    assert fit.n_tokens <= budget
    assert lengths[best] - fit.n_tokens <= 4, (fit.n, best)


def test_lengths_table():
    assert list(LENGTHS.values()) == [1024 * 2**i for i in range(11)]


def test_reserve_keeps_tokens_free_for_a_chat_template(tokenizers):
    plain = generate(task_spec("niah_single", 2048, num_samples=2), tokenizers["bpe"], seed=0)
    spared = generate(task_spec("niah_single", 2048, num_samples=2, reserve=100),
                      tokenizers["bpe"], seed=0)
    for a, b in zip(plain, spared):
        assert b["n_tokens"] + 128 + 100 <= 2048
        assert a["n_tokens"] - b["n_tokens"] >= 90


def test_fewer_docs_are_a_prefix_of_more(tokenizers):
    few = generate(task_spec("niah_multikey", 4096, num_samples=3), tokenizers["bpe"], seed=5)
    more = generate(task_spec("niah_multikey", 4096, num_samples=6), tokenizers["bpe"], seed=5)
    assert few == more[:3]
