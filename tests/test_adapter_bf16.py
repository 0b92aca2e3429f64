"""lc_hf in bfloat16, for every architecture: the exactness check passes at its half-precision
tolerance, and log-likelihoods agree with stock ``hf`` in bf16 within bf16's tolerance.

bf16's tolerance (``lc_models.verify.bf16_agrees``): lc_hf's bf16 log-likelihood is within
2**-6 of the float32 one, relative, or no further from it than twice stock ``hf``'s own bf16
error, whichever is larger. Stock ``hf`` sums its bf16 log-probabilities in bf16 (-84.40 comes
back as -84.5), so its own error is rarely below a few tenths of a nat.
"""

from __future__ import annotations

import pytest
import torch
from test_adapter_exact import ARCHS, LOGLIKELIHOOD, instances, stock_hf

from lc_models.adapter import LongContextLM
from lc_models.verify import bf16_agrees


@pytest.mark.parametrize("chunk_size", [7, 64], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("arch", ARCHS)
def test_bf16_loglikelihood_is_within_bf16_tolerance_of_stock_hf(arch, chunk_size, tiny_model,
                                                                 native_model):
    requests = instances("loglikelihood", LOGLIKELIHOOD)
    results = {}
    for dtype in ("float32", "bfloat16"):
        path, tokenizer, hf = stock_hf(arch, tiny_model, native_model, dtype)
        results["hf", dtype] = [ll for ll, _ in hf.loglikelihood(requests, disable_tqdm=True)]
        del hf
    lm = LongContextLM(pretrained=str(path), tokenizer=tokenizer, chunk_size=chunk_size,
                       device="cpu", dtype="bfloat16")  # runs the check at bf16's tolerance
    assert lm.model.dtype == torch.bfloat16
    got = [ll for ll, _ in lm.loglikelihood(requests, disable_tqdm=True)]
    for (_, cont), lc, stock, exact in zip(LOGLIKELIHOOD, got, results["hf", "bfloat16"],
                                           results["hf", "float32"]):
        assert bf16_agrees(lc, stock, exact), (
            f"{arch} chunk {chunk_size} {cont!r}: lc_hf bf16 {lc:.4f}, stock bf16 "
            f"{stock:.4f}, float32 {exact:.4f}")


@pytest.mark.parametrize("lc, stock, ok", [(-84.47, -84.5, True), (-85.6, -84.5, True),
                                           (-86.0, -84.5, False), (-86.0, -85.2, True)])
def test_the_tolerance_is_measured_from_float32(lc, stock, ok):
    """Against float32 -84.40: 2**-6 of it is 1.32 nats, or twice stock's error if larger."""
    assert bf16_agrees(lc, stock, -84.40) is ok
