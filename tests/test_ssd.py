"""ssd (every backend this machine has) against the per-token reference and transformers'
torch path."""

from __future__ import annotations

import os

import pytest
import torch

from lc_models.ops.ssd import ssd, ssd_ref

LENGTHS = [1, 7, 63, 200]
CHUNKS = [1, 7, 16, 64]
INF = float("inf")


def backends(chunks=CHUNKS):
    """(backend, chunk_size) pairs to test; the native kernel is required unless switched off."""
    cases = [pytest.param("torch", c, id=f"torch-chunk{c}") for c in chunks]
    native_off = os.environ.get("LC_EVAL_NATIVE", "1") == "0"
    mark = pytest.mark.skipif(native_off, reason="LC_EVAL_NATIVE=0")
    return cases + [pytest.param("native", None, id="native", marks=mark)]


def make_inputs(L, batch=2, nheads=6, headdim=4, ngroups=2, d_state=5, seed=0, dt_scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(batch, L, nheads, headdim, generator=g),
        "dt": torch.randn(batch, L, nheads, generator=g) * dt_scale,
        "A": -torch.exp(torch.randn(nheads, generator=g)),
        "B": torch.randn(batch, L, ngroups, d_state, generator=g),
        "C": torch.randn(batch, L, ngroups, d_state, generator=g),
        "D": torch.randn(nheads, generator=g),
        "z": torch.randn(batch, L, nheads, headdim, generator=g),
        "dt_bias": torch.randn(nheads, generator=g) - 1,
        "initial_state": torch.randn(batch, nheads, headdim, d_state, generator=g),
    }


# Which optional arguments each case passes; dt must be positive without softplus.
FLAGS = ("D", "z", "dt_bias", "softplus", "limit", "state")
OPTIONS = {
    name: dict(zip(FLAGS, on))
    for name, on in {
        "bare": (False, False, False, False, False, False),
        "state-only": (False, False, False, False, False, True),
        "D-z": (True, True, False, False, False, False),
        "bias-softplus-limit": (False, False, True, True, True, False),
        "all": (True, True, True, True, True, True),
    }.items()
}


def call_args(inputs, opts):
    args = {k: inputs[k] for k in ("x", "dt", "A", "B", "C")}
    if not opts["softplus"]:
        args["dt"] = args["dt"].abs() * 0.5
    args["D"] = inputs["D"] if opts["D"] else None
    args["z"] = inputs["z"] if opts["z"] else None
    args["dt_bias"] = inputs["dt_bias"] if opts["dt_bias"] else None
    args["dt_softplus"] = opts["softplus"]
    args["dt_limit"] = (0.01, 5.0) if opts["limit"] else (0.0, INF)
    args["initial_state"] = inputs["initial_state"] if opts["state"] else None
    return args


def assert_near(actual, expected, what, tol=2e-5):
    """Max error relative to the size of the expected values."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert torch.isfinite(actual).all(), f"{what}: non-finite values"
    scale = expected.abs().max().clamp_min(1.0)
    err = ((actual.float() - expected.float()).abs().max() / scale).item()
    assert err < tol, f"{what}: relative max error {err:.2e} >= {tol:.0e}"


@pytest.mark.parametrize("backend,chunk", backends())
@pytest.mark.parametrize("opts", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("L", LENGTHS, ids=[f"L{L}" for L in LENGTHS])
def test_matches_reference(backend, chunk, opts, L):
    args = call_args(make_inputs(L), opts)
    y_ref, s_ref = ssd_ref(**args, return_final_state=True)
    y, s = ssd(**args, return_final_state=True, chunk_size=chunk, backend=backend)
    assert y.dtype == args["x"].dtype and s.dtype == torch.float32
    assert_near(y, y_ref, "y")
    assert_near(s, s_ref, "final state")


@pytest.mark.parametrize("backend,chunk", backends([7, 64]))
@pytest.mark.parametrize("split", [1, 30, 62], ids=lambda s: f"split{s}")
def test_chaining_equals_one_call(backend, chunk, split):
    args = call_args(make_inputs(63), OPTIONS["all"])
    whole, s_whole = ssd(**args, return_final_state=True, chunk_size=chunk, backend=backend)
    seq = ("x", "dt", "B", "C", "z")
    first = {k: (v[:, :split] if k in seq else v) for k, v in args.items()}
    y1, s1 = ssd(**first, return_final_state=True, chunk_size=chunk, backend=backend)
    second = {k: (v[:, split:] if k in seq else v) for k, v in args.items()}
    second["initial_state"] = s1
    y2, s2 = ssd(**second, return_final_state=True, chunk_size=chunk, backend=backend)
    assert_near(torch.cat([y1, y2], 1), whole, "chained y")
    assert_near(s2, s_whole, "chained final state")


@pytest.mark.parametrize("backend,chunk", backends([7]))
def test_per_channel_D(backend, chunk):
    args = call_args(make_inputs(20), OPTIONS["all"])
    args["D"] = torch.randn(6, 4)
    assert_near(ssd(**args, chunk_size=chunk, backend=backend), ssd_ref(**args),
                "y with D per (head, channel)")


@pytest.mark.parametrize("backend,chunk", backends([16, 64]))
def test_fast_decay_is_stable(backend, chunk):
    """Log-decays of thousands within a chunk: no overflow, no NaN, no lost digits."""
    inputs = make_inputs(200, dt_scale=30.0)
    inputs["A"] = inputs["A"] * 20
    args = call_args(inputs, OPTIONS["all"])
    args["dt_limit"] = (0.0, INF)
    y_ref, s_ref = ssd_ref(**args, return_final_state=True)
    y, s = ssd(**args, return_final_state=True, chunk_size=chunk, backend=backend)
    assert_near(y, y_ref, "y under fast decay")
    assert_near(s, s_ref, "final state under fast decay")


@pytest.mark.parametrize("backend,chunk", backends([16]))
def test_matches_transformers_torch_path(backend, chunk):
    """Same numbers as transformers' Mamba2 chunk scan (which has no gate z)."""
    from transformers.models.mamba2.modeling_mamba2 import mamba2_chunk_scan

    args = call_args(make_inputs(45), OPTIONS["all"])
    theirs, s_theirs = mamba2_chunk_scan(
        args["x"], args["dt"], args["A"], args["B"], args["C"], 16, D=args["D"],
        dt_bias=args["dt_bias"], initial_states=args["initial_state"], dt_softplus=True,
        dt_limit=args["dt_limit"], return_final_states=True,
    )
    ours, s_ours = ssd(**{**args, "z": None}, return_final_state=True, chunk_size=chunk,
                       backend=backend)
    assert_near(ours, theirs, "y vs transformers")
    assert_near(s_ours, s_theirs, "final state vs transformers")


