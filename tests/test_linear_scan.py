"""linear_scan (RecurrentGemma's RG-LRU recurrence) against its per-token reference, and the
patched RG-LRU against transformers' own loop."""

from __future__ import annotations

import os

import pytest
import torch

from lc_models.ops.linear_scan import linear_scan, linear_scan_ref

NATIVE_OFF = os.environ.get("LC_EVAL_NATIVE", "1") == "0"
BACKENDS = ["torch", pytest.param("native", marks=pytest.mark.skipif(
    NATIVE_OFF, reason="LC_EVAL_NATIVE=0"))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("channels", [5, 300], ids=lambda c: f"C{c}")  # a partial block too
@pytest.mark.parametrize("L", [1, 7, 64], ids=lambda L: f"L{L}")
def test_chunks_equal_one_reference_pass(backend, channels, L):
    g = torch.Generator().manual_seed(L + channels)
    a, x = torch.rand(2, 2 * L, channels, generator=g), torch.randn(2, 2 * L, channels, generator=g)
    h0 = torch.randn(2, channels, generator=g)
    y_ref, h_ref = linear_scan_ref(a, x, h0)
    y1, h1 = linear_scan(a[:, :L], x[:, :L], h0, backend=backend)
    y2, h2 = linear_scan(a[:, L:], x[:, L:], h1, backend=backend)
    assert torch.allclose(torch.cat([y1, y2], 1), y_ref, atol=1e-5)
    assert torch.allclose(h2, h_ref, atol=1e-5)
    assert torch.equal(h0, h0.clone()), "the initial state was changed in place"


# gates as RecurrentGemma makes them (in [0, 1]), and the edges of that range
GATES = {
    "uniform": lambda g, shape: torch.rand(shape, generator=g),
    "near-one": lambda g, shape: 1 - torch.rand(shape, generator=g) * 1e-6,
    "near-zero": lambda g, shape: torch.rand(shape, generator=g) * 1e-30,
    "resets": lambda g, shape: torch.rand(shape, generator=g) * (
        torch.rand(shape, generator=g) > 0.1),  # a = 0 exactly at one token in ten
}


@pytest.mark.parametrize("chunk", [1, 5, 16], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("gate", sorted(GATES))
@pytest.mark.parametrize("L", [37, 300], ids=lambda L: f"L{L}")  # 300: several blocks
def test_torch_form_equals_the_reference(chunk, gate, L):
    g = torch.Generator().manual_seed(L)
    a, x = GATES[gate](g, (2, L, 33)), torch.randn(2, L, 33, generator=g)
    h0 = torch.randn(2, 33, generator=g)
    y_ref, h_ref = linear_scan_ref(a, x, h0)
    y, h = linear_scan(a, x, h0, backend="torch", chunk_size=chunk)
    scale = y_ref.abs().max()
    assert ((y - y_ref).abs().max() / scale).item() < 1e-4, f"y, {gate} gates, chunk {chunk}"
    assert ((h - h_ref).abs().max() / scale).item() < 1e-4, f"h, {gate} gates, chunk {chunk}"


def test_a_zero_gate_forgets_exactly():
    """log(0) is floored where its exponent underflows to 0: the state is x, bit for bit."""
    a, x = torch.full((1, 20, 4), 0.9), torch.randn(1, 20, 4)
    a[:, 11] = 0.0
    y, _ = linear_scan(a, x, torch.randn(1, 4) * 1e6, backend="torch")
    y_fresh, _ = linear_scan(a[:, 11:], x[:, 11:], backend="torch")
    assert torch.equal(y[:, 11], x[:, 11])
    assert torch.allclose(y[:, 11:], y_fresh, rtol=1e-5, atol=1e-6), "the old state leaked"


def test_the_patched_rg_lru_matches_transformers_loop():
    from transformers import RecurrentGemmaConfig
    from transformers.models.recurrent_gemma.modeling_recurrent_gemma import (
        RecurrentGemmaRglru,
    )

    from lc_models.hf_runners.recurrent_gemma import rnn_scan

    torch.manual_seed(0)
    cfg = RecurrentGemmaConfig(hidden_size=32, lru_width=32, num_attention_heads=4)
    lru = RecurrentGemmaRglru(cfg)
    for p in lru.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(2, 11, 32)
    positions = torch.arange(3, 14).expand(2, 11).clone()
    positions[1, 4] = 0  # a document boundary inside the chunk resets the state
    h0 = torch.randn(2, 32)
    with torch.no_grad():
        lru.recurrent_states = h0.clone()
        theirs, their_state = lru(x, positions), lru.recurrent_states
        lru._rnn_scan = rnn_scan.__get__(lru)
        lru.recurrent_states = h0.clone()
        ours, our_state = lru(x, positions), lru.recurrent_states
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.allclose(our_state, their_state, atol=1e-5)
