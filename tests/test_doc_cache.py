"""Building only what runs, and the doc cache: same docs, fewer builds.

* ``num_samples=N`` (what ``lc-eval run --limit N`` passes) builds N docs, the first N of a
  full build;
* cached docs come back byte-identical, and a build that continues a cached prefix gives the
  docs of one full build;
* another tokenizer (by content, not path) or another option misses the cache;
* a corrupt entry is rebuilt; two processes writing one entry leave a valid one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lc_tasks import dataset, generators
from lc_tasks.doc_cache import tokenizer_fingerprint


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LC_EVAL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def built(monkeypatch):
    """Counts the docs the generators build (cache hits are not builds)."""
    calls = []
    original = generators._build

    def counting(spec, gen, seed, i):
        calls.append((spec.family, spec.length, i))
        return original(spec, gen, seed, i)

    monkeypatch.setattr(generators, "_build", counting)
    return calls


def docs(tok, n, family="niah_single", **options):
    return dataset.docs(family, 1024, tokenizer=str(tok), num_samples=n, **options)


def as_bytes(items):
    return json.dumps(items, ensure_ascii=False, sort_keys=True).encode()


@pytest.mark.parametrize("family", ["passkey", "niah_single", "vt", "cwe"])
def test_a_limit_builds_only_the_docs_that_run_and_they_are_a_prefix(family, tokenizer_dir,
                                                                     built, monkeypatch):
    monkeypatch.setenv("LC_EVAL_CACHE", "off")
    tok = tokenizer_dir("bpe")
    few = docs(tok, 3, family)
    assert len(built) == 3, f"{len(built)} docs built for 3"
    assert as_bytes(few) == as_bytes(docs(tok, 11, family)[:3])


def test_the_cache_gives_back_byte_identical_docs(tokenizer_dir, cache_dir, built,
                                                  monkeypatch):
    tok = tokenizer_dir("bpe")
    first = docs(tok, 5)
    assert len(built) == 5
    again = docs(tok, 5)
    assert len(built) == 5, "the second build built docs instead of loading them"
    assert as_bytes(again) == as_bytes(first)
    monkeypatch.setenv("LC_EVAL_CACHE", "off")
    assert as_bytes(docs(tok, 5)) == as_bytes(first), "cached docs differ from a fresh build"


def test_a_longer_build_continues_the_cached_prefix_exactly(tokenizer_dir, cache_dir, built,
                                                            monkeypatch):
    tok = tokenizer_dir("bpe")
    docs(tok, 2)
    longer = docs(tok, 7)
    assert [i for *_, i in built] == [0, 1, 2, 3, 4, 5, 6]  # 0, 1 once; then 2..6 only
    monkeypatch.setenv("LC_EVAL_CACHE", "off")
    assert as_bytes(longer) == as_bytes(docs(tok, 7))


@pytest.mark.parametrize("change", ["tokenizer", "option", "seed"])
def test_another_tokenizer_or_option_misses_the_cache(change, tokenizer_dir, cache_dir, built):
    docs(tokenizer_dir("bpe"), 2)
    other = {"tokenizer": (tokenizer_dir("char"), {}), "option": (tokenizer_dir("bpe"),
             {"depths": [0, 100]}), "seed": (tokenizer_dir("bpe"), {"seed": 7})}[change]
    docs(other[0], 2, **other[1])
    assert len(built) == 4, f"a different {change} was served from the cache"


def test_the_tokenizer_fingerprint_is_its_content_not_its_path(tokenizer_dir, tmp_path):
    from transformers import AutoTokenizer

    from lc_models.zoo.tiny import build_tokenizer

    build_tokenizer("bpe").save_pretrained(tmp_path / "copy")
    same = [AutoTokenizer.from_pretrained(p) for p in (tokenizer_dir("bpe"), tmp_path / "copy")]
    assert tokenizer_fingerprint(same[0]) == tokenizer_fingerprint(same[1])
    other = AutoTokenizer.from_pretrained(tokenizer_dir("char"))
    assert tokenizer_fingerprint(other) != tokenizer_fingerprint(same[0])


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "not json"])
def test_a_corrupt_entry_is_rebuilt(damage, tokenizer_dir, cache_dir, built):
    tok = tokenizer_dir("bpe")
    first = docs(tok, 3)
    (entry,) = [p for p in cache_dir.rglob("0000001.json")]
    data = entry.read_bytes()
    entry.write_bytes({"truncated": data[: len(data) // 2],
                       "flipped byte": data[:-10] + bytes([data[-10] ^ 1]) + data[-9:],
                       "not json": b"garbage"}[damage])
    again = docs(tok, 3)
    assert [i for *_, i in built] == [0, 1, 2, 1], "the damaged doc was not rebuilt"
    assert as_bytes(again) == as_bytes(first)


WRITER = """
import sys
from lc_tasks import dataset
dataset.docs("niah_single", 2048, tokenizer=sys.argv[1], num_samples=4)
"""


def test_two_processes_writing_the_same_entries_leave_valid_ones(tokenizer_dir, cache_dir):
    tok = str(tokenizer_dir("bpe"))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, tok]) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    (folder,) = {p.parent for p in cache_dir.rglob("*.json")}
    assert not list(folder.glob(".*.tmp")), "a temporary file was left behind"
    assert len(list(folder.glob("*.json"))) == 4
    from lc_tasks.options import task_spec
    from lc_tasks.tokenizer import load_tokenizer

    cache = dataset._cache(task_spec("niah_single", 2048, num_samples=4), 42,
                           load_tokenizer(tok))
    assert cache.folder == folder
    for i in range(4):
        assert cache.get(i) is not None, f"doc {i} is not intact"


def test_the_cache_can_be_turned_off(tokenizer_dir, monkeypatch, tmp_path, built):
    monkeypatch.setenv("LC_EVAL_CACHE", "off")
    docs(tokenizer_dir("bpe"), 2)
    docs(tokenizer_dir("bpe"), 2)
    assert len(built) == 4
    assert not list(tmp_path.rglob("*.json"))
