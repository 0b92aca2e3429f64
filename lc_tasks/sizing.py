"""Exact token counting and fitting a prompt to a token budget.

A prompt is sized by a single integer ``n`` (how many haystack pieces, words
or list entries it holds). ``fit_to_length`` finds the largest ``n`` whose
prompt, tokenized exactly as lm-eval's ``hf`` model will send it
(``tokenizer(prompt).input_ids``, special tokens included), fits the budget.

Why not RULER's loop? It re-tokenizes the whole prompt for every candidate
size, which is quadratic in the length. Here the search runs on a cheap
estimate (cumulative token counts of the pieces, counted once) and the real
tokenizer is only asked to check candidates: usually one or two full encodes
per prompt, whatever the length.

>>> # build_tokenizer(kind): an offline test tokenizer, given by tests/test_doctests.py
>>> counter = TokenCounter(build_tokenizer("char"))
>>> words = ["a" * 10] * 100                    # 100 pieces of 10 tokens each
>>> fit = fit_to_length(lambda n: ("".join(words[:n]), None), lambda n: 10 * n,
...                     budget=255, n_min=0, n_max=100, counter=counter)
>>> fit.n, fit.n_tokens
(25, 250)
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lc_tasks.chat import PLAIN, Frame
from lc_tasks.errors import UsageError

__all__ = ["Encoded", "Fit", "SizingError", "TokenCounter", "fit_to_length"]


class SizingError(UsageError):
    """The prompt cannot be made to fit the requested length (a user error: ask for a longer
    length, or fewer needles)."""


@dataclass
class Encoded:
    """One full encode of a prompt."""

    n_tokens: int
    # End character offset of every token, for fast tokenizers; None otherwise.
    ends: list[int] | None


class TokenCounter:
    """Counts tokens with one tokenizer, exactly as lm-eval's ``hf`` model encodes a context.

    Whole prompts go through the counter's ``frame`` first (``lc_tasks.chat``): a chat template
    or a system instruction is counted as part of the prompt.

    >>> c = TokenCounter(build_tokenizer("char"))
    >>> c.count("pass key"), c.piece_counts(["ab", " cd", "ab"])
    (8, [2, 3, 2])
    """

    def __init__(self, tokenizer: Any, frame: Frame = PLAIN):
        self.tokenizer = tokenizer
        self.frame = frame  # how a prompt becomes the model's text (plain or a chat template)
        self.fast = bool(getattr(tokenizer, "is_fast", False))
        self._pieces: dict[str, int] = {}

    def plain(self) -> TokenCounter:
        """A counter of plain prompts with the same tokenizer (this one, if it is plain)."""
        if self.frame == PLAIN:
            return self
        other = TokenCounter(self.tokenizer)
        other._pieces = self._pieces
        return other

    def encode(self, text: str) -> Encoded:
        """Full encode of the model's text for the prompt ``text`` (its frame applied), with
        the tokenizer's default special tokens."""
        text = self.frame.text(text)
        if self.fast:
            enc = self.tokenizer(text, return_offsets_mapping=True, verbose=False)
            return Encoded(len(enc["input_ids"]), [end for _, end in enc["offset_mapping"]])
        return Encoded(len(self.tokenizer(text, verbose=False)["input_ids"]), None)

    def count(self, text: str) -> int:
        """Number of tokens of the prompt ``text`` as the model reads it (frame applied,
        special tokens included)."""
        return len(self.tokenizer(self.frame.text(text), verbose=False)["input_ids"])

    def piece_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text on its own, without special tokens (batched, cached)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._pieces))
        if todo:
            ids = self.tokenizer(todo, add_special_tokens=False, verbose=False)["input_ids"]
            new = {t: len(i) for t, i in zip(todo, ids)}
            if len(self._pieces) < 100_000:  # repeated pieces (noise) are cached
                self._pieces.update(new)
        else:
            new = {}
        return [self._pieces[t] if t in self._pieces else new[t] for t in texts]

    def positions(self, text: str, enc: Encoded, char_offsets: Sequence[int]) -> list[int]:
        """Index of the token holding each character offset of the prompt ``text``, in the
        model's text (``enc`` is its encode; the frame may put text before the prompt)."""
        shift = self.frame.offset(text)
        if enc.ends is not None:
            # First token that ends after the character: bisect on the sorted ends.
            return [bisect.bisect_right(enc.ends, shift + c) for c in char_offsets]
        full = self.frame.text(text)
        return [len(self.tokenizer(full[:shift + c], verbose=False)["input_ids"])
                for c in char_offsets]


@dataclass
class Fit:
    """The chosen size and its prompt."""

    n: int
    prompt: str
    extra: Any  # whatever ``build`` returned beside the prompt
    enc: Encoded
    offset: float  # measured tokens minus estimate; a good starting hint for the next prompt

    @property
    def n_tokens(self) -> int:
        return self.enc.n_tokens


def fit_to_length(
    build: Callable[[int], tuple[str, Any]],
    estimate: Callable[[int], float],
    *,
    budget: int,
    n_min: int,
    n_max: int,
    counter: TokenCounter,
    offset: float = 0.0,
    max_encodes: int = 12,
    slack: int | None = None,
) -> Fit:
    """Largest ``n`` in ``[n_min, n_max]`` whose ``build(n)`` prompt has ``<= budget`` tokens.

    ``estimate(n)`` must be cheap and non-decreasing; it only steers the search.
    Each step encodes one candidate in full, corrects the estimate by the
    measured error, and narrows the bracket ``[best fit, smallest overflow)``.
    It stops when the next size would overflow by the corrected estimate, or
    when a fitting prompt is within ``slack`` tokens of the budget (default
    ``max(4, budget // 1000)``: one encode fewer for a 0.1% shorter prompt).
    Raises ``SizingError`` when even ``n_min`` overflows.
    """

    def largest(off: float, lo: int, hi: int) -> int | None:
        # Largest n in [lo, hi] with estimate(n) + off <= budget, by bisection.
        if lo > hi or estimate(lo) + off > budget:
            return None
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if estimate(mid) + off <= budget:
                lo = mid
            else:
                hi = mid - 1
        return lo

    slack = max(4, budget // 1000) if slack is None else slack
    best: Fit | None = None
    overflow = n_max + 1  # smallest n known to overflow
    n = largest(offset, n_min, n_max)
    n = n_min if n is None else n
    for _ in range(max_encodes):
        prompt, extra = build(n)
        enc = counter.encode(prompt)
        offset = enc.n_tokens - estimate(n)
        if enc.n_tokens <= budget:
            if best is None or n > best.n:
                best = Fit(n, prompt, extra, enc, offset)
            if budget - enc.n_tokens <= slack:
                break
        else:
            overflow = min(overflow, n)
        lo, hi = (best.n + 1 if best else n_min), overflow - 1
        nxt = largest(offset, lo, hi)
        if nxt is None:
            if best is not None or lo > hi:
                break
            nxt = lo  # the estimate says nothing fits: measure the smallest size
        n = nxt
    if best is None:
        raise SizingError(
            f"the prompt needs more than {budget} tokens even at its smallest "
            f"({n_min} haystack pieces); choose a longer length"
        )
    return best
