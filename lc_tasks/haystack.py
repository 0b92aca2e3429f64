"""Haystacks: the filler text that needles hide in.

A haystack is a list of *pieces* (words, each with the whitespace before it)
grouped into *units* (sentences or lines). Sizing cuts it after any piece, so
a prompt can fill its budget to within a word; needles go in only at unit
starts (or at the very end), so they never split a sentence.

Sources (``make_units``):

* ``noise``: RULER's repeated "The grass is green. ..." lines (landmark
  attention's passkey joins them with spaces instead of newlines);
* ``prose``: generated text (``lc_tasks.prose``), different for every doc;
* a text file, or ``hf:<dataset>[:<config>]``: the user's text, split into
  sentences and cycled from a random start;
* ``needles``: lines that are themselves needles (RULER's multikey 2 and 3),
  supplied by the generator.

>>> from lc_tasks.sizing import TokenCounter
>>> # build_tokenizer(kind): an offline test tokenizer, given by tests/test_doctests.py
>>> hay = grow(noise_units(lines=True), TokenCounter(build_tokenizer("char")), 60)
>>> hay.text(8)
'The grass is green. The sky is blue.'
>>> hay.render(8, [(0, "NEEDLE")], sep="\\n")[0]
'NEEDLE\\nThe grass is green. The sky is blue.'
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lc_tasks import prose
from lc_tasks.errors import UsageError
from lc_tasks.sizing import TokenCounter

__all__ = ["Haystack", "grow", "load_text", "noise_units", "prose_units", "text_units"]

NOISE = ("The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
         "There and back again.")

# A unit: (text, whitespace before it, may a needle go right before it?)
Unit = tuple[str, str, bool]

# Words, splitting after hyphens too so a UUID is several pieces (fine sizing).
_PIECE = re.compile(r"\s*(?:[^\s-]+-?|-)")


@dataclass
class Haystack:
    pieces: list[str]  # each piece carries its leading whitespace; pieces[0] has none
    cum: list[float]  # cum[i]: estimated tokens of pieces[:i]; len(pieces) + 1 entries
    starts: list[int]  # piece indices where a unit starts (needle insertion points)

    def __len__(self) -> int:
        return len(self.pieces)

    def text(self, n: int) -> str:
        """The first ``n`` pieces, without needles."""
        return "".join(self.pieces[:n])

    def boundary(self, n: int, fraction: float) -> int:
        """Insertion point nearest to ``fraction`` of the first ``n`` pieces' tokens.

        Candidates are the unit starts before ``n`` and ``n`` itself (the end).
        """
        target = fraction * self.cum[n]
        hi = bisect.bisect_left(self.starts, n)  # starts[:hi] are < n
        i = bisect.bisect_left(self.starts, target, hi=hi, key=lambda s: self.cum[s])
        best, best_gap = n, abs(self.cum[n] - target)
        for j in (i - 1, i):
            if 0 <= j < hi and abs(self.cum[self.starts[j]] - target) < best_gap:
                best, best_gap = self.starts[j], abs(self.cum[self.starts[j]] - target)
        return best

    def render(
        self, n: int, needles: Sequence[tuple[int, str]], sep: str | None = None,
        default_sep: str = " ",
    ) -> tuple[str, list[int]]:
        """The first ``n`` pieces with ``needles`` (insertion point, text) put in.

        Needles at one point keep their given order. Each needle is surrounded by
        ``sep``, or by the whitespace that was at its insertion point when ``sep``
        is None. Returns the text and each needle's character offset (in input order).
        """
        order = sorted(range(len(needles)), key=lambda i: needles[i][0])  # stable
        out: list[str] = []
        offsets = [0] * len(needles)
        length = 0
        pos = 0  # next piece to copy
        pending: str | None = None  # separator owed after the last needle

        def emit(s: str) -> None:
            nonlocal length
            out.append(s)
            length += len(s)

        for i in order:
            k, needle = needles[i]
            if not pos <= k <= n:
                raise ValueError(f"needle insertion point {k} is outside the first {n} pieces")
            gap = sep if sep is not None else ((_lead(self.pieces[k]) if k < n else "")
                                               or default_sep)
            if k > pos:
                chunk = "".join(self.pieces[pos:k])
                emit(chunk if pending is None else pending + chunk.lstrip())
                emit(gap)
            elif pending is not None:  # right after another needle
                emit(pending)
            offsets[i] = length
            emit(needle)
            pos, pending = k, gap
        if pos < n:
            chunk = "".join(self.pieces[pos:n])
            emit(chunk if pending is None else pending + chunk.lstrip())
        return "".join(out), offsets


def _lead(piece: str) -> str:
    return piece[: len(piece) - len(piece.lstrip())]


def grow(units: Iterable[Unit], counter: TokenCounter, want_tokens: float,
         block: int = 32) -> Haystack:
    """Take units until the haystack holds at least ``want_tokens`` (estimated).

    Each unit is counted once, with its leading whitespace, in batches; its
    count is spread evenly over its pieces. The error this makes at unit joins
    is corrected later by ``fit_to_length``'s full encodes.
    """
    pieces: list[str] = []
    cum: list[float] = [0.0]
    starts: list[int] = []
    it = iter(units)
    while cum[-1] < want_tokens:
        batch = list(itertools.islice(it, block))
        if not batch:
            break
        counts = counter.piece_counts([lead + text for text, lead, _ in batch])
        for (text, lead, is_start), count in zip(batch, counts):
            if not pieces:
                lead = ""
            parts = _PIECE.findall(lead + text)
            if not parts:
                continue
            if is_start:
                starts.append(len(pieces))
            share = count / len(parts)
            for part in parts:
                pieces.append(part)
                cum.append(cum[-1] + share)
        block = min(block * 2, 8192)
    return Haystack(pieces, cum, starts)


def noise_units(lines: bool = True) -> Iterator[Unit]:
    """RULER's noise: the five sentences repeated forever.

    ``lines=True``: each repetition is a line and needles go between lines (RULER).
    ``lines=False``: one space-joined stream, needles between any sentences
    (landmark attention's passkey).
    """
    for i in itertools.count():
        j = i % len(NOISE)
        if lines:
            yield NOISE[j], ("\n" if j == 0 else " "), j == 0
        else:
            yield NOISE[j], " ", True


def prose_units(rng: random.Random) -> Iterator[Unit]:
    """Generated prose; paragraphs are separated by a blank line."""
    for sentence, new_paragraph in prose.iter_sentences(rng):
        yield sentence, ("\n\n" if new_paragraph else " "), True


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def text_units(text: str, rng: random.Random) -> Iterator[Unit]:
    """The user's text as sentences, from a random sentence on, cycled without end.

    Whitespace runs become single spaces, as RULER does with its essays. A run
    of more than 60 words without sentence punctuation is cut into 60-word units
    so that needles still have places to go.
    """
    sentences: list[str] = []
    for sent in _SENTENCE_END.split(" ".join(text.split())):
        ws = sent.split(" ")
        sentences.extend(" ".join(ws[i : i + 60]) for i in range(0, len(ws), 60) if ws[i])
    if not sentences:
        raise UsageError("the haystack text is empty; pass a text file with sentences")
    start = rng.randrange(len(sentences))
    for i in itertools.count(start):
        yield sentences[i % len(sentences)], " ", True


def load_text(source: str, *, split: str = "train", column: str = "text") -> str:
    """Text of a haystack source: a file path, or ``hf:<dataset>[:<config>]``.

    An HF dataset is read with ``datasets.load_dataset`` (hub or local folder);
    the rows of ``column`` are joined by blank lines. A source that cannot give text
    (missing, a folder, empty, not UTF-8) is a UsageError that says what to pass.
    """
    if source.startswith("hf:"):
        import datasets

        name, _, config = source[3:].partition(":")
        try:
            ds = datasets.load_dataset(name, config or None, split=split)
        except Exception as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise UsageError(f"haystack hf:{name}: cannot load it ({split=}): {first}; pass a "
                             "local text file or a dataset this machine can load") from err
        if column not in ds.column_names:
            raise UsageError(f"haystack hf:{name} has no column {column!r}; pass "
                             f"haystack_column=<one of {ds.column_names}>")
        text = "\n\n".join(str(t) for t in ds[column])
    else:
        text = read_text_file(source)
    if not text.strip():
        raise UsageError(f"haystack {source!r} is empty; pass a text file with sentences")
    return text


def read_text_file(source: str) -> str:
    """The UTF-8 text of a haystack file, or a UsageError naming what is wrong with it."""
    path = Path(source).expanduser()
    what = f"haystack {source!r}"
    fix = "pass 'noise', 'prose', a UTF-8 text file or 'hf:<dataset>'"
    if path.is_dir():
        raise UsageError(f"{what} is a folder, not a text file; {fix}")
    if not path.is_file():
        raise UsageError(f"{what} is neither 'noise', 'prose', an existing text file, nor "
                         "'hf:<dataset>': no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{what} is not UTF-8 text (byte {err.start}: "
                         f"{err.object[err.start:err.start + 1]!r}); {fix}") from None
    except OSError as err:
        raise UsageError(f"{what} cannot be read ({err.strerror}); {fix}") from None
