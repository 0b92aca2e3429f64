"""Which kernel every op runs (``lc_models.ops.dispatch``), and what each choice promises.

* the torch forms are loop-free: at most one dispatched torch op per token at L=4096;
* ``kernels=auto`` picks the vendor kernel on CUDA, the native one on the CPU, else torch;
  with no vendor package here, CUDA inputs get torch;
* a forced choice that cannot serve is one UsageError naming the fix, through the real CLI too;
* the vendor paths hand each package its own layout (checked with stand-ins written from the
  packages' reference code, since none can be installed without CUDA);
* whole models under ``kernels=torch`` compute what the native kernels compute.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from lc_models import args as model_args
from lc_models.ops import dispatch, native
from lc_models.ops.causal_conv import causal_conv1d, causal_conv1d_ref
from lc_models.ops.linear_scan import linear_scan
from lc_models.ops.selective_scan import selective_scan
from lc_models.ops.ssd import ssd, ssd_ref
from lc_models.ops.wkv6 import wkv6, wkv6_ref
from lc_models.ops.wkv7 import wkv7, wkv7_ref
from lc_tasks.errors import UsageError

OPS = ("wkv6", "wkv7", "selective_scan", "ssd", "causal_conv1d", "linear_scan",
       "gated_rms_norm")
NO_VENDOR = ("linear_scan", "gated_rms_norm")


@pytest.fixture(autouse=True)
def _restore_kernels():
    yield
    dispatch.set_kernels("auto")


class CountOps(TorchDispatchMode):
    """Counts every torch op dispatched inside the ``with`` block."""

    count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def _inputs(L, g):
    def rn(*shape):
        return torch.randn(*shape, generator=g)

    def decay(*shape):
        return -torch.rand(*shape, generator=g)

    return {
        "wkv7": lambda: wkv7(rn(1, L, 2, 16), decay(1, L, 2, 16), rn(1, L, 2, 16),
                             rn(1, L, 2, 16), rn(1, L, 2, 16) * 0.1, rn(1, L, 2, 16) * 0.1),
        "wkv6": lambda: wkv6(rn(1, L, 2, 16), rn(1, L, 2, 16), rn(1, L, 2, 16),
                             decay(1, L, 2, 16), rn(2, 16)),
        "linear_scan": lambda: linear_scan(torch.rand(1, L, 32, generator=g), rn(1, L, 32)),
        "selective_scan": lambda: selective_scan(rn(1, 8, L), rn(1, 8, L), decay(8, 4),
                                                 rn(1, 4, L), rn(1, 4, L), delta_softplus=True),
        "ssd": lambda: ssd(rn(1, L, 2, 4), torch.rand(1, L, 2, generator=g), decay(2),
                           rn(1, L, 1, 4), rn(1, L, 1, 4)),
    }


@pytest.mark.parametrize("op", ["wkv7", "linear_scan", "selective_scan", "wkv6", "ssd"])
def test_torch_forms_dispatch_at_most_one_op_per_token(op):
    L = 4096
    run = _inputs(L, torch.Generator().manual_seed(0))[op]
    with dispatch.forced("torch"), CountOps() as ops:
        run()
    assert ops.count <= L, f"{op}: {ops.count / L:.2f} torch ops per token at L={L}"


# ----------------------------------------------------------------- the rule
@pytest.mark.parametrize("op", OPS)
def test_auto_on_the_cpu_takes_the_native_kernel_where_built(op):
    assert dispatch.choose(op, "cpu") == ("native" if native.available() else "torch")


@pytest.mark.parametrize("op", OPS)
def test_auto_on_cuda_without_the_vendor_package_takes_torch(op, monkeypatch):
    monkeypatch.setattr(dispatch, "vendor", lambda name: None)  # as here: nothing installed
    assert dispatch.choose(op, "cuda") == "torch"


@pytest.mark.parametrize("op", OPS)
def test_auto_on_cuda_with_the_vendor_package_takes_it(op, monkeypatch):
    monkeypatch.setattr(dispatch, "vendor", lambda name: print)  # any callable: "installed"
    want = "torch" if op in NO_VENDOR else "vendor"
    assert dispatch.choose(op, "cuda") == want
    assert dispatch.choose(op, "cuda", vendor_fits=False) == "torch"


def test_nothing_is_imported_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine")
    assert all(dispatch.vendor(op) is None for op in dispatch.VENDORS)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("op", sorted(dispatch.VENDORS))
def test_kernels_vendor_without_the_package_is_one_line_naming_it(op, device, monkeypatch):
    monkeypatch.setattr(dispatch, "vendor", lambda name: None)
    pip = dispatch.VENDORS[op][2]
    with dispatch.forced("vendor"), pytest.raises(UsageError) as err:
        dispatch.choose(op, device)
    message = str(err.value)
    assert "\n" not in message and f"pip install {pip}" in message
    assert "kernels=auto" in message


@pytest.mark.parametrize("op", NO_VENDOR)
def test_kernels_vendor_runs_ops_without_a_vendor_kernel_in_torch_on_a_gpu(op):
    with dispatch.forced("vendor"):
        assert dispatch.choose(op, "cuda") == "torch"


@pytest.mark.parametrize("op", OPS)
def test_kernels_native_where_no_native_kernel_serves_is_one_line(op, monkeypatch):
    with dispatch.forced("native"), pytest.raises(UsageError, match="pass kernels=auto"):
        dispatch.choose(op, "cuda")
    monkeypatch.setattr(native, "available", lambda: False)  # LC_EVAL_NATIVE=0, no compiler
    assert dispatch.choose(op, "cpu") == "torch"
    with dispatch.forced("native"), pytest.raises(UsageError, match="C compiler"):
        dispatch.choose(op, "cpu")


def test_kernels_torch_wins_over_auto_and_an_op_s_own_backend_wins_over_both():
    with dispatch.forced("torch"):
        assert {dispatch.choose(op, "cpu") for op in OPS} == {"torch"}
        if native.available():
            assert dispatch.choose("wkv7", "cpu", backend="native") == "native"
    assert dispatch.kernels() == "auto"


def test_lc_eval_native_0_still_turns_every_native_kernel_off():
    code = ("from lc_models.ops import dispatch; print(' '.join(dispatch.choose(op, 'cpu') "
            f"for op in {OPS!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "LC_EVAL_NATIVE": "0"})
    assert proc.stdout.split() == ["torch"] * len(OPS)


# ---------------------------------------------------- the vendor layouts, with stand-ins
def fla_dplr(r, w, k, v, a, b, scale=1.0, initial_state=None, output_final_state=False):
    """fla's chunk_rwkv7 as its naive ``dplr_recurrence`` computes it: [B, T, H, K] inputs,
    w the log decay, state [B, H, K, V], S <- S * exp(w) + b (a^T S) + k v^T, o = r^T S."""
    B, T, H, N = r.shape
    S = initial_state.clone() if initial_state is not None else r.new_zeros(B, H, N, N)
    out = []
    for t in range(T):
        aS = (S * a[:, t, :, :, None]).sum(-2, keepdim=True)  # (B, H, 1, V)
        S = S * w[:, t].exp()[..., None] + b[:, t, :, :, None] * aS + (
            k[:, t, :, :, None] * v[:, t, :, None, :])
        out.append(torch.einsum("bhk,bhkv->bhv", r[:, t] * scale, S))
    return torch.stack(out, 1), (S if output_final_state else None)


def fla_rwkv6(r, k, v, w, u, scale=None, initial_state=None, output_final_state=False):
    """fla's chunk_rwkv6 as its ``naive_recurrent_rwkv6`` computes it, [B, T, H, K] layout."""
    B, T, H, N = r.shape
    S = initial_state.clone() if initial_state is not None else r.new_zeros(B, H, N, N)
    out = []
    for t in range(T):
        kv = k[:, t, :, :, None] * v[:, t, :, None, :]
        out.append(((S + u[None, ..., None] * kv) * (r[:, t] * scale)[..., None]).sum(-2))
        S = S * w[:, t].exp()[..., None] + kv
    return torch.stack(out, 1), (S if output_final_state else None)


