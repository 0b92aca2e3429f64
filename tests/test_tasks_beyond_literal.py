"""Copying, latent needles and state tracking (issue 25) as a specification.

* the oracle scores 1.0 on each family at 1k and 8k, with the char and the BPE tokenizer;
  a window model scores 0 when the passage, needle or first swap is out of its window and
  1.0 when it is inside;
* prompts plus max_gen_toks fit the length and fill 97% of it, at every point of the copy
  and swap-count sweeps;
* a latent question shares no content word with its needle, over a 1000-doc build; the
  literal control asks the needle's own words;
* the recorded answer of a state-tracking doc is what its swaps, read back from the
  prompt and recomputed independently, leave in the asked box, over 1000 docs.
"""

from __future__ import annotations

import os
import re
import string
import subprocess
import sys

import pytest
from lc_oracles import OracleLM
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

import lc_tasks
from lc_models.zoo.tiny import build_tokenizer
from lc_tasks import prose, words
from lc_tasks.errors import UsageError
from lc_tasks.families import COPY_SWEEPS, FAMILIES, LENGTHS, OPS_SWEEPS, sweep_task_name
from lc_tasks.generators import generate
from lc_tasks.generators.latent import KINDS, associations, characters, content_words
from lc_tasks.options import task_spec
from lc_tasks.scoring import process_results

NEW = ("copy", "niah_latent", "statetrack")
FILL = 0.97


@pytest.fixture(scope="module")
def tokenizers():
    return {kind: build_tokenizer(kind) for kind in ("char", "bpe")}


def manager(**metadata) -> TaskManager:
    return TaskManager(include_path=lc_tasks.include_path(), include_defaults=False,
                       metadata=metadata)


def evaluate(tasks, model, **metadata):
    return simple_evaluate(model=model, tasks=tasks, task_manager=manager(**metadata),
                           log_samples=True)


# --------------------------------------------------------------------------- oracle, window


@pytest.mark.parametrize("label", ["1k", "8k"])
@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_the_oracle_scores_one_on_each_family(kind, label, tokenizer_dir):
    tasks = [f"lc_{f}_{label}" for f in NEW]
    res = evaluate(tasks, OracleLM(), tokenizer=str(tokenizer_dir(kind)), num_samples=11)
    for task in tasks:
        assert res["results"][task]["acc,none"] == 1.0, (task, res["results"][task])
    assert res["results"][f"lc_copy_{label}"]["exact_match,none"] == 1.0


def test_lm_eval_lists_every_sweep_point():
    listed = set(manager().all_subtasks)
    for family, sweeps in (("copy", COPY_SWEEPS), ("statetrack", OPS_SWEEPS)):
        names = {sweep_task_name(family, LENGTHS[label], n) for label, ns in sweeps.items()
                 for n in ns}
        assert names <= listed and len(names) == sum(map(len, sweeps.values()))


@pytest.mark.parametrize("options", [{"literal": True}, {"parity": True}, {"query_first": True},
                                     {"repeat_context": 2}],
                         ids=["literal", "parity", "query-first", "twice"])
def test_the_oracle_scores_one_on_the_variants(options, tokenizer_dir):
    tasks = ["lc_niah_latent_2k", "lc_statetrack_2k", "lc_copy_2k"]
    res = evaluate(tasks, OracleLM(), tokenizer=str(tokenizer_dir("bpe")), num_samples=6,
                   **options)["results"]
    assert all(res[t]["acc,none"] == 1.0 for t in tasks), {t: res[t]["acc,none"] for t in tasks}


def _first(doc: dict) -> int:
    """Token position of what the model must have seen: the passage, the needle, or the
    first swap (the statement of the initial contents comes just before it)."""
    return doc["needle_positions"][1 if doc["family"] == "statetrack" else 0]


