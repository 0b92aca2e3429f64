"""selective_scan (every backend this machine has) against the per-token reference."""

from __future__ import annotations

import os

import pytest
import torch

from lc_models.ops import native
from lc_models.ops.selective_scan import (
    BLOCK_TOKENS,
    add_initial_state,
    scan_chunked,
    selective_scan,
    selective_scan_ref,
)

LENGTHS = [1, 7, 63, 200]
TORCH_CHUNKS = [1, 7, 16, 64]


def backends():
    """(backend, chunk_size) pairs to test; the native kernel is required unless switched off."""
    cases = [pytest.param("torch", c, id=f"torch-chunk{c}") for c in TORCH_CHUNKS]
    native_off = os.environ.get("LC_EVAL_NATIVE", "1") == "0"
    mark = pytest.mark.skipif(native_off, reason="LC_EVAL_NATIVE=0")
    return cases + [pytest.param("native", None, id="native", marks=mark)]


def make_inputs(L, batch=2, d_inner=12, d_state=5, seed=0, dt_scale=1.0):
    """Random inputs in the ranges a trained Mamba sees: A = -exp(N(0,1)), dt = softplus(...)."""
    g = torch.Generator().manual_seed(seed)
    u, delta, z = torch.randn(3, batch, d_inner, L, generator=g).unbind(0)
    A = -torch.exp(torch.randn(d_inner, d_state, generator=g))
    B, C = torch.randn(2, batch, d_state, L, generator=g).unbind(0)
    return {
        "u": u,
        "delta": delta * dt_scale,
        "A": A,
        "B": B,
        "C": C,
        "D": torch.randn(d_inner, generator=g),
        "z": z,
        "delta_bias": torch.randn(d_inner, generator=g) - 1,
        "initial_state": torch.randn(batch, d_inner, d_state, generator=g),
    }


# Which optional arguments each case passes; delta must be positive without softplus.
OPTIONS = {
    "bare": {"D": False, "z": False, "delta_bias": False, "softplus": False, "state": False},
    "state-only": {"D": False, "z": False, "delta_bias": False, "softplus": False, "state": True},
    "D-z": {"D": True, "z": True, "delta_bias": False, "softplus": False, "state": False},
    "bias-softplus": {"D": False, "z": False, "delta_bias": True, "softplus": True, "state": False},
    "all": {"D": True, "z": True, "delta_bias": True, "softplus": True, "state": True},
}


def call_args(inputs, opts):
    args = {k: inputs[k] for k in ("u", "delta", "A", "B", "C")}
    if not opts["softplus"]:
        args["delta"] = args["delta"].abs() * 0.5
    args["D"] = inputs["D"] if opts["D"] else None
    args["z"] = inputs["z"] if opts["z"] else None
    args["delta_bias"] = inputs["delta_bias"] if opts["delta_bias"] else None
    args["delta_softplus"] = opts["softplus"]
    args["initial_state"] = inputs["initial_state"] if opts["state"] else None
    return args


def assert_near(actual, expected, what, tol=2e-5):
    """Max error relative to the size of the expected values (fp32 sums differ in order)."""
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
    y_ref, h_ref = selective_scan_ref(**args, return_final_state=True)
    y, h = selective_scan(**args, return_final_state=True, backend=backend, chunk_size=chunk)
    assert y.dtype == args["u"].dtype and h.dtype == torch.float32
    assert_near(y, y_ref, "y")
    assert_near(h, h_ref, "final state")


@pytest.mark.parametrize("backend,chunk", backends())
@pytest.mark.parametrize("split", [1, 30, 62], ids=lambda s: f"split{s}")
def test_chaining_equals_one_call(backend, chunk, split):
    args = call_args(make_inputs(63), OPTIONS["all"])
    whole, h_whole = selective_scan(**args, return_final_state=True, backend=backend,
                                    chunk_size=chunk)
    first = {k: (v[..., :split] if k in ("u", "delta", "B", "C", "z") else v)
             for k, v in args.items()}
    y1, h1 = selective_scan(**first, return_final_state=True, backend=backend, chunk_size=chunk)
    second = {k: (v[..., split:] if k in ("u", "delta", "B", "C", "z") else v)
              for k, v in args.items()}
    second["initial_state"] = h1
    y2, h2 = selective_scan(**second, return_final_state=True, backend=backend, chunk_size=chunk)
    assert_near(torch.cat([y1, y2], -1), whole, "chained y")
    assert_near(h2, h_whole, "chained final state")