def dao_causal_conv1d(x, weight, bias=None, seq_idx=None, initial_states=None,
                      return_final_states=False, final_states_out=None, activation=None):
    """causal-conv1d's ``causal_conv1d_fn`` as its ``causal_conv1d_ref`` computes it; its CUDA
    kernel takes an initial state only in the channels-last layout, so that is checked."""
    assert x.stride(1) == 1 and initial_states.stride(1) == 1, "not channels-last"
    assert x.dtype == weight.dtype, "the kernel wants one dtype"
    full = torch.cat([initial_states, x], -1)
    out = F.conv1d(full, weight.unsqueeze(1), bias, groups=weight.shape[0])[..., -x.shape[-1]:]
    return F.silu(out) if activation in ("silu", "swish") else out


def mamba_ssm_ssd(x, dt, A, B, C, chunk_size, D=None, z=None, dt_bias=None,
                  initial_states=None, dt_softplus=False, dt_limit=(0.0, float("inf")),
                  return_final_states=False):
    return ssd_ref(x, dt, A, B, C, D, z, dt_bias, dt_softplus, dt_limit, initial_states,
                   return_final_state=return_final_states)


STAND_INS = {"wkv7": fla_dplr, "wkv6": fla_rwkv6, "causal_conv1d": dao_causal_conv1d,
             "ssd": mamba_ssm_ssd}


