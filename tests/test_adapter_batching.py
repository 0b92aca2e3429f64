"""Batching never changes results, and no padding ever reaches a model state.

Rows of a batch start together and leave it when they end (``lc_models.prefill``),
so batch_size > 1 must give the numbers of batch_size = 1 exactly (up to float
rounding of batched matmuls).
"""

from __future__ import annotations

import pytest
import torch
from lm_eval.api.instance import Instance
from transformers import AutoModelForCausalLM

from lc_models.adapter import LongContextLM
from lc_models.hf_runners import runner_for
from lc_models.prefill import feed

# hybrids (recurrent + attention), pure recurrent, pure attention, and a non-Cache state
ARCHS = ["jamba", "recurrent_gemma", "qwen3_next", "zamba2", "mamba", "rwkv", "llama"]
TEXT = (
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
    "What is the pass key? The pass key is 98765. Remember it."
)
CONTEXTS = [TEXT[:37], TEXT[:81], TEXT[:55], TEXT]
LOGLIKELIHOOD = [(c, cont) for c in CONTEXTS for cont in (" blue", " 98765 again.")]
DOCUMENTS = [TEXT[:23], TEXT, TEXT[:64], ""]
GENERATIONS = [(c, {"until": ["\n"], "max_gen_toks": 6}) for c in CONTEXTS]



def make(kind, args_list):
    return [Instance(kind, {}, args, i) for i, args in enumerate(args_list)]


def run_all(path, batch_size):
    lm = LongContextLM(pretrained=str(path), chunk_size=7, batch_size=batch_size, device="cpu")
    return (
        lm.loglikelihood(make("loglikelihood", LOGLIKELIHOOD), disable_tqdm=True),
        lm.loglikelihood_rolling(make("loglikelihood_rolling", [(d,) for d in DOCUMENTS])),
        lm.generate_until(make("generate_until", GENERATIONS), disable_tqdm=True),
    )


@pytest.mark.parametrize("arch", ARCHS)
def test_batch_size_three_equals_one(arch, tiny_model):
    path = tiny_model(arch, tie_word_embeddings=False)
    ll_one, roll_one, gen_one = run_all(path, 1)
    ll_three, roll_three, gen_three = run_all(path, 3)
    for (a, ga), (b, gb), req in zip(ll_one, ll_three, LOGLIKELIHOOD):
        assert abs(a - b) <= 1e-5 and ga == gb, f"{arch} loglikelihood {req}: {a} vs {b}"
    for a, b in zip(roll_one, roll_three):
        assert abs(a - b) <= 1e-4, f"{arch} rolling: {a} vs {b}"
    assert gen_three == gen_one, arch


class RecordingRunner:
    """Wraps a runner and records every chunk it is fed."""

    def __init__(self, runner):
        self.runner, self.calls = runner, []
        self.model, self.device = runner.model, runner.device

    def new_state(self, batch_size):
        return self.runner.new_state(batch_size)

    def prefill(self, input_ids, state, last_only=False):
        self.calls.append((state.n_tokens, input_ids.tolist()))
        return self.runner.prefill(input_ids, state, last_only)


def test_feed_only_ever_feeds_real_tokens_at_their_positions(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model("jamba")).eval()
    recorder = RecordingRunner(runner_for(model))
    rows = [[5, 6, 7, 8, 9], [], [10 + i for i in range(13)], [30 + i for i in range(9)]]
    ends = feed(recorder, rows, recorder.new_state(len(rows)), chunk_size=4, keep_states=True)
    seen = {i: [] for i in range(len(rows))}
    for start, chunk in recorder.calls:
        # every row of a chunk is the exact next slice of a real row: no pad, no shift
        live = [i for i, row in enumerate(rows) if row[start : start + len(chunk[0])] in chunk]
        assert len(live) == len(chunk), f"chunk at {start} holds tokens of no row: {chunk}"
        for i in live:
            seen[i].append(start)
    for i, row in enumerate(rows):
        starts = sorted(seen[i])
        assert starts == sorted(set(starts)), f"row {i} fed twice at one position"
        assert ends[i].state.n_tokens == len(row), f"row {i} state at {ends[i].state.n_tokens}"
    boundaries = {start for start, _ in recorder.calls}
    assert {5, 9} <= boundaries, "chunks must end where rows end (5 and 9)"


def test_row_states_equal_states_fed_alone(tiny_model):
    """The state a row ends with in a batch is the state it gets alone."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model("recurrent_gemma")).eval()
    runner = runner_for(model)
    rows = [[5 + (i * 7) % 90 for i in range(n)] for n in (23, 9, 17)]
    batched = feed(runner, rows, runner.new_state(3), chunk_size=5, keep_states=True)
    probe = torch.tensor([[42]])
    for row, end in zip(rows, batched):
        alone = feed(runner, [row], runner.new_state(1), chunk_size=5, keep_states=True)[0]
        got, _ = runner.prefill(probe, end.state)
        want, _ = runner.prefill(probe, alone.state)
        assert torch.allclose(got, want, atol=1e-5), f"row of {len(row)} tokens"
