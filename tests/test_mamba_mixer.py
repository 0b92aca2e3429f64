"""mamba1_chunk and causal_conv1d: chunk by chunk equals the mixer's own full forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lc_models.models.mamba_mixer import causal_conv1d, mamba1_chunk, mamba2_chunk

CHUNKS = [1, 7, 16, 64]


def chunks(L, size):
    return [(s, min(L, s + size)) for s in range(0, L, size)]


@pytest.mark.parametrize("K", [2, 4], ids=lambda k: f"K{k}")
@pytest.mark.parametrize("size", CHUNKS, ids=lambda c: f"chunk{c}")
def test_causal_conv_in_chunks_equals_one_conv(K, size):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 37, 6, generator=g)  # (batch, L, channels)
    w, b = torch.randn(6, K, generator=g), torch.randn(6, generator=g)
    full = F.conv1d(x.transpose(1, 2), w[:, None], b, padding=K - 1, groups=6)[..., :37]
    prev, outs = None, []
    for s, e in chunks(37, size):
        y, prev = causal_conv1d(x[:, s:e], w, b, prev)
        outs.append(y)
    torch.testing.assert_close(torch.cat(outs, 1), full.transpose(1, 2), atol=1e-5, rtol=1e-5)
    expected_tail = F.pad(x.transpose(1, 2), (K, 0))[..., -K:]
    torch.testing.assert_close(prev, expected_tail, msg="tail is not the last K inputs")


def test_causal_conv_rejects_short_history():
    with pytest.raises(ValueError, match="needs 3"):
        causal_conv1d(torch.zeros(1, 5, 2), torch.zeros(2, 4), None, torch.zeros(1, 2, 2))


def mixer_of(arch):
    """The first Mamba mixer of a tiny random model of ``arch``."""
    from transformers import AutoModelForCausalLM

    from lc_models.zoo.tiny import tiny_config

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, 50)).eval()
    for module in model.modules():
        if hasattr(module, "A_log"):
            return module
    raise AssertionError(f"no Mamba-1 mixer in the tiny {arch}")


@pytest.mark.parametrize("size", CHUNKS, ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("arch", ["mamba", "falcon_mamba"])
@torch.no_grad()
def test_chunks_equal_the_mixer_full_forward(arch, size):
    """The mixer's own forward over the whole sequence (zero state) is the reference."""
    mixer = mixer_of(arch)
    x = torch.randn(2, 45, mixer.in_proj.in_features, generator=torch.Generator().manual_seed(1))
    full = mixer(x)
    conv, ssm, outs = None, None, []
    for s, e in chunks(45, size):
        out, conv, ssm = mamba1_chunk(mixer, x[:, s:e], conv, ssm)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=2e-5, rtol=1e-4)
    assert conv.shape == (2, mixer.intermediate_size, mixer.conv_kernel_size)
    assert ssm.shape == (2, mixer.intermediate_size, mixer.ssm_state_size)


@pytest.mark.parametrize("size", CHUNKS, ids=lambda c: f"chunk{c}")
@torch.no_grad()
def test_mamba2_chunks_equal_the_mixer_full_forward(size):
    mixer = mixer_of("mamba2")
    x = torch.randn(2, 45, mixer.in_proj.in_features, generator=torch.Generator().manual_seed(1))
    full = mixer(x)
    conv, ssm, outs = None, None, []
    for s, e in chunks(45, size):
        out, conv, ssm = mamba2_chunk(mixer, x[:, s:e], conv, ssm)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=2e-5, rtol=1e-4)
    assert conv.shape == (2, mixer.conv_dim, mixer.conv_kernel_size)
    assert ssm.shape == (2, mixer.num_heads, mixer.head_dim, mixer.ssm_state_size)
