r"""Associative recall at scale: many key -> value pairs, a few of them asked for.

Zoology's multi-query associative recall (MQAR) in words: a fixed-size recurrent state holds
only so many pairs, so accuracy against the pair count at a fixed length measures a model's
state capacity, and accuracy against the length at a fixed pair count measures how long it
keeps them. Each pair is a line "The number of <adjective-noun> is <digits>.", the pairs sit
at evenly spaced depths of a noise haystack (one pair: at the doc's depth), keys in random
order, values distinct. The first asked pair is the one nearest the doc's depth (or its
``distances`` target), the others are drawn at random. Every doc records the token distance
from each asked pair to the end of the prompt, where the question is.

>>> import re
>>> from lc_tasks.generators import generate
>>> from lc_tasks.options import task_spec
>>> # build_tokenizer(kind): an offline test tokenizer, given by tests/test_doctests.py
>>> doc = generate(task_spec("kvrecall", 2048, num_samples=1, num_pairs=8),
...                build_tokenizer("bpe"))[0]
>>> pairs = re.findall(r"The number of ([a-z]+-[a-z]+) is (\d+)\.", doc["input"])
>>> doc["num_pairs"], len(pairs), doc["outputs"][0] in dict(pairs).values()
(8, 8, True)
"""

from __future__ import annotations

import random

from lc_tasks import words
from lc_tasks.generators.common import Built, NeedleFitter, choose_haystack
from lc_tasks.options import TaskSpec
from lc_tasks.prompts import split_template
from lc_tasks.sizing import TokenCounter

PAIR = "The number of {key} is {value}."


def pair_levels(num_pairs: int, depth: float) -> list[float]:
    """Depths (percent) of the pairs: evenly spaced from 0 to 100, or the doc's for one.

    >>> pair_levels(5, 30.0), pair_levels(1, 30.0)
    ([0.0, 25.0, 50.0, 75.0, 100.0], [30.0])
    """
    if num_pairs == 1:
        return [float(depth)]
    return [round(100 * i / (num_pairs - 1), 4) for i in range(num_pairs)]


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.p = spec.params
        self.fitter = NeedleFitter(counter, spec.budget, repeat=spec.repeat_context)
        self.choice = choose_haystack(spec, lines=True)

    def doc(self, rng: random.Random, depth: float) -> Built:
        num_pairs, num_queries = self.p["num_pairs"], self.p["num_queries"]
        digits = self.p["value_digits"]
        keys = words.key_words(rng, num_pairs)
        values = [str(v) for v in rng.sample(range(10 ** (digits - 1), 10**digits), num_pairs)]
        levels = pair_levels(num_pairs, depth)
        first = min(range(num_pairs), key=lambda i: (abs(levels[i] - depth), i))
        rest = [i for i in range(num_pairs) if i != first]
        asked = [first, *rng.sample(rest, num_queries - 1)]
        query = [keys[i] for i in asked]
        query_text = query[0] if len(query) == 1 else ", ".join(query[:-1]) + ", and " + query[-1]
        head, tail = split_template("kvrecall", query=query_text, single=len(query) == 1,
                                    query_first=self.spec.query_first)
        needles = [(levels[i] / 100, PAIR.format(key=keys[i], value=values[i]))
                   for i in range(num_pairs)]
        fit, positions = self.fitter.fit(head, tail, needles, self.choice, rng)
        return Built(
            fit.prompt,
            [values[i] for i in asked],
            fit.n_tokens,
            [levels[i] for i in asked],
            [positions[i] for i in asked],
            extra={"num_pairs": num_pairs,
                   "distances": [fit.n_tokens - positions[i] for i in asked]},
        )


__all__ = ["PAIR", "Generator", "pair_levels"]
