"""causal_conv1d (every backend this machine has) against the torch reference, chunk by chunk."""

from __future__ import annotations

import os

import pytest
import torch

from lc_models.ops.causal_conv import causal_conv1d, causal_conv1d_ref

NATIVE_OFF = os.environ.get("LC_EVAL_NATIVE", "1") == "0"
BACKENDS = ["torch", pytest.param("native", marks=pytest.mark.skipif(
    NATIVE_OFF, reason="LC_EVAL_NATIVE=0"))]


def conv_full(x, w, b, activation):
    """The whole sequence at once, from zeros: torch's own grouped Conv1d, the ground truth."""
    K = w.shape[-1]
    y = torch.nn.functional.conv1d(x.transpose(1, 2), w[:, None], b, padding=K - 1,
                                   groups=w.shape[0])[..., : x.shape[1]].transpose(1, 2)
    return torch.nn.functional.silu(y) if activation == "silu" else y


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", [None, "silu"], ids=["linear", "silu"])
@pytest.mark.parametrize("K", [2, 4], ids=lambda k: f"K{k}")
@pytest.mark.parametrize("chunk", [1, 3, 7, 40, 200], ids=lambda c: f"chunk{c}")
def test_chunks_equal_the_full_conv(backend, activation, K, chunk):
    g = torch.Generator().manual_seed(K * 100 + chunk)
    L, channels = 67, 37  # odd sizes: a partial vector of channels, a partial token block
    proj = torch.randn(2, L, channels + 5, generator=g)
    x = proj[..., 3 : 3 + channels]  # a slice of a projection, as the mixers pass it
    w, b = torch.randn(channels, K, generator=g), torch.randn(channels, generator=g)
    ys, prev = [], None
    for s in range(0, L, chunk):
        y, prev = causal_conv1d(x[:, s : s + chunk], w, b, prev, activation, backend=backend)
        assert prev.shape == (2, channels, K)
        ys.append(y)
    expected = conv_full(x, w, b, activation)
    err = (torch.cat(ys, 1) - expected).abs().max().item()
    assert err < 1e-5, f"max error {err:.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_longer_history_uses_its_last_inputs(backend):
    """prev may hold more than K - 1 inputs (a cache of K); only the last K - 1 count."""
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(1, 9, 16, generator=g), torch.randn(16, 4, generator=g)
    prev = torch.randn(1, 16, 6, generator=g)
    y, _ = causal_conv1d(x, w, None, prev, backend=backend)
    expected, _ = causal_conv1d_ref(x, w, None, prev[..., -3:])
    assert (y - expected).abs().max() < 1e-5


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="3-tap conv needs 2"):
        causal_conv1d(torch.zeros(1, 5, 2), torch.zeros(2, 3), None, torch.zeros(1, 2, 1))
    with pytest.raises(ValueError, match="unknown activation"):
        causal_conv1d(torch.zeros(1, 5, 2), torch.zeros(2, 3), activation="gelu")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_half_precision_is_the_float32_conv_rounded_once(backend, dtype):
    """A bf16 or fp16 x is convolved in float32 and y rounded once to x's dtype (as torch's
    conv kernels accumulate): within one unit in the last place of the rounded truth."""
    g = torch.Generator().manual_seed(5)
    x, w, b = (torch.randn(*s, generator=g).to(dtype) for s in ((2, 45, 37), (37, 4), (37,)))
    ys, prev = [], None
    for s in range(0, 45, 16):
        y, prev = causal_conv1d(x[:, s : s + 16], w, b, prev, "silu", backend=backend)
        assert y.dtype == dtype and prev.dtype == dtype
        ys.append(y)
    expected = conv_full(x.float(), w.float(), b.float(), "silu")
    ulp = torch.finfo(dtype).eps
    err = ((torch.cat(ys, 1).float() - expected).abs() / (expected.abs() + 1e-3)).max().item()
    assert err <= ulp, f"{err:.2e} > one ulp {ulp:.1e}"


@pytest.mark.skipif(NATIVE_OFF, reason="LC_EVAL_NATIVE=0")
def test_native_bf16_rounding_is_torchs():
    """An identity conv (one tap of weight 1) rounds float32 to bf16 exactly as torch does:
    ties to even, NaN, infinities and overflow included."""
    g = torch.Generator().manual_seed(9)
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), 3.4e38, 1 + 2**-8,
                            1 + 3 * 2**-8, 1e-40])
    x = torch.cat([special, torch.randn(1000, generator=g) * 1e3])[None, None]  # (1, 1, C)
    C = x.shape[-1]
    y, _ = causal_conv1d(x, torch.ones(C, 1), None, None, out_dtype=torch.bfloat16,
                         backend="native")
    assert y.dtype == torch.bfloat16 and torch.isnan(y[..., 0]).all()  # a NaN stays a NaN
    assert torch.equal(y[..., 1:].view(torch.int16), x[..., 1:].bfloat16().view(torch.int16))
