"""Passkey retrieval (Mohtashami & Jaggi 2023, landmark attention).

The prompt, exactly as in the landmark-attention code: the task line, the
noise, the information line on its own line at the doc's depth, more noise,
then "What is the pass key? The pass key is". The key has 5 digits.
"""

from __future__ import annotations

import random

from lc_tasks.generators.common import Built, NeedleFitter, choose_haystack
from lc_tasks.options import TaskSpec
from lc_tasks.prompts import split_template
from lc_tasks.sizing import TokenCounter

NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.fitter = NeedleFitter(counter, spec.budget, repeat=spec.repeat_context)
        # Landmark joins its noise with spaces; the key line always stands on its own line.
        self.choice = choose_haystack(spec, lines=False)
        self.choice.sep = "\n"

    def doc(self, rng: random.Random, depth: float) -> Built:
        key = str(rng.randint(10_000, 99_999))
        head, tail = split_template(self.spec.family, query_first=self.spec.query_first)
        fit, positions = self.fitter.fit(head, tail, [(depth / 100, NEEDLE.format(key=key))],
                                         self.choice, rng)
        return Built(fit.prompt, [key], fit.n_tokens, depth, positions)
