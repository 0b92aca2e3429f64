"""wkv6 (every backend this machine has) against the per-token reference."""

from __future__ import annotations

import os

import pytest
import torch

from lc_models.ops.wkv6 import wkv6, wkv6_ref

LENGTHS = [1, 7, 63, 150]
NATIVE_OFF = os.environ.get("LC_EVAL_NATIVE", "1") == "0"
BACKENDS = ["torch", pytest.param("native", marks=pytest.mark.skipif(
    NATIVE_OFF, reason="LC_EVAL_NATIVE=0"))]
# head sizes: whole register tiles of the native kernel (32 or 16 value channels x 8 keys),
# partial ones and channels left to its scalar loop; RWKV-6's own is 64
HEAD_SIZES = [64, 40, 5]


def make_inputs(L, heads=3, n=8, batch=2, seed=0, decay_scale=1.0):
    g = torch.Generator().manual_seed(seed)
    r, k, v = (torch.randn(batch, L, heads, n, generator=g) for _ in range(3))
    # real RWKV-6 decays span w ~ 1e-3 .. 1 per token: log_w = -exp(N(0, 1) * scale)
    log_w = -torch.exp(torch.randn(batch, L, heads, n, generator=g) * decay_scale)
    u = torch.randn(heads, n, generator=g)
    state = torch.randn(batch, heads, n, n, generator=g)
    return r, k, v, log_w, u, state


def assert_near(actual, expected, what, tol=2e-5):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = expected.abs().max().clamp_min(1.0)
    err = ((actual - expected).abs().max() / scale).item()
    assert err < tol, f"{what}: relative max error {err:.2e} >= {tol:.0e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", HEAD_SIZES, ids=lambda n: f"N{n}")
@pytest.mark.parametrize("L", LENGTHS, ids=lambda L: f"L{L}")
def test_matches_reference(backend, n, L):
    r, k, v, log_w, u, state = make_inputs(L, n=n, seed=L + n)
    o_ref, s_ref = wkv6_ref(r, k, v, log_w, u, state)
    o, s = wkv6(r, k, v, log_w, u, state, output_final_state=True, backend=backend)
    assert_near(o, o_ref, f"o, N={n}, L={L}")
    assert_near(s, s_ref, f"final state, N={n}, L={L}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("split", [1, 30, 62], ids=lambda s: f"split{s}")
def test_chaining_equals_one_call(backend, split):
    r, k, v, log_w, u, state = make_inputs(63, n=64, seed=1)
    whole, s_whole = wkv6(r, k, v, log_w, u, state, output_final_state=True, backend=backend)
    o1, s1 = wkv6(r[:, :split], k[:, :split], v[:, :split], log_w[:, :split], u, state,
                  output_final_state=True, backend=backend)
    o2, s2 = wkv6(r[:, split:], k[:, split:], v[:, split:], log_w[:, split:], u, s1,
                  output_final_state=True, backend=backend)
    assert_near(torch.cat([o1, o2], 1), whole, "chained o")
    assert_near(s2, s_whole, "chained final state")


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_decays_stay_finite(backend):
    """log_w down to about -400 per token (w ~ 1e-174): no overflow, no NaN."""
    r, k, v, log_w, u, state = make_inputs(100, n=16, seed=2, decay_scale=3.0)
    o_ref, s_ref = wkv6_ref(r, k, v, log_w, u, state)
    o, s = wkv6(r, k, v, log_w, u, state, output_final_state=True, backend=backend)
    assert torch.isfinite(o).all() and torch.isfinite(s).all()
    assert_near(o, o_ref, "o under fast decay")
    assert_near(s, s_ref, "state under fast decay")


def test_unknown_backend_is_a_clear_error():
    r, k, v, log_w, u, state = make_inputs(3)
    with pytest.raises(ValueError, match="choose one of"):
        wkv6(r, k, v, log_w, u, state, backend="fast")
