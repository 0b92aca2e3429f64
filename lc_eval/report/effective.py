"""Effective context length: the longest length up to which the score stays at or above a
threshold (RULER's rule; its threshold is Llama-2-7B's score at 4K, 85.6%).

>>> effective_length({1024: 95.0, 2048: 90.0, 4096: 40.0, 8192: 88.0}, 85.6).label()
'2k'
>>> effective_length({1024: 50.0}, 85.6).label()
'< 1k'
>>> effective_length({1024: 99.0, 2048: 99.0}, 85.6).label()
'>= 2k'
"""

from __future__ import annotations

from dataclasses import dataclass

from lc_eval.report.names import length_label

RULER_THRESHOLD = 85.6  # percent


@dataclass(frozen=True)
class EffectiveLength:
    """Result of ``effective_length`` over the measured lengths."""

    tokens: int | None  # longest passing length before the first failure; None: none passes
    shortest: int  # shortest measured length
    longest: int  # longest measured length
    recovers: tuple[int, ...] = ()  # lengths past the first failure that pass again

    def label(self) -> str:
        """``"4k"``; ``"< 1k"`` when even the shortest length fails; ``">= 16k"`` when the
        longest measured length still passes (the true value may be longer)."""
        if self.tokens is None:
            return f"< {length_label(self.shortest)}"
        if self.tokens == self.longest:
            return f">= {length_label(self.longest)}"
        return length_label(self.tokens)


def effective_length(
    scores: dict[int, float], threshold: float = RULER_THRESHOLD
) -> EffectiveLength:
    """Walk the measured lengths upwards; stop at the first score below ``threshold``.

    scores: length in tokens -> score in percent (non-empty).
    """
    if not scores:
        raise ValueError("effective_length needs at least one measured length")
    lengths = sorted(scores)
    passing = [scores[n] >= threshold for n in lengths]
    first_fail = passing.index(False) if False in passing else len(lengths)
    return EffectiveLength(
        tokens=lengths[first_fail - 1] if first_fail > 0 else None,
        shortest=lengths[0],
        longest=lengths[-1],
        recovers=tuple(n for n, ok in zip(lengths[first_fail:], passing[first_fail:]) if ok),
    )
