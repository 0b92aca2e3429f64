"""Decoding after a chunked prefill: one token at a time from the carried state.

``Sampler`` turns lm-eval's generation kwargs into a next-token rule (greedy
unless ``do_sample``), with transformers' own logits processors for
temperature, top-k, top-p, min-p and repetition penalty. ``decode`` runs the
loop; stopping (EOS, stop strings) is the caller's predicate.

>>> sampler = Sampler.from_gen_kwargs({"do_sample": False, "temperature": 0.0})
>>> sampler.greedy
True
>>> Sampler.from_gen_kwargs({"num_beams": 4})
Traceback (most recent call last):
...
lc_tasks.errors.UsageError: lc_hf does not support generation kwargs {'num_beams': 4} ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from lc_models.args import SAMPLING_KWARGS, check_gen_kwargs
from lc_models.state import Runner, State


class Sampler:
    """Chooses the next token from logits ``(vocab,)`` and the tokens so far."""

    def __init__(
        self,
        do_sample: bool = False,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        min_p: float | None = None,
        repetition_penalty: float | None = None,
    ):
        from transformers import (
            LogitsProcessorList,
            MinPLogitsWarper,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        self.greedy = not do_sample or not temperature
        # the order transformers' generate applies them in
        steps = []
        if repetition_penalty not in (None, 1.0):
            steps.append(RepetitionPenaltyLogitsProcessor(float(repetition_penalty)))
        if not self.greedy:
            if temperature != 1.0:
                steps.append(TemperatureLogitsWarper(float(temperature)))
            if top_k:
                steps.append(TopKLogitsWarper(int(top_k)))
            if top_p is not None and top_p < 1.0:
                steps.append(TopPLogitsWarper(float(top_p)))
            if min_p:
                steps.append(MinPLogitsWarper(float(min_p)))
        self.processors = LogitsProcessorList(steps)

    @classmethod
    def from_gen_kwargs(cls, kwargs: dict) -> Sampler:
        """From lm-eval's normalized generation kwargs (``until`` and
        ``max_gen_toks`` already removed)."""
        kwargs = check_gen_kwargs(kwargs)
        return cls(**{k: v for k, v in kwargs.items() if k in SAMPLING_KWARGS})

    def __call__(self, logits: torch.Tensor, history: Sequence[int]) -> int:
        scores = logits.float()[None]  # (1, vocab)
        if len(self.processors):
            ids = torch.tensor([list(history)], dtype=torch.long, device=scores.device)
            scores = self.processors(ids, scores)
        if self.greedy:
            return int(scores.argmax(-1))
        return int(torch.multinomial(scores.softmax(-1), 1))


@torch.no_grad()
def decode(
    runner: Runner,
    state: State,
    logits: torch.Tensor,
    *,
    max_new_tokens: int,
    sampler: Sampler,
    should_stop: Callable[[list[int]], bool],
    context: Sequence[int] = (),
) -> list[int]:
    """Generate up to ``max_new_tokens`` tokens after a prefilled one-row ``state``
    whose last position produced ``logits`` ``(vocab,)``; stops after the token
    for which ``should_stop(generated)`` is true. ``state`` is consumed."""
    generated: list[int] = []
    for step in range(max_new_tokens):
        token = sampler(logits, [*context, *generated])
        generated.append(token)
        if step + 1 == max_new_tokens or should_stop(generated):
            break
        ids = torch.tensor([[token]], dtype=torch.long, device=runner.device)
        out, state = runner.prefill(ids, state, last_only=True)
        logits = out[0, -1]
    return generated
