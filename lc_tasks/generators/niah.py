"""RULER's needle-in-a-haystack family; the eight variants are rows of ``FAMILIES``.

Needle: "One of the special magic numbers for <key> is: <value>." Keys are
``adjective-noun`` words or UUIDs, values 7-digit numbers or UUIDs. The first
needle whose value is asked for sits at the doc's depth; every other needle
goes to a distinct random level of RULER's 40 (0, 3, 5, ... 100%).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

from lc_tasks import words
from lc_tasks.generators.common import (
    RULER_LEVELS,
    Built,
    HaystackChoice,
    NeedleFitter,
    choose_haystack,
)
from lc_tasks.options import TaskSpec
from lc_tasks.prompts import split_template
from lc_tasks.sizing import TokenCounter

NEEDLE = "One of the special magic {kind}s for {key} is: {value}."


def _value(kind: str, rng: random.Random) -> str:
    if kind == "number":
        return str(rng.randint(1_000_000, 9_999_999))
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _keys(kind: str, rng: random.Random, k: int, exclude: frozenset[str] = frozenset()):
    if kind == "word":
        return words.key_words(rng, k, exclude)
    out: list[str] = []
    while len(out) < k:
        key = _value("uuid", rng)
        if key not in exclude and key not in out:
            out.append(key)
    return out


def _distractors(kind_k: str, kind_v: str, rng: random.Random,
                 exclude: frozenset[str]) -> Iterator[tuple[str, str, bool]]:
    """Endless needle lines with fresh keys: the haystack of niah_needles/uuidkv."""
    if kind_k == "word":
        adjs, nouns = words.adjectives(), words.nouns()
        pool = len(adjs) * len(nouns)
        seen = set(exclude)

        def word_keys():
            # Rejection sampling: O(lines used), not O(pool) per doc.
            while len(seen) < pool:
                i = rng.randrange(pool)
                key = f"{adjs[i // len(nouns)]}-{nouns[i % len(nouns)]}"
                if key not in seen:
                    seen.add(key)
                    yield key

        keys = word_keys()
    else:
        keys = (k for k in iter(lambda: _value("uuid", rng), None) if k not in exclude)
    for key in keys:
        yield NEEDLE.format(kind=kind_v, key=key, value=_value(kind_v, rng)), "\n", True
    raise ValueError("ran out of distinct needle keys; use a shorter length")


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.p = spec.info.params
        self.fitter = NeedleFitter(counter, spec.budget, repeat=spec.repeat_context)
        self.needle_haystack = spec.info.haystack == "needles"
        if self.needle_haystack:
            # One needle per line, as in RULER; the lines are made per doc in doc().
            self.choice = HaystackChoice("needles", lambda rng: iter(()), "\n", True)
        else:
            self.choice = choose_haystack(spec, lines=True)

    def doc(self, rng: random.Random, depth: float) -> Built:
        p = self.p
        num_keys = max(p["num_keys"], p["num_queries"])
        keys = _keys(p["key"], rng, num_keys)
        values = {k: [_value(p["value"], rng) for _ in range(p["num_values"])] for k in keys}
        asked = [keys[i] for i in rng.sample(range(num_keys), p["num_queries"])]
        # Needles with an asked-for value first, in answer order; then the others.
        order = [k for k in asked] + [k for k in keys if k not in asked]
        needles = [(k, v) for k in order for v in values[k]]
        outputs = [v for k in asked for v in values[k]]
        levels = rng.sample(RULER_LEVELS, len(needles) - 1)
        depths = [float(depth), *levels]
        texts = [NEEDLE.format(kind=p["value"], key=k, value=v) for k, v in needles]

        single = p["num_queries"] * p["num_values"] == 1
        query = asked[0] if len(asked) == 1 else ", ".join(asked[:-1]) + ", and " + asked[-1]
        head, tail = split_template(self.spec.family, single=single, query=query,
                                    type_v=p["value"] + ("" if single else "s"),
                                    query_first=self.spec.query_first)
        units = None
        if self.needle_haystack:
            seed = rng.getrandbits(64)
            exclude = frozenset(keys)
            units = lambda _rng: _distractors(p["key"], p["value"], random.Random(seed), exclude)
        fit, positions = self.fitter.fit(head, tail, [(d / 100, t) for d, t in zip(depths, texts)],
                                         self.choice, rng, units=units)
        depth_out: float | list[float] = depths[0] if len(depths) == 1 else depths
        return Built(fit.prompt, outputs, fit.n_tokens, depth_out, positions)


__all__ = ["NEEDLE", "Generator"]
