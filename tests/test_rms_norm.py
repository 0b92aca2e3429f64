"""gated_rms_norm (every backend this machine has) against transformers' MambaRMSNormGated."""

from __future__ import annotations

import os

import pytest
import torch
from transformers.models.mamba2.modeling_mamba2 import MambaRMSNormGated

from lc_models.ops.rms_norm import gated_rms_norm, gated_rms_norm_ref

NATIVE_OFF = os.environ.get("LC_EVAL_NATIVE", "1") == "0"
BACKENDS = ["torch", pytest.param("native", marks=pytest.mark.skipif(
    NATIVE_OFF, reason="LC_EVAL_NATIVE=0"))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gated", [True, False], ids=["gated", "plain"])
@pytest.mark.parametrize("channels,group", [(48, 48), (48, 16), (37, 37)], ids=str)
def test_matches_transformers_module(backend, gated, channels, group):
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
