"""Natural-looking prose from word lists and sentence patterns, generated offline.

RULER hides needles in Paul Graham essays, which must be downloaded. We write
prose instead: each sentence fills a randomly chosen pattern with words drawn
from our lists, and sentences are grouped into paragraphs. With ~40 patterns
and ~1000 words the number of distinct sentences is astronomically large, so
a million tokens of it never repeats visibly. The text holds no digits and no
hyphenated words, so it can never contain a needle's key or value by chance.

>>> import random
>>> sents = sentences(random.Random(0), 3)
>>> all(s[0].isupper() and s.endswith((".", "!", "?")) for s, _ in sents)
True
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from lc_tasks import words

__all__ = ["PATTERNS", "iter_sentences", "sentences"]

NAMES = (
    "Ada", "Basil", "Clara", "Dmitri", "Elena", "Felix", "Greta", "Hugo", "Iris", "Jonas",
    "Keira", "Leo", "Mira", "Nico", "Olga", "Pavel", "Quinn", "Rosa", "Silas", "Tamsin",
    "Uma", "Victor", "Wren", "Xavier", "Yara", "Zane", "Marta", "Omar", "Priya", "Tomas",
)
PLACES = (
    "the harbor", "the old mill", "the market square", "the northern hills", "the village",
    "the riverbank", "the orchard", "the station", "the valley", "the lighthouse", "the forest",
    "the library", "the bakery", "the quarry", "the meadow", "the town hall", "the coast",
)
ADVERBS = (
    "slowly", "quietly", "carefully", "suddenly", "gladly", "rarely", "often", "gently",
    "eagerly", "patiently", "boldly", "softly", "barely", "easily", "kindly", "calmly",
)
TIMES = (
    "In the morning", "By noon", "That evening", "Later that week", "Before dawn",
    "After the storm", "During the winter", "On the first day of spring", "At dusk",
    "Long ago", "Some years later", "Every autumn", "Once in a while", "At midnight",
)
PREPS = ("near", "beside", "behind", "under", "above", "across", "beyond", "inside", "along")
CONNECT = ("but", "and", "so", "while", "because", "although")

# {a} adjective, {n}/{m} nouns, {v}/{w} past-tense verbs, {name}/{other} names,
# {place}, {adv}, {time}, {prep}, {conj}. "A/a {a}" get the right article later.
PATTERNS = (
    "The {a} {n} {v} the {m} {prep} {place}.",
    "{name} {v} a {a} {n} and {w} it {adv}.",
    "{time}, {name} {v} the {n} {prep} the {a} {m}.",
    "Nobody knew why the {n} looked so {a}.",
    "It was a {a} day when {name} first {v} the {n}.",
    "{name} {adv} {v} the {a} {n}, {conj} {other} {w} the {m}.",
    "There was a {a} {n} {prep} {place}, and everyone {v} it.",
    "{time}, the {n} seemed {a} and a little {b}.",
    "A {a} {n} is easy to miss, {conj} a {b} {m} is not.",
    "{name} said that the {n} {prep} {place} was {a}.",
    "Some people {v} the {n} {adv}, others never did.",
    "The {n} and the {m} were both {a} that year.",
    "{name} {v} a {n} for {other}, who {w} it {adv}.",
    "When the {n} grew {a}, {name} {v} the {m}.",
    "{time}, a {a} {n} {v} the {m} without a sound.",
    "Why would anyone {base} a {a} {n}?",
    "{name} had never {v} a {n} so {a}.",
    "The road to {place} passed a {a} {n} and a {b} {m}.",
    "Everyone agreed that the {n} was {a}.",
    "{name} {v} the {n}, then {w} the {m} {prep} {place}.",
    "Few things were as {a} as the {n} {prep} {place}.",
    "{time}, {name} and {other} {v} a {a} {n}.",
    "The {a} {n} {v} the {b} {m} once more.",
    "It is said that {name} {v} every {n} {prep} {place}.",
    "What a {a} {n} that was!",
    "{name} {adv} {v} the {n} {prep} the {m}.",
    "Under a {a} sky, the {n} {v} the {m}.",
    "The {n} belonged to {name}, {conj} {other} {v} it {adv}.",
    "{time}, the {a} {n} was kept by {name}.",
    "If you {base} the {n}, you will find it {a}.",
    "{name} kept a {a} {n} {prep} the {m}.",
    "The story of the {a} {n} was told {prep} {place}.",
    "{name} {v} the {n} {conj} the {m} was {a}.",
    "Each {n} {prep} {place} was {a} in its own way.",
    "{name} looked at the {n} and {v} it {adv}.",
    "The {m} {prep} {place} was {a}, {conj} the {n} was {b}.",
    "{time}, {name} {v} a {n} near {place}.",
    "Even the {a} {n} {v} the {m} {adv}.",
    "No one {v} the {a} {n} {prep} {place}.",
    "{name} found the {n} {a} and the {m} {b}.",
)

_SLOT = re.compile(r"\{(\w+)\}")
_ARTICLE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


def _fill(pattern: str, rng: random.Random) -> str:
    ns, adjs, vs = words.nouns(), words.adjectives(), words.verbs()
    chosen: dict[str, str] = {}

    def pick(slot: str) -> str:
        if slot in chosen:
            return chosen[slot]
        if slot in ("n", "m"):
            value = rng.choice(ns)
        elif slot in ("a", "b"):
            value = rng.choice(adjs)
        elif slot in ("v", "w"):
            value = rng.choice(vs)[1]
        elif slot == "base":
            value = rng.choice(vs)[0]
        elif slot in ("name", "other"):
            value = rng.choice(NAMES)
            while slot == "other" and value == chosen.get("name"):
                value = rng.choice(NAMES)
        elif slot == "place":
            value = rng.choice(PLACES)
        elif slot == "adv":
            value = rng.choice(ADVERBS)
        elif slot == "time":
            value = rng.choice(TIMES)
        elif slot == "prep":
            value = rng.choice(PREPS)
        elif slot == "conj":
            value = rng.choice(CONNECT)
        else:  # pragma: no cover - a typo in PATTERNS
            raise KeyError(slot)
        chosen[slot] = value
        return value

    text = _SLOT.sub(lambda m: pick(m.group(1)), pattern)
    text = _ARTICLE.sub(lambda m: m.group(1) + "n ", text)  # "a apple" -> "an apple"
    return text[0].upper() + text[1:]


def iter_sentences(rng: random.Random) -> Iterator[tuple[str, bool]]:
    """Endless ``(sentence, starts_paragraph)`` pairs; paragraphs hold 3-7 sentences."""
    while True:
        for i in range(rng.randint(3, 7)):
            yield _fill(rng.choice(PATTERNS), rng), i == 0


def sentences(rng: random.Random, k: int) -> list[tuple[str, bool]]:
    """The first ``k`` pairs of :func:`iter_sentences`.

    >>> sentences(random.Random(1), 1)[0][1]
    True
    """
    it = iter_sentences(rng)
    return [next(it) for _ in range(k)]
