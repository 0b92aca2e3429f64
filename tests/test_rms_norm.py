"""gated_rms_norm (every backend this machine has) against transformers' gated RMS norm of
Mamba-2 (``MambaRMSNormGated`` up to transformers 5.24, ``Mamba2RMSNormGated`` from 5.25)."""

from __future__ import annotations

import os

import pytest
import torch
import transformers
from transformers.models.mamba2 import modeling_mamba2

from lc_models.ops.rms_norm import gated_rms_norm, gated_rms_norm_ref

# transformers 5.25 renamed the class; either name is the oracle, neither is a loud failure
GATED_NAMES = ("Mamba2RMSNormGated", "MambaRMSNormGated")
MambaRMSNormGated = next((getattr(modeling_mamba2, n) for n in GATED_NAMES
                          if hasattr(modeling_mamba2, n)), None)
NATIVE_OFF = os.environ.get("LC_EVAL_NATIVE", "1") == "0"
BACKENDS = ["torch", pytest.param("native", marks=pytest.mark.skipif(
    NATIVE_OFF, reason="LC_EVAL_NATIVE=0"))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gated", [True, False], ids=["gated", "plain"])
@pytest.mark.parametrize("channels,group", [(48, 48), (48, 16), (37, 37)], ids=str)
def test_matches_transformers_module(backend, gated, channels, group):
    assert MambaRMSNormGated is not None, (
        f"transformers {transformers.__version__} has none of {GATED_NAMES} in modeling_mamba2: "
        "the oracle of this test moved; find its new name")
    g = torch.Generator().manual_seed(channels + group)
    norm = MambaRMSNormGated(channels, group_size=group, eps=1e-5)
    norm.weight.data = torch.rand(channels, generator=g) + 0.5
    proj = torch.randn(2, 7, 2 * channels + 3, generator=g)
    x = torch.randn(2, 7, channels, generator=g)
    gate = proj[..., 3 : 3 + channels] if gated else None  # a slice, as the mixer passes it
    with torch.no_grad():
        expected = norm(x, gate)
        y = gated_rms_norm(x, gate, norm.weight, group, 1e-5, backend=backend)
    assert y.shape == expected.shape
    err = (y - expected).abs().max().item()
    assert err < 2e-6, f"max error {err:.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gated", [True, False], ids=["gated", "plain"])
@pytest.mark.parametrize("x_dtype", [torch.bfloat16, torch.float32], ids=str)
def test_bf16_matches_transformers_module_within_one_rounding(backend, gated, x_dtype):
    """In bf16 the module rounds twice (the normed value, then its product with the weight),
    the native kernel once: at most about one bf16 ulp apart, and mostly equal. A float32 x
    (Mamba-2's scan output) with a bf16 gate and weight comes back float32, as the module's."""
    g = torch.Generator().manual_seed(3)
    norm = MambaRMSNormGated(64, group_size=32, eps=1e-5).to(torch.bfloat16)
    norm.weight.data = (torch.rand(64, generator=g) + 0.5).bfloat16()
    x, gate = (torch.randn(2, 9, 64, generator=g).bfloat16() for _ in range(2))
    x, gate = x.to(x_dtype), (gate if gated else None)
    with torch.no_grad():
        expected = norm(x, gate)
        y = gated_rms_norm(x, gate, norm.weight, 32, 1e-5, backend=backend)
    assert y.dtype == expected.dtype == x_dtype
    expected = expected.float()
    rel = ((y.float() - expected).abs() / expected.abs().clamp(min=1e-3)).max().item()
    if x_dtype == torch.float32:  # nothing rounded on either side
        assert rel <= 1e-5, f"relative error {rel:.2e}"
        return
    assert rel <= 2 * torch.finfo(torch.bfloat16).eps, f"relative error {rel:.2e}"
    assert (y.float() == expected).float().mean() > 0.5


def test_the_reference_keeps_the_input_dtype():
    x = torch.randn(3, 8, dtype=torch.bfloat16)
    assert gated_rms_norm_ref(x, x, torch.ones(8, dtype=torch.bfloat16), 8, 1e-6).dtype == \
        torch.bfloat16


@pytest.mark.skipif(NATIVE_OFF, reason="LC_EVAL_NATIVE=0")
@pytest.mark.parametrize("name", ["LlamaRMSNorm", "MambaRMSNorm", "Mamba2RMSNorm"])
def test_patched_plain_norms_match_their_own_forward(name):
    import importlib

    from lc_models.ops import rms_norm

    where = {"LlamaRMSNorm": "llama.modeling_llama", "MambaRMSNorm": "mamba.modeling_mamba",
             "Mamba2RMSNorm": "mamba2.modeling_mamba2"}[name]
    cls = getattr(importlib.import_module(f"transformers.models.{where}"), name)
    norm = cls(48, eps=1e-5)
    norm.weight.data = torch.rand(48, generator=torch.Generator().manual_seed(0)) + 0.5
    x = torch.randn(3, 5, 48, generator=torch.Generator().manual_seed(1))
    half = cls(48, eps=1e-5).to(torch.bfloat16)
    half.weight.data = norm.weight.data.bfloat16()
    with torch.no_grad():
        expected, expected_half = norm(x), half(x.bfloat16())
        assert rms_norm.patch(torch.nn.Sequential(norm, half)) == 2
        got, got_half = norm(x), half(x.bfloat16())
        assert norm(x.double()).dtype == torch.float64  # other dtypes: the module's own forward
    err = (got - expected).abs().max().item()
    assert err < 2e-6, f"{name}: max error {err:.2e}"
    # bf16: rounded once instead of twice (see gated_rms_norm's doc), at most ~one ulp apart
    assert got_half.dtype == torch.bfloat16
    rel = ((got_half.float() - expected_half.float()).abs() / expected_half.float().abs()
           .clamp(min=1e-3)).max().item()
    assert rel <= 2 * torch.finfo(torch.bfloat16).eps, f"{name} bf16: relative error {rel:.2e}"
