"""attend_chunk (keys split at the chunk, no mask) against the masked reference, and lc_sdpa
(lc_models/hf_runners/lc_sdpa.py) inside transformers models against their full forward pass."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from lc_models.hf_runners import lc_sdpa as arch_attention
from lc_models.hf_runners import runner_for
from lc_models.ops.attention import attend_chunk, attend_chunk_ref
from lc_models.prefill import feed

# (queries T, keys S): first chunk, one query, a chunk after a long past, odd sizes
SHAPES = [(1, 1), (5, 5), (1, 9), (3, 10), (7, 7 + 63), (16, 200), (63, 64)]


def assert_near(actual, expected, what, tol=2e-6):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = (actual - expected).abs().max().item()
    assert err < tol, f"{what}: max error {err:.2e} >= {tol:.0e}"


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2), (6, 1)], ids=["mha", "gqa2", "mqa"])
@pytest.mark.parametrize("T,S", SHAPES, ids=[f"T{t}-S{s}" for t, s in SHAPES])
def test_matches_the_masked_reference(T, S, heads, kv_heads):
    g = torch.Generator().manual_seed(T * 1000 + S)
    q = torch.randn(2, heads, T, 8, generator=g)
    k, v = torch.randn(2, 2, kv_heads, S, 8, generator=g).unbind(0)
    assert_near(attend_chunk(q, k, v), attend_chunk_ref(q, k, v), f"T={T} S={S}")
    assert_near(attend_chunk(q, k, v, scale=0.3), attend_chunk_ref(q, k, v, scale=0.3),
                "with a scale")


def test_values_of_another_head_size():
    """MLA models (DeepSeek-V2/V3) attend with 192-wide queries and keys over 128-wide
    values; the CPU flash kernel takes one head size, so such chunks take the masked path."""
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(1, 2, 4, 6, generator=g), torch.randn(1, 2, 9, 6, generator=g)
    v = torch.randn(1, 2, 9, 5, generator=g)
    scores = (q @ k.transpose(-1, -2)) / 6**0.5  # (1, 2, 4, 9): query i sees keys <= 5 + i
    scores = scores.masked_fill(torch.arange(9) > 5 + torch.arange(4)[:, None], float("-inf"))
    assert_near(attend_chunk(q, k, v), scores.softmax(-1) @ v, "head sizes 6 and 5")


def test_keys_may_be_a_prefix_view_of_a_larger_buffer():
    """A reserved KV cache hands attention views of its filled prefix, not contiguous copies."""
    g = torch.Generator().manual_seed(0)
    buffer = torch.randn(2, 1, 3, 50, 8, generator=g)  # (k|v, batch, heads, capacity, d)
    k, v = buffer[0, ..., :37, :], buffer[1, ..., :37, :]
    q = torch.randn(1, 3, 12, 8, generator=g)
    assert_near(attend_chunk(q, k, v), attend_chunk_ref(q, k.contiguous(), v.contiguous()),
                "prefix views")


def test_fewer_keys_than_queries_is_an_error():
    with pytest.raises(ValueError, match="at least as many keys"):
        attend_chunk(torch.randn(1, 1, 4, 8), torch.randn(1, 1, 3, 8), torch.randn(1, 1, 3, 8))


def _causal(T, S):
    return (torch.arange(S) <= S - T + torch.arange(T)[:, None])[None, None]


@pytest.mark.parametrize("case", ["causal", "padded key", "sliding window", "float mask", "none"])
def test_only_the_bottom_right_causal_mask_takes_the_split(case):
    T, S = 4, 11
    mask = _causal(T, S)
    if case == "padded key":
        mask = mask.clone()
        mask[..., 0] = False
    elif case == "sliding window":
        mask = mask & (torch.arange(S) > torch.arange(T)[:, None] + S - T - 5)
    elif case == "float mask":
        mask = torch.zeros(1, 1, T, S)
    elif case == "none":
        mask = None
    assert arch_attention._bottom_right_causal(mask, T, S) == (case == "causal")


@pytest.mark.parametrize("arch", ["llama", "mistral", "bamba"])
@pytest.mark.parametrize("chunk", [1, 7, 16], ids=lambda c: f"chunk{c}")
def test_chunked_prefill_with_lc_sdpa_equals_the_full_forward(tiny_model, monkeypatch, arch,
                                                              chunk):
    """mistral's sliding window (24 tokens) is not bottom-right causal past 24 keys: the same
    numbers through sdpa's own path there (with 16-token chunks, from the second chunk on)."""
    calls = []
    monkeypatch.setattr(arch_attention, "attend_chunk",
                        lambda *a, **k: calls.append(1) or attend_chunk(*a, **k))
    model = AutoModelForCausalLM.from_pretrained(tiny_model(arch)).eval()
    ids = [[5 + (i * 7) % 90 for i in range(50)]]
    with torch.no_grad():
        full = model(torch.tensor(ids)).logits[0]
    runner = runner_for(model, verify=False)
    assert model.config._attn_implementation == arch_attention.NAME
    state = runner.new_state(1)
    state.reserve(50)
    chunks = []
    feed(runner, ids, state, chunk_size=chunk, on_chunk=lambda rows, s, lg: chunks.append(lg))
    err = (torch.cat(chunks, 1)[0] - full).abs().max().item()
    assert err < 1e-4, f"{arch}, chunk {chunk}: max logit error {err:.2e}"
    window = getattr(model.config, "sliding_window", None) or len(ids[0])
    if 1 < chunk and 2 * chunk <= window:  # some chunk after the first sees only causal keys
        assert calls, "the split attention never ran"
