"""RULER's common-word extraction.

A numbered list where ``num_cw`` common words appear ``cr`` times and every
other word ``ur`` times; the model names the common ones. One solved example
comes first. RULER's settings depend on the length (below 4096 tokens:
example 20 words at 3/1, list at 6/1; else example 40 words at 10/3, list at
30/3). When even the smallest list does not fit (a coarse tokenizer at 1k),
we drop the example, then lower the repeats; ``cr > ur`` always holds.
"""

from __future__ import annotations

import itertools
import random
from typing import NamedTuple

from lc_tasks import words
from lc_tasks.generators.common import Built, copies_estimate, repeated
from lc_tasks.options import TaskSpec
from lc_tasks.prompts import render, split_template
from lc_tasks.sizing import SizingError, TokenCounter, fit_to_length


class Config(NamedTuple):
    shot_words: int  # words in the solved example (0: no example)
    shot_cr: int
    shot_ur: int
    cr: int  # repeats of a common word in the list
    ur: int  # repeats of an uncommon word


LONG = Config(40, 10, 3, 30, 3)
SHORT = Config(20, 3, 1, 6, 1)
FALLBACKS = (Config(0, 0, 0, 6, 1), Config(0, 0, 0, 3, 1), Config(0, 0, 0, 2, 1))


def numbered(entries: list[str]) -> str:
    """``"1. a 2. b"``: RULER's list format."""
    return " ".join(f"{i + 1}. {w}" for i, w in enumerate(entries))


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.counter = counter
        self.num_cw = spec.params["num_cw"]
        self.ladder = ((LONG,) if spec.length >= 4096 else (SHORT,)) + FALLBACKS
        self.offset = 0.0
        self._num_cum = [0.0]  # _num_cum[e]: tokens of the numbers " 1." .. " e."

    def _numbering(self, entries: int) -> float:
        while len(self._num_cum) <= entries:
            start = len(self._num_cum)
            batch = [f" {i}." for i in range(start, max(2 * start, start + 1024))]
            for c in self.counter.piece_counts(batch):
                self._num_cum.append(self._num_cum[-1] + c)
        return self._num_cum[entries]

    def doc(self, rng: random.Random, depth: float | None = None) -> Built:
        real = list(words.cwe_words())
        rng.shuffle(real)
        for cfg in self.ladder:
            try:
                return self._doc(random.Random(rng.getrandbits(64)), cfg, real)
            except SizingError:
                continue
        raise SizingError(
            f"lc_cwe cannot fit {self.num_cw} common words into {self.spec.length} tokens"
        )

    def _doc(self, rng: random.Random, cfg: Config, real: list[str]) -> Built:
        k = self.num_cw
        common, rest = real[:k], real[k:]
        prefix = ""
        if cfg.shot_words:
            shot, rest = rest[: cfg.shot_words], rest[cfg.shot_words :]
            entries = shot[:k] * cfg.shot_cr + shot[k:] * cfg.shot_ur
            rng.shuffle(entries)
            prefix = render("cwe", context=numbered(entries), num_cw=k) + " " + \
                numbered(shot[:k]) + "\n"
        head, tail = split_template("cwe", num_cw=k, query_first=self.spec.query_first)
        head = prefix + head
        copies = self.spec.repeat_context
        budget = self.spec.budget
        fixed = self.counter.count(head + tail)
        common_tokens = sum(self.counter.piece_counts([" " + w for w in common]))
        pool = list(rest)
        cum = [0.0]
        for c in self.counter.piece_counts([" " + w for w in pool]):
            cum.append(cum[-1] + c)

        def estimate(n: int) -> float:
            entries = cfg.cr * k + cfg.ur * n
            return copies_estimate(self.counter, fixed, self._numbering(entries) +
                                   cfg.cr * common_tokens + cfg.ur * cum[n], copies)

        # Past the real words, coin new ones (RULER switches to a bigger dictionary).
        taken = frozenset(real)
        while estimate(len(pool)) <= budget:
            more = words.coined_words(rng, max(256, len(pool)), exclude=taken | frozenset(pool))
            pool += more
            for c in self.counter.piece_counts([" " + w for w in more]):
                cum.append(cum[-1] + c)

        shuffle_seed = rng.getrandbits(64)

        def build(n: int) -> tuple[str, None]:
            entries = common * cfg.cr + list(itertools.chain.from_iterable(
                [w] * cfg.ur for w in pool[:n]))
            random.Random(shuffle_seed).shuffle(entries)
            return repeated(head, numbered(entries), tail, copies)[0], None

        fit = fit_to_length(build, estimate, budget=budget, n_min=k, n_max=len(pool),
                            counter=self.counter, offset=self.offset)
        self.offset = fit.offset
        return Built(fit.prompt, list(common), fit.n_tokens, None, [])


__all__ = ["Config", "Generator", "numbered"]
