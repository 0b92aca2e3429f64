"""The load-time check that a tokenizer fits its model: every id it can produce has a row in
the model's input embedding.

A checkpoint paired with another model's tokenizer (``tokenizer=`` pointing elsewhere, a
native checkpoint given the wrong vocabulary) otherwise runs until the first text that yields
an id past the embedding, and dies mid-generation with ``IndexError: index out of range in
self``. Models often have more rows than their tokenizer has ids (padded vocabularies): that
is fine.

>>> from lc_models.tiny import build_tokenizer
>>> largest_id(build_tokenizer("char"))
103
"""

from __future__ import annotations

import torch

from lc_tasks.errors import UsageError


def largest_id(tokenizer) -> int:
    """The largest token id ``tokenizer`` can produce (its vocabulary and added tokens)."""
    vocab = tokenizer.get_vocab()
    return max(max(vocab.values(), default=-1), len(tokenizer) - 1)


def check_vocabulary(tokenizer, model: torch.nn.Module, pretrained, tokenizer_name) -> None:
    """Raise UsageError unless every id of ``tokenizer`` indexes a row of ``model``'s input
    embedding. ``pretrained`` and ``tokenizer_name`` name them in the message."""
    rows = model.get_input_embeddings().weight.shape[0]
    largest = largest_id(tokenizer)
    if largest >= rows:
        which = f"tokenizer={tokenizer_name!r}" if tokenizer_name else "its tokenizer"
        raise UsageError(
            f"pretrained={str(pretrained)!r}: {which} has token ids up to {largest}, but the "
            f"model's input embedding has {rows} rows (ids 0-{rows - 1}), so text would reach "
            "ids the model does not have; pass the tokenizer the checkpoint was trained with")
