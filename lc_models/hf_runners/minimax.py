"""MiniMax (lightning attention hybrids): a cache that reports how many tokens it has seen.

transformers 5.24's ``MiniMaxCache`` keeps the lightning (linear) attention layers' state in
``linear_cache`` and the softmax layers' KV in its ``DynamicCache`` layers, created without
the config, so the mask builder sizes the softmax layers' causal mask against layer 0. When
layer 0 is a lightning layer its KV slot stays empty: after the first chunk, a multi-token
chunk gets no mask, and SDPA's ``is_causal`` then aligns the chunk's queries with the first
keys instead of the last (an error of ~1e-2 in the logits; one token at a time is exact, it
sees every key). Here each chunk after the first passes its causal mask explicitly (key j
visible to query i when j <= start + i), and row selection also selects the rows of
``linear_cache``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lc_models.state import CacheRunner, CacheState

MODEL_TYPES = ("minimax",)


class MiniMaxState(CacheState):
    """A ``CacheState`` whose row selection covers the lightning layers' states too."""

    def select(self, rows: Sequence[int]) -> MiniMaxState:
        picked = super().select(rows)
        index = torch.tensor(list(rows), dtype=torch.long)
        picked.cache.linear_cache = [
            t.index_select(0, index.to(t.device)) if isinstance(t, torch.Tensor) else t
            for t in self.cache.linear_cache
        ]
        return MiniMaxState(picked.cache, picked.n_tokens, picked.batch_size)

    def nbytes(self) -> int:
        linear = [t for t in self.cache.linear_cache if isinstance(t, torch.Tensor)]
        return super().nbytes() + sum(t.numel() * t.element_size() for t in linear)


class MiniMaxRunner(CacheRunner):
    def __init__(self, model: torch.nn.Module):
        from transformers.models.minimax.modeling_minimax import MiniMaxCache

        super().__init__(model)
        self._cache_class = MiniMaxCache

    def new_state(self, batch_size: int) -> MiniMaxState:
        return MiniMaxState(self._cache_class(), 0, batch_size)  # it takes no config

    def extra_kwargs(self, input_ids, state) -> dict:
        batch, length = input_ids.shape
        start = state.n_tokens
        if start == 0 or length == 1:
            return {}
        keys = torch.arange(start + length, device=input_ids.device)
        visible = keys <= start + torch.arange(length, device=input_ids.device)[:, None]
        full = visible[None, None].expand(batch, 1, length, start + length)  # (b, 1, T, S)
        return {"attention_mask": {"full_attention": full, "linear_attention": None}}


def make_runner(model: torch.nn.Module) -> MiniMaxRunner:
    return MiniMaxRunner(model)