@pytest.fixture
def vendor_stand_ins(monkeypatch):
    monkeypatch.setattr(dispatch, "choose", lambda op, *a, **k: "vendor")
    monkeypatch.setattr(dispatch, "vendor", STAND_INS.get)


def test_wkv7_hands_fla_its_key_value_state(vendor_stand_ins):
    g = torch.Generator().manual_seed(0)
    r, k, v = (torch.randn(2, 9, 3, 5, generator=g) for _ in range(3))
    log_w = -torch.rand(2, 9, 3, 5, generator=g)
    kk = F.normalize(torch.randn(2, 9, 3, 5, generator=g), dim=-1)
    state = torch.randn(2, 3, 5, 5, generator=g)  # ours: (value, key)
    o_ref, s_ref = wkv7_ref(r, log_w, k, v, -kk, kk * 0.5, state)
    o, s = wkv7(r, log_w, k, v, -kk, kk * 0.5, state, output_final_state=True)
    assert torch.allclose(o, o_ref, atol=1e-5) and torch.allclose(s, s_ref, atol=1e-5)


def test_wkv6_hands_fla_scale_one(vendor_stand_ins):
    g = torch.Generator().manual_seed(1)
    r, k, v = (torch.randn(2, 9, 3, 5, generator=g) for _ in range(3))
    log_w, u = -torch.rand(2, 9, 3, 5, generator=g), torch.randn(3, 5, generator=g)
    state = torch.randn(2, 3, 5, 5, generator=g)
    o_ref, s_ref = wkv6_ref(r, k, v, log_w, u, state)
    o, s = wkv6(r, k, v, log_w, u, state, output_final_state=True)
    assert torch.allclose(o, o_ref, atol=1e-5) and torch.allclose(s, s_ref, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_causal_conv_hands_the_package_channels_last_views(vendor_stand_ins, dtype):
    g = torch.Generator().manual_seed(2)
    x, w = torch.randn(2, 9, 6, generator=g).to(dtype), torch.randn(6, 4, generator=g)
    prev = torch.randn(2, 6, 4, generator=g).to(dtype)
    y_ref, tail_ref = causal_conv1d_ref(x, w, None, prev, "silu")
    y, tail = causal_conv1d(x, w, None, prev, "silu")
    assert y.dtype == dtype  # the stand-in computes in bf16, the kernel in fp32: a few ulps
    assert torch.allclose(y.float(), y_ref.float(), rtol=2e-2, atol=2e-2)
    assert torch.equal(tail, tail_ref)


def test_ssd_hands_mamba_ssm_the_initial_state(vendor_stand_ins):
    g = torch.Generator().manual_seed(3)
    x, B, C = (torch.randn(1, 9, *s, generator=g) for s in ((2, 3), (1, 4), (1, 4)))
    dt, A, h = torch.rand(1, 9, 2, generator=g), -torch.rand(2, generator=g), torch.randn(
        1, 2, 3, 4, generator=g)
    y_ref, s_ref = ssd_ref(x, dt, A, B, C, initial_state=h, return_final_state=True)
    y, s = ssd(x, dt, A, B, C, initial_state=h, return_final_state=True)
    assert torch.allclose(y, y_ref, atol=1e-5) and torch.allclose(s, s_ref, atol=1e-5)


# ------------------------------------------------------------------ the model arg
@pytest.mark.parametrize("value,message", [
    ("vendr", "did you mean 'vendor'"),
    ("vendor", "pass kernels=auto"),
], ids=["misspelt", "vendor-without-cuda"])
def test_kernels_arg_errors_are_one_line(value, message):
    if value == "vendor" and torch.cuda.is_available():
        pytest.skip("a CUDA machine")
    with pytest.raises(UsageError, match=message):
        model_args.check_model_args({"kernels": value, "device": "cpu"})


def test_kernels_native_on_a_cpu_is_accepted_where_built():
    if not native.available():
        pytest.skip("no native kernels here")
    assert model_args.check_model_args({"kernels": "Native"})["kernels"] == "native"


def test_lc_eval_cli_refuses_kernels_vendor_without_cuda_in_one_line(tiny_model):
    from conftest import run_cli

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine")
    proc = run_cli("lc-eval", "run", "--device", "cpu", "--model", "lc_hf", "--model_args",
                   f"pretrained={tiny_model('llama')},kernels=vendor", "--tasks",
                   "lc_passkey_1k", check=False, timeout=300)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert last.startswith("lc-eval: error: kernels=vendor") and "kernels=auto" in last, last


# ------------------------------------------------------------ whole models, kernels=torch
DOC = ("The grass is green. The sky is blue. The pass key is 12345. Remember it. " * 3
       + "What is the pass key? The pass key is 12345.")


@pytest.fixture(scope="module")
def checkpoints(tiny_model, tmp_path_factory):
    from lc_models.zoo.tiny_native import save_rwkv7

    rwkv7 = save_rwkv7(tmp_path_factory.mktemp("rwkv7") / "tiny.pth", "pth", seed=3, n_layer=2)
    return {"rwkv7": rwkv7, "recurrent_gemma": tiny_model("recurrent_gemma"),
            "mamba": tiny_model("mamba")}


def _rolling(path, kernels, chunk_size):
    from lm_eval.api.instance import Instance

    from lc_models.adapter import LongContextLM

    lm = LongContextLM(pretrained=str(path), device="cpu", dtype="float32",
                       chunk_size=chunk_size, kernels=kernels)
    return lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (DOC,), 0)],
                                    disable_tqdm=True)[0]


@pytest.fixture(scope="module")
def one_pass(checkpoints):
    """``one_pass(arch)``: the checkpoint's score in one forward on the native kernels here,
    computed once for every chunk size."""
    return functools.cache(lambda arch: _rolling(checkpoints[arch], "auto", 4096))


@pytest.mark.parametrize("chunk", [1, 7], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("arch", ["rwkv7", "recurrent_gemma", "mamba"])
def test_chunked_lc_hf_on_the_torch_kernels_equals_one_native_pass(arch, chunk, checkpoints,
                                                                  one_pass, monkeypatch):
    full = one_pass(arch)  # before the native kernels are refused below

    def refuse(*args, **kwargs):
        raise AssertionError("a native kernel ran under kernels=torch")

    for name in ("scan", "ssd_scan", "wkv6_scan", "wkv7_scan", "linear_scan",
                 "causal_conv1d", "gated_rms_norm"):
        monkeypatch.setattr(native, name, refuse)
    chunked = _rolling(checkpoints[arch], "torch", chunk)
    assert abs(chunked - full) < 1e-4 * max(1.0, abs(full)), f"{arch}: {chunked} != {full}"
