"""wkv6 (chunked RWKV-6 recurrence) against the per-token reference, from any state."""

from __future__ import annotations

import pytest
import torch

from lc_models.ops.wkv6 import CHUNK, CHUNKS_PER_BLOCK, wkv6, wkv6_ref

# odd lengths, a chunk exactly, and past one block of chunks
LENGTHS = [1, 2, 7, CHUNK, 63, CHUNK * CHUNKS_PER_BLOCK + 5]


def inputs(L, batch=2, heads=3, n=8, seed=0, decay_spread=2.0):
    g = torch.Generator().manual_seed(seed)
    r, k, v = (torch.randn(batch, L, heads, n, generator=g) for _ in range(3))
    # per-token decays from ~1 (log_w ~ 0) down to ~1e-3 and below, as real RWKV-6 has
    log_w = -torch.exp(torch.randn(batch, L, heads, n, generator=g) * decay_spread)
    u = torch.randn(heads, n, generator=g)
    state = torch.randn(batch, heads, n, n, generator=g)
    return r, k, v, log_w, u, state


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1.0)).item()


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("L", LENGTHS)
def test_chunked_equals_per_token_reference(L, with_state):
    r, k, v, log_w, u, state = inputs(L)
    state = state if with_state else None
    want, want_state = wkv6_ref(r, k, v, log_w, u, state)
    got, got_state = wkv6(r, k, v, log_w, u, state, output_final_state=True)
    assert got.shape == want.shape
    assert relative(got, want) < 2e-5, f"L={L}: output"
    assert relative(got_state, want_state) < 2e-5, f"L={L}: final state"


@pytest.mark.parametrize("split", [1, 5, CHUNK, 40])
def test_two_calls_with_the_state_equal_one_call(split):
    r, k, v, log_w, u, _ = inputs(90, seed=1)
    whole, end = wkv6(r, k, v, log_w, u, output_final_state=True)
    a, mid = wkv6(r[:, :split], k[:, :split], v[:, :split], log_w[:, :split], u,
                  output_final_state=True)
    b, end2 = wkv6(r[:, split:], k[:, split:], v[:, split:], log_w[:, split:], u,
                   initial_state=mid, output_final_state=True)
    assert relative(torch.cat([a, b], 1), whole) < 2e-5
    assert relative(end2, end) < 2e-5


def test_strong_decays_stay_finite():
    """Decays of exp(-exp(4)) per token would overflow a split exp(a_t) * exp(-a_s) form."""
    r, k, v, _, u, state = inputs(64, seed=2)
    log_w = torch.full_like(r, -60.0)
    got, _ = wkv6(r, k, v, log_w, u, state)
    want, _ = wkv6_ref(r, k, v, log_w, u, state)
    assert torch.isfinite(got).all()
    assert relative(got, want) < 2e-5


def test_bad_shapes_are_refused():
    r, k, v, log_w, u, state = inputs(5)
    with pytest.raises(ValueError, match="u must have shape"):
        wkv6(r, k, v, log_w, u[:1])
    with pytest.raises(ValueError, match="initial_state must have shape"):
        wkv6(r, k, v, log_w, u, state[:, :1])