@pytest.mark.parametrize("backend,chunk", backends())
def test_channels_last_views_give_the_same_numbers(backend, chunk):
    """Transposed views of (batch, L, channels) activations, as a mixer has them, need no copy."""
    args = call_args(make_inputs(63, d_inner=13, d_state=16), OPTIONS["all"])
    expected, h_expected = selective_scan(**args, return_final_state=True, backend=backend,
                                          chunk_size=chunk)
    d_inner = args["u"].shape[1]
    xz = torch.cat([args["u"], args["z"]], 1).transpose(1, 2).contiguous()  # (b, L, 2d)
    proj = torch.cat([args["B"], args["C"]], 1).transpose(1, 2).contiguous()  # (b, L, 2n)
    views = dict(args, u=xz[..., :d_inner].transpose(1, 2), z=xz[..., d_inner:].transpose(1, 2),
                 delta=args["delta"].transpose(1, 2).contiguous().transpose(1, 2),
                 B=proj[..., :16].transpose(1, 2), C=proj[..., 16:].transpose(1, 2))
    y, h = selective_scan(**views, return_final_state=True, backend=backend, chunk_size=chunk)
    assert_near(y, expected, "y from channels-last views", tol=1e-6)
    assert_near(h, h_expected, "final state from channels-last views", tol=1e-6)


def test_return_final_state_false_returns_y_only():
    args = call_args(make_inputs(7), OPTIONS["all"])
    y = selective_scan(**args)
    assert isinstance(y, torch.Tensor) and y.shape == args["u"].shape


@pytest.mark.parametrize("backend,chunk", backends())
def test_fast_decay_is_stable(backend, chunk):
    """Decays of exp(-1000) per token: no overflow, no NaN, still equal to the reference."""
    inputs = make_inputs(200, d_state=16, dt_scale=30.0)
    inputs["A"] = inputs["A"] * 20
    args = call_args(inputs, OPTIONS["all"])
    y_ref, h_ref = selective_scan_ref(**args, return_final_state=True)
    y, h = selective_scan(**args, return_final_state=True, backend=backend, chunk_size=chunk)
    assert_near(y, y_ref, "y under fast decay")
    assert_near(h, h_ref, "final state under fast decay")


@pytest.mark.parametrize("chunk", [1, 8, 16], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("decay", ["weak", "strong", "mixed"])
@pytest.mark.parametrize("L", [37, 300], ids=lambda L: f"L{L}")  # 300: across blocks
def test_torch_form_at_the_edges_of_the_decay_range(chunk, decay, L):
    """Decays near 1 (dt * A ~ -1e-5), near 0 (down to exp(-1000)) and both in one chunk,
    from a carried state, against the token loop within 1e-4 relative."""
    inputs = make_inputs(L, d_state=16, dt_scale=30.0 if decay == "strong" else 1.0)
    if decay == "strong":
        inputs["A"] = inputs["A"] * 20
    args = call_args(inputs, OPTIONS["all" if decay == "strong" else "state-only"])
    if decay in ("weak", "mixed"):
        args["delta"] = args["delta"] * 1e-5
    if decay == "mixed":  # one token in eight forgets almost everything
        strong = torch.rand(L, generator=torch.Generator().manual_seed(L)) < 0.125
        args["delta"] = torch.where(strong, 60.0, args["delta"])
    y_ref, h_ref = selective_scan_ref(**args, return_final_state=True)
    y, h = selective_scan(**args, return_final_state=True, backend="torch", chunk_size=chunk)
    assert_near(y, y_ref, f"y under {decay} decay", tol=1e-4)
    assert_near(h, h_ref, f"final state under {decay} decay", tol=1e-4)


@pytest.mark.parametrize("L", [1, 63, 200], ids=lambda L: f"L{L}")
@pytest.mark.parametrize("opts", ["state-only", "all"])
def test_initial_state_correction(L, opts):
    """The mamba_ssm path: a zero-state scan plus the carried state's contribution.

    The reference stands in for mamba_ssm's kernel, so this runs on any CPU.
    """

    def zero_state_kernel(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                          return_last_state):
        return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                  return_final_state=return_last_state)

    args = call_args(make_inputs(L), OPTIONS[opts])
    y_ref, h_ref = selective_scan_ref(**args, return_final_state=True)
    y, h = add_initial_state(zero_state_kernel, **args, chunk_size=16)
    assert_near(y, y_ref, "corrected y")
    assert_near(h, h_ref, "corrected final state")


@pytest.mark.parametrize("backend,chunk", backends())
def test_bf16_inputs_stay_close_to_fp32(backend, chunk):
    """bf16 inputs: computed in fp32, returned in bf16; error about bf16's own rounding."""
    args = call_args(make_inputs(200, d_state=16), OPTIONS["all"])
    y32, h32 = selective_scan_ref(**args, return_final_state=True)
    low = {k: (v.bfloat16() if isinstance(v, torch.Tensor) and k != "A" else v)
           for k, v in args.items()}
    y16, h16 = selective_scan(**low, return_final_state=True, backend=backend, chunk_size=chunk)
    assert y16.dtype == torch.bfloat16 and h16.dtype == torch.float32
    # Rounding every input to 8 bits of mantissa moves outputs by a few times 2^-8.
    assert_near(y16, y32, "bf16 y", tol=3e-2)
    assert_near(h16, h32, "bf16 final state", tol=3e-2)