@pytest.mark.parametrize("family", NEW)
def test_the_window_model_scores_only_what_is_inside_its_window(family, tokenizer_dir):
    window = 2048
    model = OracleLM(window=window, tokenizer=build_tokenizer("char"))
    task = f"lc_{family}_4k"
    samples = evaluate([task], model, tokenizer=str(tokenizer_dir("char")),
                       num_samples=22)["samples"][task]
    inside, outside = [], []
    for s in samples:
        doc = s["doc"]
        start = doc["n_tokens"] - window  # the first visible token
        if doc["needle_positions"][0] >= start:
            inside.append(s["acc"])
        elif _first(doc) < start:
            outside.append(s["acc"])
    assert len(inside) >= 5 and len(outside) >= 5, (len(inside), len(outside))
    assert sum(inside) / len(inside) == 1.0, inside
    assert sum(outside) == 0.0, outside


# --------------------------------------------------------------------------- sizing


def _fits(docs, spec, tok):
    for doc in docs:
        n = len(tok(doc["input"])["input_ids"])
        assert n == doc["n_tokens"]
        assert n + spec.max_gen_toks <= spec.length, (doc["index"], n, spec.max_gen_toks)
        assert n + spec.max_gen_toks >= FILL * spec.length, (
            doc["index"], (n + spec.max_gen_toks) / spec.length)


@pytest.mark.parametrize("kind", ["char", "bpe"])
@pytest.mark.parametrize("label, words_", [(label, w) for label, ws in COPY_SWEEPS.items()
                                           for w in ws])
def test_every_copy_sweep_point_fits_and_fills(label, words_, kind, tokenizers):
    tok = tokenizers[kind]
    spec = task_spec("copy", LENGTHS[label], num_samples=2, sweep_words=words_)
    docs = generate(spec, tok, seed=3)
    _fits(docs, spec, tok)
    for doc in docs:
        assert len(doc["outputs"][0].split()) == words_ == doc["copy_words"]
        assert doc["passage_tokens"] <= spec.max_gen_toks  # max_gen_toks covers the passage


@pytest.mark.parametrize("label, ops", [(label, n) for label, ns in OPS_SWEEPS.items()
                                        for n in ns])
def test_every_swap_count_fits_and_fills(label, ops, tokenizers):
    tok = tokenizers["char"]
    spec = task_spec("statetrack", LENGTHS[label], num_samples=2, sweep_ops=ops)
    docs = generate(spec, tok, seed=3)
    _fits(docs, spec, tok)
    assert all(len(d["swaps"]) == ops == d["input"].count("Swap the contents") for d in docs)


@pytest.mark.parametrize("family", NEW)
@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_the_families_fit_and_fill_at_8k(family, kind, tokenizers):
    spec = task_spec(family, 8192, num_samples=3)
    _fits(generate(spec, tokenizers[kind], seed=4), spec, tokenizers[kind])


def test_the_sweep_tasks_carry_their_counts_and_copys_max_gen_toks(tokenizer_dir):
    from lm_eval.tasks._yaml_loader import load_yaml

    folder = lc_tasks.include_path()
    cfg = load_yaml(f"{folder}/copy/{sweep_task_name('copy', 4096, 128)}.yaml",
                    resolve_func=False)
    assert cfg["dataset_kwargs"]["sweep_words"] == 128
    assert cfg["generation_kwargs"]["max_gen_toks"] == task_spec(
        "copy", 4096, sweep_words=128).max_gen_toks
    cfg = load_yaml(f"{folder}/statetrack/{sweep_task_name('statetrack', 16384, 4)}.yaml",
                    resolve_func=False)
    assert cfg["dataset_kwargs"]["sweep_ops"] == 4


# --------------------------------------------------------------------------- latent


def test_latent_questions_never_share_a_content_word_with_their_needle(tokenizers):
    docs = generate(task_spec("niah_latent", 1024, num_samples=1000), tokenizers["char"], seed=5)
    kinds = set()
    for doc in docs:
        assert doc["needle"] in doc["input"] and doc["question"] in doc["input"]
        assert not content_words(doc["question"]) & content_words(doc["needle"]), doc["index"]
        assert doc["target"] in doc["question"] and doc["cue"] not in doc["question"]
        assert doc["outputs"] == [doc["needle"].split()[0]]
        kinds.add(doc["kind"])
    assert kinds == set(KINDS)


