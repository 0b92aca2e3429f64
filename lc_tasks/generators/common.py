"""Pieces shared by the generators: per-doc seeds, haystack choice, needle fitting."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache

from lc_tasks import haystack as hs
from lc_tasks.options import TaskSpec
from lc_tasks.sizing import Fit, TokenCounter, fit_to_length

__all__ = ["COPY_SEP", "Built", "HaystackChoice", "NeedleFitter", "choose_haystack", "doc_seed",
           "repeated"]

# Between the copies of a context that is read twice (option repeat_context).
COPY_SEP = "\n\n"

# RULER's 40 depth levels; needles other than the one at the doc's depth go here.
RULER_LEVELS: tuple[float, ...] = tuple(float(round(100 * i / 39)) for i in range(40))


def repeated(head: str, context: str, tail: str, copies: int) -> tuple[str, int]:
    """``head + context + tail`` with the context ``copies`` times (joined by ``COPY_SEP``),
    and the character offset where its last copy starts.

    >>> repeated("Q: ", "ctx", " A:", 2)
    ('Q: ctx\\n\\nctx A:', 8)
    """
    last = len(head) + (copies - 1) * (len(context) + len(COPY_SEP))
    return head + COPY_SEP.join([context] * copies) + tail, last


def copies_estimate(counter: TokenCounter, fixed: float, context: float, copies: int) -> float:
    """Estimated tokens of a prompt whose context (``context`` tokens) appears ``copies`` times
    around ``fixed`` tokens of head and tail."""
    return fixed + copies * context + (copies - 1) * counter.piece_counts([COPY_SEP])[0]


@dataclass
class Built:
    """One generated prompt, before it becomes an lm-eval doc."""

    prompt: str
    outputs: list[str]
    n_tokens: int
    depth: float | list[float] | None
    positions: list[int]  # token index where each needle starts, same order as depth
    extra: dict = field(default_factory=dict)  # family-specific record fields (e.g. distances)


def doc_seed(seed: int, family: str, length: int, index: int) -> int:
    """A 63-bit seed for one doc, stable across processes and Python versions.

    >>> doc_seed(42, "passkey", 1024, 0) == doc_seed(42, "passkey", 1024, 0)
    True
    """
    digest = hashlib.sha256(f"lc-eval/{seed}/{family}/{length}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class HaystackChoice:
    """Where a needle family's filler comes from and how needles sit in it."""

    name: str  # noise | prose | text (file or hf:)
    units: Callable[[random.Random], Iterator[hs.Unit]]  # fresh unit stream for one doc
    sep: str | None  # around needles; None: the whitespace at the insertion point
    per_doc: bool  # False: the same haystack for every doc (noise), grown once


@cache
def _text(source: str, split: str, column: str) -> str:
    return hs.load_text(source, split=split, column=column)


def choose_haystack(spec: TaskSpec, *, lines: bool = True) -> HaystackChoice:
    """The haystack asked for by ``spec.haystack`` or the family's default.

    ``lines``: noise as RULER's lines (needles on their own line between lines);
    False gives the landmark passkey's single stream of sentences.
    """
    name = spec.haystack or spec.info.haystack or "noise"
    if name == "noise":
        return HaystackChoice("noise", lambda rng: hs.noise_units(lines=lines), "\n", False)
    if name == "prose":
        return HaystackChoice("prose", hs.prose_units, None, True)
    text = _text(name, spec.haystack_split, spec.haystack_column)
    return HaystackChoice("text", lambda rng: hs.text_units(text, rng), None, True)


class NeedleFitter:
    """Puts needles at given depths into a haystack sized to the budget.

    The prompt is ``head + haystack-with-needles + tail``. Depths are fractions
    of the haystack's tokens; each maps to the nearest unit start, so when the
    haystack is cut shorter the needles move with it. With ``repeat=k`` the
    haystack-with-needles appears k times (joined by ``COPY_SEP``), the whole prompt
    still within the budget; needle positions are those of the last copy, the one
    the question follows.
    """

    def __init__(self, counter: TokenCounter, budget: int, repeat: int = 1):
        self.counter = counter
        self.budget = budget
        self.repeat = repeat  # copies of the context (read-twice prompting), joined by COPY_SEP
        self.offset = 0.0  # last doc's estimate error: a good start for the next
        self._shared: dict[str, hs.Haystack] = {}

    def _haystack(self, choice: HaystackChoice, rng: random.Random, want: float
                  ) -> tuple[hs.Haystack, Callable[[float], hs.Haystack]]:
        """A haystack of about ``want`` tokens, and a function to grow a bigger one."""
        seed = rng.getrandbits(64)
        key = f"{choice.name}/{choice.sep!r}"

        def make(more: float) -> hs.Haystack:
            hay = hs.grow(choice.units(random.Random(seed)), self.counter, more)
            if not choice.per_doc:
                self._shared[key] = hay
            return hay

        if choice.per_doc:
            return make(want), make
        shared = self._shared.get(key)
        if shared is None or shared.cum[-1] < want:
            shared = make(want)
        return shared, make

    def fit(
        self,
        head: str,
        tail: str,
        needles: Sequence[tuple[float, str]],
        choice: HaystackChoice,
        rng: random.Random,
        *,
        units: Callable[[random.Random], Iterator[hs.Unit]] | None = None,
    ) -> tuple[Fit, list[int]]:
        """Fit and return ``(fit, needle token positions)``; needles are (fraction, text).

        ``units`` overrides the choice's unit stream (needle haystacks).
        """
        if units is not None:
            choice = HaystackChoice(choice.name, units, choice.sep, True)
        fixed = copies_estimate(self.counter, self.counter.count(head + tail), sum(
            self.counter.piece_counts([f"\n{text}\n" for _, text in needles])), self.repeat)
        want = self.budget * 1.1 / self.repeat + 64
        hay, make = self._haystack(choice, rng, want)
        while True:
            fit = self._fit_in(hay, head, tail, needles, choice.sep, fixed)
            if fit.n < len(hay) or want > 64 * self.budget:
                break
            # Every piece was used: the estimate over-counted. Grow and fit again.
            want *= 2
            hay = make(want)
        self.offset = fit.offset
        return fit, self.counter.positions(fit.prompt, fit.enc, fit.extra)

    def _fit_in(self, hay: hs.Haystack, head: str, tail: str,
                needles: Sequence[tuple[float, str]], sep: str | None, fixed: int) -> Fit:
        def build(n: int) -> tuple[str, list[int]]:
            placed = [(hay.boundary(n, frac), text) for frac, text in needles]
            body, offsets = hay.render(n, placed, sep=sep)
            prompt, last = repeated(head, body, tail, self.repeat)
            return prompt, [last + o for o in offsets]

        return fit_to_length(build, lambda n: fixed + self.repeat * hay.cum[n],
                             budget=self.budget, n_min=0, n_max=len(hay), counter=self.counter,
                             offset=self.offset)
