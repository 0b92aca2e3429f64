"""The exactness check lc_hf runs on every model: float32 strict, half precision robust to
rounding but not to a state that is not carried."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from lc_models.hf_runners import runner_for
from lc_models.verify import HALF_PRECISION_TOLERANCE, chunked_error, position_errors


def load(tiny_model, arch, dtype=torch.float32, model_type=None):
    model = AutoModelForCausalLM.from_pretrained(tiny_model(arch), dtype=dtype).eval()
    if model_type:
        model.config.model_type = model_type  # an unknown name: no architecture module
    return model


class Wrapped:
    """A runner whose prefill is changed by ``fn(runner, ids, state) -> (logits, state)``."""

    def __init__(self, runner, fn):
        self.runner, self.fn = runner, fn
        self.model, self.device = runner.model, runner.device

    def new_state(self, batch):
        return self.runner.new_state(batch)

    def prefill(self, ids, state):
        return self.fn(self.runner, ids, state)


def forget_on_single_tokens(runner, ids, state):
    """Decoding steps start from a fresh state: the chunks are right, the last 3 steps wrong."""
    return runner.prefill(ids, runner.new_state(ids.shape[0]) if ids.shape[1] == 1 else state)


class NoisyFirstChunk(Wrapped):
    """Rounding noise at one position of each probe's first chunk (a probe starts with
    ``new_state``): half the largest logit, or 0.5."""

    def __init__(self, runner):
        super().__init__(runner, None)

    def new_state(self, batch):
        self.first = True
        return super().new_state(batch)

    def prefill(self, ids, state):
        logits, state = self.runner.prefill(ids, state)
        if self.first:
            self.first = False
            logits = logits.clone()
            logits[0, 0, 0] += 0.5 * logits.abs().max().clamp(min=1.0)
        return logits, state


def nan_at_one_step(runner, ids, state):
    """The decoding steps return a NaN logit."""
    logits, state = runner.prefill(ids, state)
    if ids.shape[1] == 1:
        logits = logits.clone()
        logits[1, 0, 3] = float("nan")
    return logits, state


def wrong_shape_at_one_step(runner, ids, state):
    logits, state = runner.prefill(ids, state)
    return (logits[:, :, :-1] if ids.shape[1] == 1 else logits), state


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_a_right_model_passes_and_forgetting_the_state_fails(tiny_model, dtype):
    model = load(tiny_model, "llama", dtype, "someones_llama")
    runner = runner_for(model, verify=False)
    half = dtype == torch.bfloat16
    assert chunked_error(runner, half=half) <= (HALF_PRECISION_TOLERANCE if half else 1e-4)
    assert runner_for(model) is not None  # the check itself accepts it
    broken = Wrapped(runner, forget_on_single_tokens)
    assert chunked_error(broken, half=half) > 2 * HALF_PRECISION_TOLERANCE


def test_one_noisy_position_fails_float32_but_not_half_precision(tiny_model):
    runner = NoisyFirstChunk(runner_for(load(tiny_model, "llama"), verify=False))
    errors, _ = position_errors(runner)
    assert (errors > 0.4).sum() == 1  # the noise is in each probe, at one position
    assert chunked_error(runner) > 0.4  # refused in float32 (1e-4)
    assert chunked_error(runner, half=True) < 1e-4


@pytest.mark.parametrize("fn", [nan_at_one_step, wrong_shape_at_one_step])
def test_a_nan_or_a_wrong_shape_anywhere_fails_in_any_precision(tiny_model, fn):
    runner = Wrapped(runner_for(load(tiny_model, "llama"), verify=False), fn)
    assert chunked_error(runner) == float("inf")
    assert chunked_error(runner, half=True) == float("inf")


def test_a_state_lost_in_one_sequence_of_the_batch_fails_half_precision(tiny_model):
    """The check runs two sequences as a batch: a bug that resets only the second is caught,
    though it leaves half the positions of every segment right."""
    def reset_second_row(runner, ids, state):
        logits, state = runner.prefill(ids, state)
        fresh, _ = runner.prefill(ids, runner.new_state(ids.shape[0]))
        return torch.cat([logits[:1], fresh[1:]]), state

    model = load(tiny_model, "llama", torch.bfloat16, "someones_llama")
    runner = Wrapped(runner_for(model, verify=False), reset_second_row)
    assert chunked_error(runner, half=True) > 2 * HALF_PRECISION_TOLERANCE
