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
    with torch.no_grad():
        expected = norm(x)
        assert rms_norm.patch(torch.nn.Sequential(norm)) == 1
        got = norm(x)
        assert norm(x.double()).dtype == torch.float64  # other dtypes: the module's own forward
    err = (got - expected).abs().max().item()
    assert err < 2e-6, f"{name}: max error {err:.2e}"
