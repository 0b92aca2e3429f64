"""Plan loglikelihood requests into as few forward passes as their shared prefixes allow.

A request is ``(context, continuation)`` in tokens; scoring it needs the logits at the
positions that predict its continuation. Two kinds of sharing make one pass serve many:

* **branches**: requests with the same context (the choices of a multiple-choice question)
  share the prefill of that context; each continuation is then scored from a copy of the
  state after it;
* **riders**: a request whose ``context + continuation`` *is* another request's context is
  scored inside that context's prefill, from its logits, at no extra cost. Chains compose:
  the position buckets of ``lc_ppl`` (context ``d[:a]``, continuation ``d[a:b]``, the next
  bucket's context ``d[:b]``, ...) all ride on the pass over the longest context, so a whole
  document is one pass however many buckets it has.

Logits at position ``p`` depend only on tokens ``[0, p]``, so a rider's scores from the long
pass are exactly those of its own pass.

>>> reqs = [((1, 2), (3,)), ((1, 2, 3), (4, 5)), ((1, 2, 3), (9,)), ((7,), (8,))]
>>> [(p.context, p.branches, p.riders) for p in plan_passes(reqs)]
[((1, 2, 3), [1, 2], [0]), ((7,), [3], [])]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

__all__ = ["Pass", "RiderScores", "plan_passes"]


@dataclass
class Pass:
    """One prefill of ``context[:-1]`` and the requests it serves (indices into the requests)."""

    context: tuple[int, ...]
    branches: list[int]  # continuations of ``context``, scored after it from state copies
    riders: list[int] = field(default_factory=list)  # scored from this prefill's own logits


def plan_passes(requests: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[Pass]:
    """Passes for ``requests`` (``(context, continuation)`` token sequences), longest context
    first; every request is served by exactly one pass."""
    contexts = [tuple(context) for context, _ in requests]
    by_context: dict[tuple[int, ...], list[int]] = {}
    by_full: dict[tuple[int, ...], list[int]] = {}
    for i, (context, continuation) in enumerate(requests):
        by_context.setdefault(contexts[i], []).append(i)
        by_full.setdefault(contexts[i] + tuple(continuation), []).append(i)
    served: set[int] = set()
    passes = []
    for context in sorted(by_context, key=len, reverse=True):
        branches = [i for i in by_context[context] if i not in served]
        if not branches:  # every request of this context rides on a longer pass
            continue
        served.update(branches)
        riders: list[int] = []
        inside = [context]  # prefixes of ``context`` that are some request's full sequence
        while inside:
            for i in by_full.get(inside.pop(), []):
                if i not in served:
                    served.add(i)
                    riders.append(i)
                    inside.append(contexts[i])
        passes.append(Pass(context, branches, riders))
    return passes


class RiderScores:
    """The riders' ``(log-likelihood, is_greedy)``, read off the logits of the passes they
    ride on; ``on_chunk`` is ``lc_models.prefill.feed``'s hook.

    contexts[row]: the context whose ``[:-1]`` row ``row`` of the batch feeds; riders[row]: the
    ``(context, continuation)`` of each request riding on it. Position ``p`` of a row predicts
    ``contexts[row][p + 1]``; a rider scores positions ``[len(context) - 1, len(context) +
    len(continuation) - 1)``.
    """

    def __init__(self, contexts: Sequence[Sequence[int]],
                 riders: Sequence[Sequence[tuple[Sequence[int], Sequence[int]]]]):
        self.contexts = contexts
        self.spans = [[(len(c) - 1, len(c) + len(t) - 1) for c, t in row] for row in riders]
        self.totals = [[0.0] * len(row) for row in riders]
        self.greedy = [[True] * len(row) for row in riders]
        self.any = any(self.spans)

    def on_chunk(self, row_ids: list[int], start: int, logits: torch.Tensor) -> None:
        width = logits.shape[1]  # logits (b, T, vocab) at positions [start, start + T)
        for k, row in enumerate(row_ids):
            live = [j for j, (a, b) in enumerate(self.spans[row]) if a < start + width and
                    b > start]
            if not live:
                continue
            lo = min(max(self.spans[row][j][0], start) for j in live)
            hi = max(min(self.spans[row][j][1], start + width) for j in live)
            targets = torch.tensor(self.contexts[row][lo + 1 : hi + 1], device=logits.device)
            part = logits[k, lo - start : hi - start].float()  # (hi - lo, vocab)
            logprobs = part.log_softmax(-1).gather(-1, targets[:, None])[:, 0].double()
            hits = part.argmax(-1) == targets  # (hi - lo,)
            for j in live:
                a = max(self.spans[row][j][0], start) - lo
                b = min(self.spans[row][j][1], start + width) - lo
                self.totals[row][j] += float(logprobs[a:b].sum())
                self.greedy[row][j] = self.greedy[row][j] and bool(hits[a:b].all())

    def results(self, row: int) -> list[tuple[float, bool]]:
        """``(log-likelihood, is_greedy)`` of each rider of ``row``, in the order given."""
        return list(zip(self.totals[row], self.greedy[row]))
