"""The base of lc-eval's own model implementations: state in, state out.

A ``StatefulLM`` carries its recurrent and attention state explicitly, in a
:class:`~lc_models.state.LayerStates`: ``prefill(input_ids, state)`` feeds one chunk and
advances the state, and ``forward(input_ids)`` is one full pass from the empty state (the
oracle the chunked path is tested against). It also has the few attributes lm-eval's ``HFLM``
reads from a transformers model (``config``, ``device``, ``dtype``, ``tie_weights``).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutput

from lc_models.state import LayerStates


class StatefulLM(nn.Module):
    """A causal LM whose chunks continue from an explicit state (see the module docstring)."""

    def get_input_embeddings(self) -> nn.Embedding:
        raise NotImplementedError

    def get_output_embeddings(self) -> nn.Linear:
        """The head (vocabulary projection)."""
        raise NotImplementedError

    def new_state(self, batch_size: int) -> LayerStates:
        """The state before any token."""
        raise NotImplementedError

    def prefill(self, input_ids, state: LayerStates, last_only: bool = False) -> torch.Tensor:
        """Logits (batch, T, vocab) of ``input_ids`` (batch, T) after ``state``, which is
        advanced in place (``(batch, 1, vocab)`` at the last position when ``last_only``);
        ``state.n_tokens`` is the position of the chunk's first token."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return self.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.get_input_embeddings().weight.dtype

    def tie_weights(self) -> None:
        """Tie the head to the embedding where the model does (lm-eval calls this)."""

    @torch.no_grad()
    def forward(self, input_ids, **kwargs) -> CausalLMOutput:
        """One full pass from the empty state: ``.logits`` (batch, T, vocab)."""
        return CausalLMOutput(logits=self.prefill(input_ids, self.new_state(input_ids.shape[0])))
