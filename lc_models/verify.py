"""Check that chunked prefill through a runner computes what one full forward pass does.

The oracle is the model's own full forward over the whole sequence. The check
feeds two short random sequences as a batch, in odd-sized chunks (so chunk
boundaries fall at awkward places), then token by token, and compares the logits.
Models with a local attention window get sequences that cross it.

>>> err = chunked_error(runner, length=29, chunk=5)  # doctest: +SKIP
>>> err < 1e-4  # doctest: +SKIP
True
"""

from __future__ import annotations

import torch

from lc_models.state import Runner
from lc_tasks.errors import UsageError

# Largest error tolerated, relative to the largest |logit| of the full pass.
# Half precision rounds differently when the same tokens are split differently,
# while a state that is not carried gives errors of the order of the logits.
RELATIVE_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-6}
HALF_PRECISION_TOLERANCE = 5e-2
# config fields holding a local attention window (or attention chunk) size
_WINDOW_FIELDS = ("sliding_window", "attention_window_size", "attention_chunk_size")


def probe_size(config) -> tuple[int, int]:
    """(length, chunk) of the check: 29 tokens in chunks of 5, or past the model's
    local attention window in about six odd-sized chunks."""
    windows = [getattr(config, f, None) for f in _WINDOW_FIELDS]
    window = max((w for w in windows if isinstance(w, int) and w > 0), default=0)
    if window + 11 <= 29:
        return 29, 5
    length = window + 11
    return length, (length // 6) | 1


@torch.no_grad()
def chunked_error(runner: Runner, length: int = 29, chunk: int = 5, seed: int = 0) -> float:
    """Max |logit difference| between chunked (then token-by-token) prefill and one
    full forward pass, over a batch of two random sequences of ``length`` tokens,
    relative to the largest |logit| of the full pass."""
    model = runner.model
    vocab = model.get_input_embeddings().weight.shape[0]
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (2, length), generator=generator).to(runner.device)
    full = torch.cat([model(input_ids=row[None]).logits for row in ids]).float()  # (2, L, vocab)

    state = runner.new_state(2)
    pieces = []
    split = length - 3  # chunks first, then the last 3 tokens one at a time
    for start in range(0, split, chunk):
        logits, state = runner.prefill(ids[:, start : min(start + chunk, split)], state)
        pieces.append(logits)
    for pos in range(split, length):
        logits, state = runner.prefill(ids[:, pos : pos + 1], state)
        pieces.append(logits)
    chunked = torch.cat(pieces, dim=1).float()
    if chunked.shape != full.shape:
        return float("inf")
    return ((chunked - full).abs().max() / full.abs().max().clamp(min=1.0)).item()


def check_exact(runner: Runner) -> float:
    """Raise UsageError (a refusal of the model) unless chunked prefill matches the full
    forward pass."""
    dtype = runner.model.get_input_embeddings().weight.dtype
    tolerance = RELATIVE_TOLERANCE.get(dtype, HALF_PRECISION_TOLERANCE)
    name = getattr(runner.model.config, "model_type", type(runner.model).__name__)
    length, chunk = probe_size(runner.model.config)
    try:
        error = chunked_error(runner, length=length, chunk=chunk)
    except Exception as err:
        raise UsageError(
            f"lc_hf refuses model type {name!r}: chunked prefill with its state fails "
            f"({type(err).__name__}: {str(err)[:200]}). It needs an architecture module in "
            "lc_models/arch/."
        ) from err
    if not error <= tolerance:
        raise UsageError(
            f"lc_hf refuses model type {name!r}: chunked prefill with its state differs from "
            f"the full forward pass (relative error {error:.2e} > {tolerance:.0e}), so results "
            "would be wrong. It needs an architecture module in lc_models/arch/."
        )
    return error
