"""The language-model shell that RWKV-6 (``rwkv6``) and RWKV-7 (``rwkv7``) share.

Both generations are an embedding, a stack of blocks, a final LayerNorm ``ln_out`` and a head,
named as in BlinkDL's checkpoints (``emb``, ``blocks.N``, ``ln_out``, ``head``), with a state
per layer of two token-shift inputs and the WKV matrix of every head (``RwkvLayer``). They
differ inside their blocks and in how ``prefill`` runs the blocks (RWKV-7 norms the embeddings
first and passes layer 0's value down the stack): a family subclasses ``RwkvLM``, names its
block class in ``block_type``, and writes ``prefill`` with ``head_logits`` as its last step.

>>> from torch import nn
>>> class Cfg:
...     vocab_size, n_embd, n_layer, n_head, head_size, ln_eps = 10, 8, 2, 2, 4, 1e-5
...     def to_hf(self): return None
>>> class Tiny(RwkvLM):
...     block_type = staticmethod(lambda cfg, index: nn.Identity())
>>> state = Tiny(Cfg()).new_state(3)
>>> len(state.layers), tuple(state.layers[0].wkv.shape), state.layers[0].wkv.dtype
(2, (3, 2, 4, 4), torch.float32)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lc_models.models.checkpoint import assign
from lc_models.models.stateful import StatefulLM
from lc_models.state import LayerStates


@dataclass
class RwkvLayer:
    """One layer's state: the last token's normed input to the time mix (``att_shift``) and to
    the channel mix (``ffn_shift``), each (batch, n_embd) in the model's dtype, and the float32
    WKV matrix of every head, (batch, heads, head_size, head_size): (key, value) in RWKV-6,
    (value, key) in RWKV-7, as in the ``rwkv`` package."""

    att_shift: torch.Tensor
    wkv: torch.Tensor
    ffn_shift: torch.Tensor


class RwkvLM(StatefulLM):
    """An RWKV language model around ``block_type(cfg, index)`` blocks; ``cfg`` is the family's
    config dataclass (``vocab_size``, ``n_embd``, ``n_layer``, ``n_head``, ``head_size``,
    ``ln_eps``, ``to_hf()``). ``ln_out_eps`` is the final norm's epsilon (default
    ``cfg.ln_eps``)."""

    block_type: Callable[..., nn.Module]

    def __init__(self, cfg, ln_out_eps: float | None = None):
        super().__init__()
        self.cfg = cfg
        self.config = cfg.to_hf()
        self.emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(self.block_type(cfg, i) for i in range(cfg.n_layer))
        self.ln_out = nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps if ln_out_eps is None
                                   else ln_out_eps)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)

    def get_output_embeddings(self) -> nn.Linear:
        return self.head

    def get_input_embeddings(self) -> nn.Embedding:
        return self.emb

    def new_state(self, batch_size: int) -> LayerStates:
        """The state before any token: zero shifts and zero WKV matrices."""
        cfg, dev = self.cfg, self.device
        layers = [
            RwkvLayer(
                att_shift=torch.zeros(batch_size, cfg.n_embd, dtype=self.dtype, device=dev),
                wkv=torch.zeros(batch_size, cfg.n_head, cfg.head_size, cfg.head_size,
                                dtype=torch.float32, device=dev),
                ffn_shift=torch.zeros(batch_size, cfg.n_embd, dtype=self.dtype, device=dev),
            )
            for _ in range(cfg.n_layer)
        ]
        return LayerStates(layers, 0, batch_size)

    def head_logits(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """Logits (batch, T, vocab) of the last block's output x (batch, T, n_embd); (batch, 1,
        vocab) at the last position when ``last_only``."""
        if last_only:
            x = x[:, -1:]
        return self.head(self.ln_out(x))

    @classmethod
    def from_state(cls, cfg, state: dict, source: str, dtype=None, device="cpu"):
        """The model with ``state``'s weights (native names), in ``dtype`` (None: the
        checkpoint's own); the family modules' ``build``."""
        with torch.device("meta"):  # no random init: every weight comes from the checkpoint
            model = cls(cfg)
        assign(model, state, source)
        dtype = dtype or state["emb.weight"].dtype
        return model.to(device=device, dtype=dtype).eval()