def test_the_literal_control_asks_the_needles_own_words(tokenizers):
    docs = generate(task_spec("niah_latent", 1024, num_samples=200, literal=True),
                    tokenizers["char"], seed=5)
    latent = generate(task_spec("niah_latent", 1024, num_samples=200), tokenizers["char"],
                      seed=5)
    for doc, twin in zip(docs, latent):
        assert doc["literal"] and doc["cue"] in doc["question"]
        # the needle but for its name and the question's words
        assert doc["needle"].split(" ", 1)[1].rstrip(".") in doc["question"]
        assert content_words(doc["question"]) & content_words(doc["needle"])
        assert (doc["needle"], doc["outputs"]) == (twin["needle"], twin["outputs"])


def test_distractors_never_meet_the_association(tokenizers):
    table = {a.cue: a for a in associations()}
    for doc in generate(task_spec("niah_latent", 2048, num_samples=100), tokenizers["bpe"],
                        seed=6):
        cues = [c for c in table if re.search(rf"\b{re.escape(c)}\b", doc["input"])]
        targets = [table[c].target for c in cues if c != doc["cue"]]
        assert len(cues) == 5 and doc["target"] not in targets, (doc["index"], cues)


def test_the_association_table_is_ours_and_one_step():
    table = associations()
    assert len(table) >= 100 and len({a.cue for a in table}) == len(table)
    prose_words = {w.lower() for w in words.cwe_words()} | {
        w.lower() for group in (prose.NAMES, prose.PLACES, prose.ADVERBS, prose.TIMES,
                                prose.PREPS, prose.CONNECT) for p in group for w in p.split()}
    for a in table:
        assert a.kind in KINDS and set(a.cue + a.target) <= set(string.ascii_letters + " .'")
        # the question's target never appears in the haystack's vocabulary
        assert not {w.lower() for w in re.findall(r"[A-Za-z]+", a.target)} - {"the", "a", "an"} \
            & prose_words, a
        assert not content_words(a.cue) & content_words(a.target), a
    for kind in KINDS:  # enough other targets for the distractors
        assert len({a.target for a in table if a.kind == kind}) >= 5, kind
    assert not {n.lower() for n in characters()} & prose_words
    assert len(set(characters())) == len(characters()) >= 40


# --------------------------------------------------------------------------- state tracking


def _recompute(initial: list[str], swaps: list[tuple[str, str]], box: str) -> str:
    """Follow the object the asked box ends with backwards through the swaps."""
    where = box
    for a, b in reversed(swaps):
        where = b if where == a else a if where == b else where
    return initial["ABCDE".index(where)]


@pytest.mark.parametrize("parity", [False, True], ids=["swaps", "parity"])
def test_the_recorded_answer_is_what_the_swaps_leave(parity, tokenizers):
    docs = generate(task_spec("statetrack", 1024, num_samples=1000, parity=parity),
                    tokenizers["char"], seed=8)
    for doc in docs:
        text = doc["input"]
        initial = [o for _, o in re.findall(r"box ([A-E]) holds the (\w+)", text.split(
            "At the start, ")[1].split(".")[0])]
        swaps = re.findall(r"Swap the contents of boxes ([A-E]) and ([A-E])\.", text)
        assert initial == doc["initial"] and [list(s) for s in swaps] == doc["swaps"]
        assert doc["outputs"] == [_recompute(initial, swaps, doc["box"])], doc["index"]
        assert text.endswith(f"Box {doc['box']} holds the")
        if parity:
            assert set(swaps) <= {("A", "B")} and doc["box"] in "AB"
            flipped = len(swaps) % 2 == 1
            assert doc["outputs"][0] == initial["AB".index(doc["box"]) ^ flipped]
    # the positions of the statement and the swaps rise through the prompt
    assert all(d["needle_positions"] == sorted(d["needle_positions"]) for d in docs)


def test_swaps_spread_from_the_depth_to_the_end(tokenizers):
    docs = generate(task_spec("statetrack", 4096, num_samples=3, depths=[0, 50, 90]),
                    tokenizers["bpe"], seed=9)
    for doc in docs:
        share = [p / doc["n_tokens"] for p in doc["needle_positions"]]
        assert abs(share[0] - doc["depth"] / 100) < 0.15, share  # the swaps add text
        assert share[-1] > 0.9 and len(share) == 17