def test_chunked_memory_does_not_span_the_sequence():
    """The torch backend never builds a (batch, d_inner, L, d_state) tensor over the whole L:
    its largest are a block's (BLOCK_TOKENS tokens, each with a (chunk, d_state) factor)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        numel = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and out.dim() >= 4:
                self.numel = max(self.numel, out.numel())
            return out

    L, chunk = 2000, 8
    args = call_args(make_inputs(L, batch=1, d_inner=4, d_state=3), OPTIONS["bare"])
    with Largest() as seen:
        scan_chunked(args["u"], args["delta"], args["A"], args["B"], args["C"],
                     torch.zeros(1, 4, 3), chunk_size=chunk)
    block = 4 * BLOCK_TOKENS * chunk * 3
    assert 0 < seen.numel <= block < 4 * L * 3, f"a tensor of {seen.numel} elements"


@pytest.mark.parametrize(
    "name,bad",
    [("B", torch.zeros(2, 4, 7)), ("initial_state", torch.zeros(2, 12, 6)),
     ("D", torch.zeros(11))],
    ids=["B", "initial_state", "D"],
)
def test_bad_shapes_name_the_argument(name, bad):
    args = call_args(make_inputs(7), OPTIONS["all"])
    args[name] = bad
    with pytest.raises(ValueError, match=name):
        selective_scan(**args)


def test_unknown_or_unusable_backend_is_a_clear_error():
    args = call_args(make_inputs(7), OPTIONS["bare"])
    with pytest.raises(ValueError, match="choose one of"):
        selective_scan(**args, backend="cuda-magic")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="mamba-ssm"):
            selective_scan(**args, backend="mamba_ssm")


@pytest.mark.skipif(os.environ.get("LC_EVAL_NATIVE", "1") == "0", reason="LC_EVAL_NATIVE=0")
def test_native_kernel_builds_here():
    """A C compiler is part of the supported setup; the CPU default must not silently degrade."""
    assert native.available(), "the native selective-scan kernel failed to build (see the log)"


@pytest.mark.skipif(os.environ.get("LC_EVAL_NATIVE", "1") == "0", reason="LC_EVAL_NATIVE=0")
def test_native_kernel_without_openmp_gives_the_same_numbers(monkeypatch, tmp_path):
    """The fallback build (a compiler without OpenMP) runs the same kernel on one thread."""
    import ctypes
    import shutil

    monkeypatch.setenv("LC_EVAL_CACHE", str(tmp_path))
    serial = ctypes.CDLL(str(native._build(shutil.which("cc") or "gcc", openmp=False)))
    serial.lc_selective_scan_omp.argtypes = native.load().lc_selective_scan_omp.argtypes
    args = call_args(make_inputs(63, d_state=16), OPTIONS["all"])
    expected, h_expected = selective_scan(**args, return_final_state=True, backend="native")
    monkeypatch.setattr(native, "_lib", serial)
    y, h = selective_scan(**args, return_final_state=True, backend="native")
    assert_near(y, expected, "serial-build y", tol=1e-6)
    assert_near(h, h_expected, "serial-build final state", tol=1e-6)


@pytest.mark.parametrize("backend,chunk", backends())
@pytest.mark.parametrize("grow", ["positive A", "negative dt"])
def test_a_growing_state_matches_the_reference_too(backend, chunk, grow):
    """dt * A > 0 (outside any Mamba, but the public op allows it): the native kernel's exp
    covers dt * A <= 0 only, so the op falls back to the torch scan and stays exact."""
    inputs = make_inputs(20)
    args = call_args(inputs, OPTIONS["state-only"])
    args["A"] = args["A"].clamp(min=-1.0)  # growth of at most e^0.15 a step: stays finite
    if grow == "positive A":
        args["A"] = -args["A"] * 0.1
    else:
        args["delta"] = -args["delta"] * 0.1
    y_ref, h_ref = selective_scan_ref(**args, return_final_state=True)
    y, h = selective_scan(**args, return_final_state=True, backend=backend, chunk_size=chunk)
    assert_near(y, y_ref, "y", tol=1e-4)
    assert_near(h, h_ref, "final state", tol=1e-4)


def test_an_initial_state_of_the_wrong_shape_is_refused():
    u = torch.randn(1, 4, 5)
    A = -torch.rand(4, 3)
    B = C = torch.randn(1, 3, 5)
    with pytest.raises(ValueError, match=r"initial_state must have shape \(1, 4, 3\), got \(1, 3, 4\)"):
        selective_scan(u, torch.rand(1, 4, 5), A, B, C, initial_state=torch.zeros(1, 3, 4))
