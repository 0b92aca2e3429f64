"""Copying (Jelassi et al. 2024, "Repeat After Me"): repeat a passage of random words.

Reproducing a span verbatim needs memory that grows with the span: attention keeps every
token, a fixed-size recurrent state runs out. The passage is ``copy_words`` words drawn at
random (with replacement) from our word lists, so it cannot be guessed from language; only
words of at most five letters are used, which bounds a word with its space at six tokens of
any tokenizer (``copy_gen_toks``). It stands on its own line, "Passage: w1 w2 ...", at the
doc's depth in RULER's noise; the prompt ends "Repeat the passage word for word. The passage
is:" and the answer is the passage. Each doc records ``copy_words`` and the passage's own
token count, which the task's ``max_gen_toks`` covers (checked for every doc).

>>> from lc_tasks.generators import generate
>>> from lc_tasks.options import task_spec
>>> # build_tokenizer(kind): an offline test tokenizer, given by tests/test_doctests.py
>>> doc = generate(task_spec("copy", 1024, num_samples=1, copy_words=8),
...                build_tokenizer("bpe"))[0]
>>> passage = doc["outputs"][0]
>>> len(passage.split()), f"Passage: {passage}" in doc["input"]
(8, True)
"""

from __future__ import annotations

import random
from functools import cache

from lc_tasks import words
from lc_tasks.generators.common import Built, NeedleFitter, choose_haystack
from lc_tasks.options import TaskSpec
from lc_tasks.prompts import split_template
from lc_tasks.sizing import SizingError, TokenCounter

__all__ = ["LINE", "MAX_LETTERS", "Generator", "passage_words"]

LINE = "Passage: {passage}"
MAX_LETTERS = 5  # see lc_tasks.families.copy_gen_toks


@cache
def passage_words() -> tuple[str, ...]:
    """The words a passage is drawn from: our list words of at most ``MAX_LETTERS`` letters.

    >>> len(passage_words()) > 500, max(map(len, passage_words()))
    (True, 5)
    """
    return tuple(w for w in words.cwe_words() if len(w) <= MAX_LETTERS and w.isalpha())


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.counter = counter
        self.fitter = NeedleFitter(counter, spec.budget, repeat=spec.repeat_context)
        self.choice = choose_haystack(spec, lines=True)

    def doc(self, rng: random.Random, depth: float) -> Built:
        n = self.spec.params["copy_words"]
        passage = " ".join(rng.choices(passage_words(), k=n))
        # What the model must write: the passage after the answer prefix, then the newline.
        gen = self.counter.piece_counts([f" {passage}\n"])[0]
        if gen > self.spec.max_gen_toks:
            raise SizingError(f"lc_{self.spec.family}: the passage is {gen} tokens of this "
                              f"tokenizer, more than max_gen_toks={self.spec.max_gen_toks}")
        head, tail = split_template("copy", num_words=n, query_first=self.spec.query_first)
        fit, positions = self.fitter.fit(head, tail, [(depth / 100, LINE.format(
            passage=passage))], self.choice, rng)
        return Built(fit.prompt, [passage], fit.n_tokens, depth, positions,
                     extra={"copy_words": n, "passage_tokens": gen})
