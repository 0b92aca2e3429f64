"""Loss by position: whole documents, cut into log-spaced position buckets.

A doc is a stretch of the haystack source (our prose by default, or the user's text file or
``hf:`` dataset, e.g. PG-19, whose rows are joined and which a doc reads from a random
sentence on, across row boundaries) sized to the task's length, and its buckets
``[0, 1k), [1k, 2k), [2k, 4k), ..., [L/2, L)`` (``lc_tasks.families.position_buckets``).
Each bucket becomes one loglikelihood request whose context is the whole document before
it, so the per-token loss of a bucket is measured with everything before it in view, and
the requests of a doc are prefixes of one another: ``lc_hf`` serves them in one pass.

Cuts fall at a word boundary (the context ends in a non-space, the continuation starts
with the whitespace: lm-eval moves a context's trailing whitespace into the continuation),
at the token nearest below each bucket edge whose prefix
tokenizes on its own exactly as it does inside the document (without special tokens, as
lm-eval encodes a context), so the tokens lm-eval scores for the buckets are the
document's own tokens, each exactly once. The first bucket's context is the first word
(a context cannot be empty without lm-eval putting a BOS/EOS token before it).

>>> from lc_tasks.generators import generate
>>> from lc_tasks.options import task_spec
>>> # build_tokenizer(kind): an offline test tokenizer, given by tests/test_doctests.py
>>> doc = generate(task_spec("ppl", 4096, num_samples=1), build_tokenizer("bpe"))[0]
>>> [b["label"] for b in doc["buckets"]], doc["buckets"][1]["start"] <= 1024
(['0-1k', '1k-2k', '2k-4k'], True)
>>> [doc["input"][b["cut"][0]:b["cut"][1]] for b in doc["buckets"]] != []
True
"""

from __future__ import annotations

import random

from lc_tasks.families import bucket_label, position_buckets
from lc_tasks.generators.common import Built, NeedleFitter, choose_haystack
from lc_tasks.options import TaskSpec
from lc_tasks.sizing import SizingError, TokenCounter

MAX_TRIES = 64  # candidate cut tokens tried below each bucket edge


def bucket_requests(doc: dict) -> list[tuple[str, str]]:
    """The ``(context, continuation)`` of each of a doc's buckets, in order."""
    text = doc["input"]
    return [(text[: b["cut"][0]], text[b["cut"][0] : b["cut"][1]]) for b in doc["buckets"]]


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.tokenizer = counter.tokenizer
        self.fitter = NeedleFitter(counter, spec.budget)
        self.choice = choose_haystack(spec, lines=True)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]

    def _cut(self, text: str, ids: list[int], ends: list[int], candidates, edge: int) -> int:
        """The first token index k of ``candidates`` where the document can be cut: token
        k - 1 ends in a non-space, a whitespace follows it, and ``text[:ends[k - 1]]``
        tokenizes to ``ids[:k]``."""
        tried = 0
        for k in candidates:
            cut = ends[k - 1]
            if not text[cut : cut + 1].isspace() or text[cut - 1 : cut].isspace():
                continue
            if self._ids(text[: ends[k - 1]]) == ids[:k]:
                return k
            tried += 1
            if tried == MAX_TRIES:
                break
        raise SizingError(f"lc_{self.spec.family}: found no place to cut the document near "
                          f"token {edge} (a text without whitespace?); use another haystack")

    def doc(self, rng: random.Random, depth: float | None = None) -> Built:
        fit, _ = self.fitter.fit("", "", [], self.choice, rng)
        text = fit.prompt
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                             verbose=False)
        ids, ends = enc["input_ids"], [end for _, end in enc["offset_mapping"]]
        edges = position_buckets(self.spec.length)
        last = len(ids) - 1
        if last <= edges[-1][0]:
            raise SizingError(f"lc_{self.spec.family} at {self.spec.length} tokens: the document "
                              f"holds {len(ids)} tokens, not past its last bucket's start "
                              f"{edges[-1][0]}; lower reserve")
        starts = [self._cut(text, ids, ends, range(1, last), 1)]  # after the first word
        for start, _ in edges[1:]:  # the nearest cut at or below each edge
            starts.append(self._cut(text, ids, ends, range(min(start, last), starts[-1], -1),
                                    start))
        bounds = [*starts, len(ids)]
        buckets = [
            {"label": bucket_label(*edge), "start": a, "end": b,
             "cut": [ends[a - 1], len(text) if b == len(ids) else ends[b - 1]]}
            for edge, a, b in zip(edges, bounds, bounds[1:])
        ]
        return Built(text, [], fit.n_tokens, None, [], extra={"buckets": buckets})


__all__ = ["Generator", "bucket_requests"]
