"""ops/linear.py: oneDNN's fp32 linear against F.linear, and the patch that routes a model's
linear layers through it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lc_models.ops import linear as linear_mod
from lc_models.ops.linear import fast_backend, linear, linear_ref, patch

SHAPES = [(1, 7, 5), (3, 17, 33), (2, 64, 768)]  # (rows, in, out): odd sizes and a layer's


def assert_near(actual, expected, what):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = ((actual - expected).abs().max() / expected.abs().max().clamp_min(1)).item()
    assert err < 1e-5, f"{what}: relative error {err:.1e}"


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch without oneDNN")
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("rows,d_in,d_out", SHAPES, ids=[f"{r}x{i}x{o}" for r, i, o in SHAPES])
def test_matches_f_linear(rows, d_in, d_out, bias):
    g = torch.Generator().manual_seed(rows + d_in)
    w = torch.randn(d_out, d_in, generator=g)
    b = torch.randn(d_out, generator=g) if bias else None
    x = torch.randn(2, rows, d_in, generator=g)
    assert_near(linear(x, w, b), linear_ref(x, w, b), "3-d input")
    wide = torch.randn(2, rows, d_in + 9, generator=g)[..., 4 : 4 + d_in]  # a slice
    assert_near(linear(wide, w, b), linear_ref(wide, w, b), "strided input")
    assert linear(x[:, :0], w, b).shape == (2, 0, d_out)


def test_patch_routes_linear_layers_and_keeps_the_output(monkeypatch):
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 8))
    x = torch.randn(3, 5, 16)
    expected = model(x)
    monkeypatch.setattr(linear_mod, "MIN_MACS", 0)
    monkeypatch.setattr(linear_mod, "fast_backend", lambda: "onednn")
    calls = []
    monkeypatch.setattr(linear_mod, "linear", lambda *a: calls.append(1) or F.linear(*a))
    assert patch(model) == 2
    assert torch.allclose(model(x), expected, atol=1e-6)
    assert len(calls) == 2, "the patched layers did not use the fast linear"


def test_small_calls_keep_f_linear(monkeypatch):
    model = torch.nn.Linear(16, 32)
    monkeypatch.setattr(linear_mod, "fast_backend", lambda: "onednn")
    calls = []
    monkeypatch.setattr(linear_mod, "linear", lambda *a: calls.append(1) or F.linear(*a))
    patch(model)
    model(torch.randn(4, 16))  # 2048 multiply-adds
    assert not calls


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch without oneDNN")
@pytest.mark.parametrize("chunk", [1, 7, 64], ids=lambda c: f"chunk{c}")
def test_a_patched_model_chunked_equals_the_stock_full_forward(monkeypatch, chunk):
    """A Llama wide enough for oneDNN (hidden 256, MLP 1024): chunked prefill through the
    patched layers gives the logits of the unpatched model's one full pass."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from lc_models.prefill import feed
    from lc_models.state import CacheRunner

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=256, intermediate_size=1024,
                      num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=512)
    model = LlamaForCausalLM(cfg).eval()
    ids = [[(i * 37) % 300 for i in range(150)]]
    with torch.no_grad():
        full = model(torch.tensor(ids)).logits[0]
    monkeypatch.setattr(linear_mod, "fast_backend", lambda: "onednn")
    monkeypatch.setattr(linear_mod, "MIN_MACS", 0)
    assert patch(model) == 2 * 7 + 1
    chunks = []
    feed(CacheRunner(model), ids, CacheRunner(model).new_state(1), chunk_size=chunk,
         on_chunk=lambda rows, s, lg: chunks.append(lg))
    err = (torch.cat(chunks, 1)[0] - full).abs().max().item()
    assert err < 1e-4, f"chunk {chunk}: max logit error {err:.2e}"


def test_nothing_is_patched_where_torch_is_as_fast(monkeypatch):
    model = torch.nn.Linear(4, 4)
    monkeypatch.setattr(linear_mod, "fast_backend", lambda: "torch")
    assert patch(model) == 0 and "forward" not in vars(model)


def test_the_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv("LC_EVAL_ONEDNN", "0")
    fast_backend.cache_clear()
    try:
        assert fast_backend() == "torch"
    finally:
        fast_backend.cache_clear()


@pytest.mark.parametrize("amd_avx512,wanted,expected", [
    (True, "", "onednn"), (False, "", "torch"), (False, "1", "onednn"), (True, "0", "torch")])
def test_the_choice_follows_the_cpu_and_the_switch_never_a_timing(monkeypatch, amd_avx512,
                                                                   wanted, expected):
    """Every process on a machine takes the same GEMM, so rounds the same way."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch has no oneDNN")
    monkeypatch.setattr(linear_mod, "_amd_with_avx512", lambda: amd_avx512)
    monkeypatch.setenv("LC_EVAL_ONEDNN", wanted)
    fast_backend.cache_clear()
    try:
        assert fast_backend() == expected
    finally:
        fast_backend.cache_clear()
