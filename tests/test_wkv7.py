"""wkv7 (every backend this machine has) against the per-token reference."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from lc_models.ops.wkv7 import wkv7, wkv7_ref

LENGTHS = [1, 7, 63, 150]
NATIVE_OFF = os.environ.get("LC_EVAL_NATIVE", "1") == "0"
BACKENDS = ["torch", pytest.param("native", marks=pytest.mark.skipif(
    NATIVE_OFF, reason="LC_EVAL_NATIVE=0"))]
# head sizes: whole register tiles of the native kernel (32 or 16 value channels), partial
# ones and channels left to its one-row loop; RWKV-7's own is 64
HEAD_SIZES = [64, 40, 5]


def make_inputs(L, heads=3, n=8, batch=2, seed=0, decay_scale=1.0):
    """Inputs shaped as RWKV-7 makes them: a = -kk, b = kk * iclr with kk unit per head."""
    g = torch.Generator().manual_seed(seed)
    r, k, v = (torch.randn(batch, L, heads, n, generator=g) for _ in range(3))
    # RWKV-7's own decays are exp(-e^-0.5 sigmoid(.)) >= 0.545; decay_scale > 1 goes far below
    log_w = -torch.exp(torch.randn(batch, L, heads, n, generator=g) * decay_scale) * 0.6
    kk = F.normalize(torch.randn(batch, L, heads, n, generator=g), dim=-1)
    iclr = torch.rand(batch, L, heads, n, generator=g)
    state = torch.randn(batch, heads, n, n, generator=g)
    return r, log_w, k, v, -kk, kk * iclr, state


def assert_near(actual, expected, what, tol=2e-5):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = expected.abs().max().clamp_min(1.0)
    err = ((actual - expected).abs().max() / scale).item()
    assert err < tol, f"{what}: relative max error {err:.2e} >= {tol:.0e}"


def test_reference_is_the_delta_rule_written_out():
    """One token by hand: S' = S diag(w) + (S a) b^T + v k^T, o = S' r."""
    r, log_w, k, v, a, b, state = make_inputs(1, heads=1, n=3, batch=1, seed=5)
    S = state[0, 0]
    want_S = S * log_w[0, 0, 0].exp() + torch.outer(S @ a[0, 0, 0], b[0, 0, 0]) + torch.outer(
        v[0, 0, 0], k[0, 0, 0])
    o, s = wkv7_ref(r, log_w, k, v, a, b, state)
    assert torch.allclose(s[0, 0], want_S, atol=1e-6)
    assert torch.allclose(o[0, 0, 0], want_S @ r[0, 0, 0], atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", HEAD_SIZES, ids=lambda n: f"N{n}")
@pytest.mark.parametrize("L", LENGTHS, ids=lambda L: f"L{L}")
def test_matches_reference(backend, n, L):
    r, log_w, k, v, a, b, state = make_inputs(L, n=n, seed=L + n)
    o_ref, s_ref = wkv7_ref(r, log_w, k, v, a, b, state)
    o, s = wkv7(r, log_w, k, v, a, b, state, output_final_state=True, backend=backend)
    assert_near(o, o_ref, f"o, N={n}, L={L}")
    assert_near(s, s_ref, f"final state, N={n}, L={L}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("split", [1, 30, 62], ids=lambda s: f"split{s}")
def test_chaining_equals_one_call(backend, split):
    r, log_w, k, v, a, b, state = make_inputs(63, n=64, seed=1)
    whole, s_whole = wkv7(r, log_w, k, v, a, b, state, output_final_state=True,
                          backend=backend)
    first = [t[:, :split] for t in (r, log_w, k, v, a, b)]
    rest = [t[:, split:] for t in (r, log_w, k, v, a, b)]
    o1, s1 = wkv7(*first, state, output_final_state=True, backend=backend)
    o2, s2 = wkv7(*rest, s1, output_final_state=True, backend=backend)
    assert_near(torch.cat([o1, o2], 1), whole, "chained o")
    assert_near(s2, s_whole, "chained final state")


@pytest.mark.parametrize("backend", BACKENDS)
def test_strong_decays_stay_finite(backend):
    """log_w down to about -100 per token (w ~ 1e-44): no overflow, no NaN."""
    r, log_w, k, v, a, b, state = make_inputs(100, n=16, seed=2, decay_scale=2.5)
    assert log_w.min() < -50
    o_ref, s_ref = wkv7_ref(r, log_w, k, v, a, b, state)
    o, s = wkv7(r, log_w, k, v, a, b, state, output_final_state=True, backend=backend)
    assert torch.isfinite(o).all() and torch.isfinite(s).all()
    assert_near(o, o_ref, "o under strong decay")
    assert_near(s, s_ref, "state under strong decay")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_initial_state_is_not_modified(backend):
    r, log_w, k, v, a, b, state = make_inputs(5, n=8)
    before = state.clone()
    wkv7(r, log_w, k, v, a, b, state, output_final_state=True, backend=backend)
    assert torch.equal(state, before)


def test_unknown_backend_is_a_clear_error():
    r, log_w, k, v, a, b, state = make_inputs(3)
    with pytest.raises(ValueError, match="choose one of"):
        wkv7(r, log_w, k, v, a, b, state, backend="fast")


# The torch form's chunks: one token, RWKV-7's own (16), and boundaries inside the blocks
TORCH_CHUNKS = [1, 5, 16, 32]
# decay regimes: RWKV-7's own range, w near 0 (log_w to about -100) and w near 1
# and both in one chunk (a weak decay's digits must survive beside a strong one's)
DECAYS = {"rwkv7": 1.0, "strong": 2.5, "weak": None, "mixed": None}


@pytest.mark.parametrize("chunk", TORCH_CHUNKS, ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("decay", sorted(DECAYS))
@pytest.mark.parametrize("n", [64, 5], ids=lambda n: f"N{n}")
@pytest.mark.parametrize("L", [37, 300], ids=lambda L: f"L{L}")
def test_torch_form_equals_the_reference(chunk, decay, n, L):
    """The chunked WY form, from a carried state, against the token loop (1e-4 relative)."""
    r, log_w, k, v, a, b, state = make_inputs(L, heads=2, n=n, batch=1, seed=L + n,
                                              decay_scale=DECAYS[decay] or 1.0)
    g = torch.Generator().manual_seed(1)
    if decay in ("weak", "mixed"):
        log_w = -torch.rand(log_w.shape, generator=g) * 1e-4
    if decay == "mixed":  # one token in eight forgets almost everything
        log_w = torch.where(torch.rand(log_w.shape, generator=g) < 0.125, -60.0, log_w)
    o_ref, s_ref = wkv7_ref(r, log_w, k, v, a, b, state)
    o, s = wkv7(r, log_w, k, v, a, b, state, output_final_state=True, backend="torch",
                chunk_size=chunk)
    assert torch.isfinite(o).all() and torch.isfinite(s).all()
    assert_near(o, o_ref, f"o, {decay} decay, chunk {chunk}", tol=1e-4)
    assert_near(s, s_ref, f"final state, {decay} decay, chunk {chunk}", tol=1e-4)


def test_torch_form_reads_bf16_inputs_in_float32():
    r, log_w, k, v, a, b, state = make_inputs(40, n=8)
    low = [t.bfloat16() for t in (r, log_w, k, v, a, b)]
    o_ref, _ = wkv7_ref(*(t.float() for t in low), state)
    o, s = wkv7(*low, state, output_final_state=True, backend="torch")
    assert o.dtype == torch.float32 and s.dtype == torch.float32
    assert_near(o, o_ref, "o from bf16 inputs")
