"""RULER's frequent-word extraction.

Coded words (random 6-letter strings) appear with Zipf-like counts
``N * k**-alpha / zeta(alpha)`` for rank k; rank 1 is the noise word "...",
and the model names ranks 2-4. The vocabulary has ``(L - max_gen_toks) // 50``
words, as in RULER; ``N`` is sized to the budget.
"""

from __future__ import annotations

import random
import string

from lc_tasks.generators.common import Built, copies_estimate, repeated
from lc_tasks.options import TaskSpec
from lc_tasks.prompts import split_template
from lc_tasks.sizing import TokenCounter, fit_to_length


def zeta(alpha: float, terms: int = 1000) -> float:
    """Riemann zeta for ``alpha > 1`` (Euler-Maclaurin tail).

    >>> round(zeta(2.0), 6)
    1.644934
    """
    head = sum(k ** -alpha for k in range(1, terms))
    return head + terms ** (1 - alpha) / (alpha - 1) + 0.5 * terms ** -alpha


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.counter = counter
        self.alpha = float(spec.params["alpha"])
        self.word_len = int(spec.params["word_len"])
        self.vocab_size = max(8, (spec.length - spec.info.max_gen_toks) // 50)
        self.offset = 0.0
        z = zeta(self.alpha)
        self.weights = [k ** -self.alpha / z for k in range(1, self.vocab_size + 1)]
        # Smallest N from which the 3 answers always out-count rank 5 (no ties).
        w3, w4 = self.weights[3], self.weights[4]
        bad = [n for n in range(1, 20_000) if not int(n * w3) > max(int(n * w4), 0)]
        self.n_min = (bad[-1] + 1) if bad else 1

    def counts(self, n: int) -> list[int]:
        return [int(n * w) for w in self.weights]

    def doc(self, rng: random.Random, depth: float | None = None) -> Built:
        vocab: set[str] = set()
        while len(vocab) < self.vocab_size:
            vocab.add("".join(rng.choices(string.ascii_lowercase, k=self.word_len)))
        ranked = sorted(vocab)
        rng.shuffle(ranked)
        ranked[0] = "..."  # the most frequent "word" is noise, as in RULER
        head, tail = split_template("fwe", query_first=self.spec.query_first)
        fixed = self.counter.count(head + tail)
        tokens = self.counter.piece_counts([" " + w for w in ranked])
        copies = self.spec.repeat_context

        def estimate(n: int) -> float:
            return copies_estimate(self.counter, fixed,
                                   sum(c * t for c, t in zip(self.counts(n), tokens)), copies)

        n_max = max(self.n_min, 64)
        while estimate(n_max) <= self.spec.budget:
            n_max *= 2
        shuffle_seed = rng.getrandbits(64)

        def build(n: int) -> tuple[str, None]:
            text = [w for w, c in zip(ranked, self.counts(n)) for _ in range(c)]
            random.Random(shuffle_seed).shuffle(text)
            return repeated(head, " ".join(text), tail, copies)[0], None

        fit = fit_to_length(build, estimate, budget=self.spec.budget, n_min=self.n_min,
                            n_max=n_max, counter=self.counter, offset=self.offset)
        self.offset = fit.offset
        return Built(fit.prompt, ranked[1:4], fit.n_tokens, None, [])


__all__ = ["Generator", "zeta"]