# --------------------------------------------------------------------------- determinism

_DUMP = """
import hashlib, json
from lc_models.zoo.tiny import build_tokenizer
from lc_tasks.generators import generate
from lc_tasks.options import task_spec
tok = build_tokenizer("bpe")
h = hashlib.sha256()
for family, options in [("copy", {}), ("copy", {"sweep_words": 16}), ("niah_latent", {}),
                        ("niah_latent", {"literal": True}), ("statetrack", {}),
                        ("statetrack", {"parity": True, "sweep_ops": 4})]:
    for doc in generate(task_spec(family, 2048, num_samples=4, **options), tok, seed=7):
        h.update(json.dumps(doc, sort_keys=True).encode())
print(h.hexdigest())
"""


def test_two_processes_build_the_same_docs():
    digests = []
    for hashseed in ("1", "2"):  # different str-hash seeds: no set/dict order may leak
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        out = subprocess.run([sys.executable, "-c", _DUMP], capture_output=True, text=True,
                             env=env, check=True)
        digests.append(out.stdout.strip())
    assert digests[0] == digests[1] and len(digests[0]) == 64


# --------------------------------------------------------------------------- options, scores


@pytest.mark.parametrize("family, options, message", [
    ("copy", {"copy_words": 65}, "more than the 64 words"),
    ("copy", {"copy_words": 32, "sweep_words": 64}, "conflicts with this task's 64"),
    ("copy", {"copy_words": 0}, "integer >= 1"),
    ("niah_latent", {"literal": "maybe"}, "true or false"),
    ("niah_latent", {"num_distractors": 5}, "at most 4"),
    ("statetrack", {"num_ops": 8, "sweep_ops": 4}, "conflicts with this task's 4"),
    ("statetrack", {"parity": "yes"}, "true or false"),
    ("statetrack", {"num_op": 4}, "did you mean 'num_ops'"),
], ids=["copy-over-cap", "copy-sweep-conflict", "copy-zero", "literal", "distractors",
        "ops-conflict", "parity", "misspelt"])
def test_bad_options_are_one_line(family, options, message):
    with pytest.raises(UsageError, match=message) as err:
        task_spec(family, 4096, **options)
    assert "\n" not in str(err.value)


def test_fewer_copy_words_keep_the_tasks_max_gen_toks(tokenizers):
    spec = task_spec("copy", 1024, copy_words=8)
    assert spec.params["copy_words"] == 8 and spec.max_gen_toks == FAMILIES["copy"].max_gen_toks


def test_a_passage_too_long_for_the_length_is_a_clear_error(tokenizers):
    with pytest.raises(UsageError, match="lc_copy at 1024 tokens") as err:
        generate(task_spec("copy", 1024, num_samples=1, sweep_words=128), tokenizers["char"])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("family, output, expect", [
    ("copy", " red fox ran", {"acc": 1.0, "exact_match": 1.0}),
    ("copy", " Red fox, ran.", {"acc": 1.0, "exact_match": 1.0}),
    ("copy", " red fox sat", {"acc": 2 / 3, "exact_match": 0.0}),
    ("copy", " fox ran", {"acc": 0.0, "exact_match": 0.0}),
    ("copy", " red fox ran away", {"acc": 1.0, "exact_match": 0.0}),
    ("niah_latent", " Remy.", {"acc": 1.0}),
    ("niah_latent", " Sara or Remy", {"acc": 0.0}),
    ("statetrack", " plum, then", {"acc": 1.0}),
    ("statetrack", " dog and plum", {"acc": 0.0}),
], ids=["copy-exact", "copy-case", "copy-prefix", "copy-first-wrong", "copy-more",
        "latent", "latent-list", "state", "state-list"])
def test_scores(family, output, expect):
    answer = {"copy": "red fox ran", "niah_latent": "Remy", "statetrack": "plum"}[family]
    assert process_results({"family": family, "outputs": [answer]}, [output]) == expect
