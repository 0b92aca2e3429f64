"""One interface for carrying a model's state across chunks of input.

Every architecture, attention or recurrent, is driven through the same two
objects:

* a :class:`State`: what the model remembers after ``n_tokens`` tokens (KV
  caches of attention layers, conv and recurrent states of SSM / linear
  layers), for a batch of rows that have all consumed the same number of
  tokens. lc_hf never pads, so rows never disagree on their position;
* a :class:`Runner`: ``prefill(input_ids, state) -> (logits, state)``, which
  feeds one chunk ``(batch, T)`` and returns its logits ``(batch, T, vocab)``.

Two generic pairs cover transformers' two ways of passing state:
:class:`CacheRunner`/:class:`CacheState` (a ``Cache`` object, nearly every model)
and :class:`StateListRunner`/:class:`TensorListState` (a ``state=[tensors]``
list, RWKV and RWKV-style remote code); a third, :class:`ModelRunner`/
:class:`LayerStates`, drives lc-eval's own implementations (``lc_models.models``),
which take and return their per-layer state dataclasses themselves.

Running a sequence chunk by chunk through a runner gives the logits of one
full forward pass over the whole sequence. Architecture fixes (see
``lc_models/hf_runners/``) live behind these two objects; callers never see them.

Example::

    runner = CacheRunner(AutoModelForCausalLM.from_pretrained(path))
    state = runner.new_state(batch_size=1)
    logits_a, state = runner.prefill(ids[:, :3], state)   # (1, 3, vocab)
    logits_b, state = runner.prefill(ids[:, 3:], state)   # continues at position 3
    # torch.cat([logits_a, logits_b], 1) == model(ids).logits, up to rounding
"""

from __future__ import annotations

import copy
import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import fields, replace

import torch


class State(ABC):
    """A batch of model states; every row has consumed ``n_tokens`` tokens.

    ``Runner.prefill`` advances a state in place and returns it: call
    :meth:`clone` (or :meth:`select`) first to keep a snapshot.
    """

    def __init__(self, n_tokens: int, batch_size: int):
        self.n_tokens = n_tokens
        self._batch_size = batch_size

    @property
    def batch_size(self) -> int:
        """Number of rows."""
        return self._batch_size

    @abstractmethod
    def select(self, rows: Sequence[int]) -> State:
        """A new, independent state holding ``rows`` of this one, in that order.

        Rows may repeat: ``state.select([0] * k)`` expands row 0 into k rows,
        e.g. to score k continuations of one prefilled context.
        """

    def clone(self) -> State:
        """An independent copy (a snapshot that later prefills leave untouched)."""
        return self.select(range(self.batch_size))

    def reserve(self, n_tokens: int) -> None:
        """A hint: no row will hold more than ``n_tokens`` tokens. KV caches may then allocate
        once instead of growing chunk by chunk; states of a fixed size ignore it."""

    @abstractmethod
    def nbytes(self) -> int:
        """Bytes held by the state's tensors (KV caches grow, recurrent states do not)."""


class Runner(ABC):
    """Feeds chunks of token ids through one causal LM, carrying its state."""

    model: torch.nn.Module

    @abstractmethod
    def new_state(self, batch_size: int) -> State:
        """The empty state (no tokens seen) for ``batch_size`` rows."""

    @abstractmethod
    def prefill(
        self, input_ids: torch.Tensor, state: State, last_only: bool = False
    ) -> tuple[torch.Tensor, State]:
        """Feed ``input_ids`` ``(batch, T)`` after ``state``.

        Returns logits ``(batch, T, vocab)`` (``(batch, 1, vocab)`` for the last
        position only when ``last_only``) and the state after the chunk (the
        input state object, advanced in place).
        """

    @property
    def device(self) -> torch.device:
        """Where input ids must live (the input embedding's device)."""
        return self.model.get_input_embeddings().weight.device


def _copy_layer(layer):
    """A shallow copy of a cache layer whose dict/list attributes are copied too,
    so that reassigning entries in the copy leaves the original untouched."""
    new = copy.copy(layer)
    for name, value in vars(layer).items():
        if isinstance(value, (dict, list)):
            setattr(new, name, copy.copy(value))
    return new


class CacheState(State):
    """State held in a ``transformers`` ``Cache`` (the model's own cache object).

    Row selection goes through each cache layer's ``reorder_cache`` (the
    beam-search primitive every layer type implements), applied to a copy.
    """

    def __init__(self, cache, n_tokens: int, batch_size: int):
        self.cache = cache
        super().__init__(n_tokens, batch_size)

    def select(self, rows: Sequence[int]) -> CacheState:
        index = torch.tensor(list(rows), dtype=torch.long)
        new = copy.copy(self.cache)
        # index_select inside reorder_cache makes fresh tensors: nothing is shared
        new.layers = [_copy_layer(layer) for layer in self.cache.layers]
        for layer in new.layers:
            layer.reorder_cache(index)
        return CacheState(new, self.n_tokens, len(index))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in _tensors(self.cache.layers))

    def reserve(self, n_tokens: int) -> None:
        from lc_models import kv_cache

        kv_cache.reserve(self.cache, n_tokens)


