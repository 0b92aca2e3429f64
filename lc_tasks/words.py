"""Word lists for haystacks, needle keys and word-counting tasks.

The lists are our own (``lc_tasks/data/*.txt``), shipped in the package: nothing
is downloaded. Every accessor returns the same ordered tuple in every process,
so generators that sample from them with a seeded ``random.Random`` are
deterministic.

>>> from lc_tasks import words
>>> "lantern" in words.nouns() and "quiet" in words.adjectives()
True
>>> words.verbs()[0]
('admire', 'admired')
"""

from __future__ import annotations

import random
from functools import cache
from importlib.resources import files

__all__ = ["adjectives", "coined_words", "cwe_words", "key_words", "nouns", "verbs"]


def _read(name: str) -> tuple[str, ...]:
    text = files("lc_tasks").joinpath("data", name).read_text(encoding="utf-8")
    out: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            out.extend(line.split())
    return tuple(out)


@cache
def nouns() -> tuple[str, ...]:
    """Singular concrete nouns, in file order (duplicates removed)."""
    return tuple(dict.fromkeys(_read("nouns.txt")))


@cache
def adjectives() -> tuple[str, ...]:
    """Adjectives, in file order (duplicates removed)."""
    return tuple(dict.fromkeys(_read("adjectives.txt")))


@cache
def verbs() -> tuple[tuple[str, str], ...]:
    """``(base, past)`` pairs of transitive verbs."""
    flat = _read("verbs.txt")
    if len(flat) % 2:
        raise ValueError("lc_tasks/data/verbs.txt must hold 'base past' pairs")
    return tuple(dict.fromkeys(zip(flat[::2], flat[1::2])))


def key_words(rng: random.Random, k: int, exclude: frozenset[str] = frozenset()) -> list[str]:
    """``k`` distinct ``adjective-noun`` keys (RULER's word keys, e.g. ``quiet-lantern``).

    >>> key_words(random.Random(0), 2)
    ['ornate-quilt', 'radiant-pie']
    """
    adjs, ns = adjectives(), nouns()
    pool = len(adjs) * len(ns)
    if k + len(exclude) > pool:
        raise ValueError(f"asked for {k} distinct word keys; only {pool} exist")
    out: list[str] = []
    seen = set(exclude)
    while len(out) < k:
        # Sampling indices of the (adjective, noun) grid keeps this O(k), not O(pool).
        for i in rng.sample(range(pool), min(pool, k - len(out) + len(seen))):
            key = f"{adjs[i // len(ns)]}-{ns[i % len(ns)]}"
            if key not in seen:
                seen.add(key)
                out.append(key)
                if len(out) == k:
                    break
    return out


@cache
def cwe_words() -> tuple[str, ...]:
    """Real single words for common-word extraction: nouns, adjectives, verb bases."""
    return tuple(dict.fromkeys([*nouns(), *adjectives(), *(base for base, _ in verbs())]))


_ONSETS = ("b", "br", "d", "dr", "f", "g", "gl", "k", "l", "m", "n", "p", "pr", "r", "s",
           "st", "t", "tr", "v", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou")
_CODAS = ("", "", "", "n", "r", "l", "s")


def coined_words(rng: random.Random, k: int, exclude: frozenset[str] = frozenset()) -> list[str]:
    """``k`` distinct pronounceable made-up words of 2-3 syllables (e.g. ``brailo``).

    Common-word extraction needs more distinct words than any real list holds at
    long lengths (about L/15 of them); RULER switches to a bigger dictionary
    there, we coin words instead.

    >>> len(set(coined_words(random.Random(0), 500)))
    500
    """
    out: list[str] = []
    seen = set(exclude)
    while len(out) < k:
        word = "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
            for _ in range(rng.choice((2, 2, 3)))
        )
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out