@pytest.mark.parametrize("backend,chunk", backends([16]))
def test_bf16_inputs_stay_close_to_fp32(backend, chunk):
    args = call_args(make_inputs(200), OPTIONS["all"])
    y32, s32 = ssd_ref(**args, return_final_state=True)
    low = {k: (v.bfloat16() if isinstance(v, torch.Tensor) and k != "A" else v)
           for k, v in args.items()}
    y16, s16 = ssd(**low, return_final_state=True, chunk_size=chunk, backend=backend)
    assert y16.dtype == torch.bfloat16 and s16.dtype == torch.float32
    assert_near(y16, y32, "bf16 y", tol=3e-2)
    assert_near(s16, s32, "bf16 final state", tol=3e-2)


# (headdim, d_state): whole register tiles of the native kernel (32 channels x 8 states with
# AVX-512, 16 x 8 with AVX2), partial ones, and channels left over for its scalar loop
TILE_SHAPES = [(64, 128), (40, 13), (16, 8), (3, 21)]


@pytest.mark.parametrize("backend,chunk", backends([16]))
@pytest.mark.parametrize("headdim,d_state", TILE_SHAPES, ids=lambda v: str(v))
def test_kernel_tiles_and_remainders(backend, chunk, headdim, d_state):
    inputs = make_inputs(37, nheads=4, headdim=headdim, ngroups=2, d_state=d_state, seed=1)
    args = call_args(inputs, OPTIONS["all"])
    y_ref, s_ref = ssd_ref(**args, return_final_state=True)
    y, s = ssd(**args, return_final_state=True, chunk_size=chunk, backend=backend)
    assert_near(y, y_ref, f"y, headdim {headdim}, d_state {d_state}")
    assert_near(s, s_ref, f"final state, headdim {headdim}, d_state {d_state}")


@pytest.mark.parametrize("backend,chunk", backends([16]))
def test_channels_last_views_give_the_same_numbers(backend, chunk):
    """x, B and C as views of one (batch, L, channels) activation, as a mixer has them."""
    args = call_args(make_inputs(50, headdim=16, d_state=8), OPTIONS["all"])
    expected, s_expected = ssd(**args, return_final_state=True, chunk_size=chunk,
                               backend=backend)
    batch, L, nheads, headdim = args["x"].shape
    xBC = torch.cat([args["x"].flatten(2), args["B"].flatten(2), args["C"].flatten(2)], -1)
    d_inner, gn = nheads * headdim, args["B"][0, 0].numel()
    views = dict(args, x=xBC[..., :d_inner].view(batch, L, nheads, headdim),
                 B=xBC[..., d_inner : d_inner + gn].view(args["B"].shape),
                 C=xBC[..., d_inner + gn :].view(args["C"].shape))
    y, s = ssd(**views, return_final_state=True, chunk_size=chunk, backend=backend)
    assert_near(y, expected, "y from channels-last views", tol=1e-6)
    assert_near(s, s_expected, "final state from channels-last views", tol=1e-6)


def test_bad_shapes_are_clear_errors():
    args = call_args(make_inputs(7), OPTIONS["all"])
    with pytest.raises(ValueError, match="initial_state must have shape"):
        ssd(**{**args, "initial_state": torch.zeros(2, 6, 4, 4)})
    with pytest.raises(ValueError, match="multiple of ngroups"):
        ssd(**{**args, "B": torch.zeros(2, 7, 4, 5), "C": torch.zeros(2, 7, 4, 5)})
    with pytest.raises(ValueError, match="choose"):
        ssd(**args, backend="fast")