def _tensors(obj, seen=None):
    """Every tensor reachable from ``obj`` through lists, tuples, dicts and attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item, seen)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item, seen)
    elif hasattr(obj, "__dict__") and not isinstance(obj, torch.nn.Module):
        for item in vars(obj).values():
            yield from _tensors(item, seen)


def forward_params(model: torch.nn.Module) -> set[str]:
    """Names of the keyword arguments ``model.forward`` accepts."""
    return set(inspect.signature(model.forward).parameters)


class CacheRunner(Runner):
    """The generic runner: the model's own forward with its own cache object.

    Positions are passed explicitly (``position_ids`` continue from the
    state), because some models (e.g. Bamba in transformers 5.24) restart
    them at zero for every call.
    """

    def __init__(self, model: torch.nn.Module):
        from transformers import DynamicCache

        self.model = model
        params = forward_params(model)
        if "cache" in params:
            self.cache_arg = "cache"
        elif "past_key_values" in params:
            self.cache_arg = "past_key_values"
        else:
            from lc_tasks.errors import UsageError

            raise UsageError(
                f"lc_hf cannot carry the state of {type(model).__name__}: its forward takes "
                "neither `cache` nor `past_key_values`; add a runner module in "
                "lc_models/hf_runners/ for it."
            )
        self.pass_positions = "position_ids" in params
        self.can_keep_last = "logits_to_keep" in params
        self._cache_class = DynamicCache

    def new_state(self, batch_size: int) -> CacheState:
        from lc_models import kv_cache

        cache = self._cache_class(config=self.model.config)
        kv_cache.use_reserved_layers(cache)  # its attention layers can be allocated once
        return CacheState(cache, 0, batch_size)

    def extra_kwargs(self, input_ids, state) -> dict:
        """More forward kwargs for this chunk (architecture modules override it)."""
        return {}

    @torch.no_grad()
    def prefill(self, input_ids, state, last_only=False):
        batch, length = input_ids.shape
        if batch != state.batch_size:
            raise ValueError(f"input has {batch} rows but the state has {state.batch_size}")
        kwargs = {self.cache_arg: state.cache, "use_cache": True}
        if self.pass_positions:
            start = state.n_tokens
            positions = torch.arange(start, start + length, device=input_ids.device)
            kwargs["position_ids"] = positions.unsqueeze(0).expand(batch, length)
        if last_only and self.can_keep_last:
            kwargs["logits_to_keep"] = 1
        kwargs.update(self.extra_kwargs(input_ids, state))
        out = self.model(input_ids=input_ids, **kwargs)
        logits = out.logits if not last_only else out.logits[:, -1:]
        # Models fill the cache object they were given; adopt a returned one if it differs.
        returned = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        if returned is not None and returned is not state.cache:
            state.cache = returned
        state.n_tokens += length
        return logits, state


class TensorListState(State):
    """State as a list of tensors with the batch first (``None`` before the first token)."""

    def __init__(self, tensors: list[torch.Tensor] | None, n_tokens: int, batch_size: int):
        self.tensors = tensors
        super().__init__(n_tokens, batch_size)

    def select(self, rows: Sequence[int]) -> TensorListState:
        rows = list(rows)
        if self.tensors is None:
            return TensorListState(None, self.n_tokens, len(rows))
        index = torch.tensor(rows, dtype=torch.long, device=self.tensors[0].device)
        selected = [t.index_select(0, index) for t in self.tensors]
        return TensorListState(selected, self.n_tokens, len(rows))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors or [])


class StateListRunner(Runner):
    """For models whose forward takes ``state=[tensors]`` and returns ``.state``
    (RWKV in transformers; RWKV-5/6 remote code has the same interface)."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def new_state(self, batch_size: int) -> TensorListState:
        return TensorListState(None, 0, batch_size)

    @torch.no_grad()
    def prefill(self, input_ids, state, last_only=False):
        out = self.model(input_ids=input_ids, state=state.tensors, use_cache=True)
        state.tensors = list(out.state)
        state.n_tokens += input_ids.shape[1]
        logits = out.logits[:, -1:] if last_only else out.logits
        return logits, state


class LayerStates(State):
    """A list of per-layer state dataclasses whose tensor fields all have the batch first.

    The state of lc-eval's own model implementations (``lc_models/models/``): each family
    defines a small dataclass per layer kind (e.g. token shifts and a WKV matrix), and this
    class selects rows and counts bytes over all of their tensor fields. A field may be
    ``None`` (nothing stored yet).
    """

    def __init__(self, layers: list, n_tokens: int, batch_size: int):
        self.layers = layers
        super().__init__(n_tokens, batch_size)

    def _tensors_of(self, layer):
        for field in fields(layer):
            value = getattr(layer, field.name)
            if isinstance(value, torch.Tensor):
                yield field.name, value

    def select(self, rows: Sequence[int]) -> LayerStates:
        rows = list(rows)
        new = []
        for layer in self.layers:
            picked = {}
            for name, t in self._tensors_of(layer):
                picked[name] = t.index_select(0, torch.tensor(rows, device=t.device))
            new.append(replace(layer, **picked))
        return LayerStates(new, self.n_tokens, len(rows))

    def nbytes(self) -> int:
        return sum(
            t.numel() * t.element_size() for layer in self.layers for _, t in self._tensors_of(layer)
        )


class ModelRunner(Runner):
    """For lc-eval's own model implementations, which carry their state themselves:
    ``model.new_state(batch_size) -> State`` and ``model.prefill(input_ids, state,
    last_only) -> logits`` (advancing the state in place)."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def new_state(self, batch_size: int) -> State:
        return self.model.new_state(batch_size)

    @torch.no_grad()
    def prefill(self, input_ids, state, last_only=False):
        batch, length = input_ids.shape
        if batch != state.batch_size:
            raise ValueError(f"input has {batch} rows but the state has {state.batch_size}")
        logits = self.model.prefill(input_ids, state, last_only=last_only)
        state.n_tokens += length
        return logits, state
