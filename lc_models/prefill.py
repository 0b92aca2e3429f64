"""Feed a batch of token rows through a runner in chunks, with no padding at all.

All rows start from one state (so at one position) and are cut into chunks of
at most ``chunk_size`` tokens. A chunk never runs past the end of any row:
a boundary is placed at every row's end, and a row that has ended leaves the
batch (its state is set aside first when the caller wants it). So a pad token
never reaches any state, and the rows of a batch always share their position::

    rows    A: a a a a a a a a a a            (10 tokens)
            B: b b b b b b b b b b b b b b b  (15 tokens)
    chunk_size=4, chunks:  [0,4) A+B   [4,8) A+B   [8,10) A+B   [10,14) B   [14,15) B

Memory: activations are bounded by ``batch * chunk_size``; only the state
(KV caches of attention layers) grows with the input.

>>> ends = feed(runner, [[5, 6, 7], [5, 6]], runner.new_state(2), chunk_size=2,
...             keep_states=True, keep_last_logits=True)  # doctest: +SKIP
>>> ends[1].state.n_tokens, ends[1].logits.shape  # doctest: +SKIP
(2, torch.Size([vocab]))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from lc_models.state import Runner, State
from lc_tasks.progress import leave_bar

# A prefill shows its tokens/s bar once it has run this many seconds (shorter ones show none).
PROGRESS_DELAY = 1.0

# on_chunk(row_ids, start, logits): rows ``row_ids`` (indices into the rows given to
# ``feed``) each consumed tokens [start, start + T) of their row; logits (len(row_ids), T, vocab)
OnChunk = Callable[[list[int], int, torch.Tensor], None]


@dataclass
class RowEnd:
    """What is left of a row after its last token."""

    state: State | None = None  # batch of one, when ``keep_states``
    logits: torch.Tensor | None = None  # (vocab,) at the last token, when ``keep_last_logits``


def feed(
    runner: Runner,
    rows: Sequence[Sequence[int]],
    state: State,
    chunk_size: int,
    *,
    on_chunk: OnChunk | None = None,
    keep_states: bool = False,
    keep_last_logits: bool = False,
    progress: bool = True,
) -> list[RowEnd]:
    """Feed ``rows`` (token id lists) after ``state`` (one state row per token row).

    ``on_chunk`` sees the logits of every chunk; without it only the last
    position's logits are computed. Returns one :class:`RowEnd` per row.
    ``state`` is consumed.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of tokens, got {chunk_size}")
    if state.batch_size != len(rows):
        raise ValueError(f"{len(rows)} rows but a state of {state.batch_size} rows")
    ends = [RowEnd() for _ in rows]
    lengths = [len(row) for row in rows]
    active = list(range(len(rows)))  # row ids still in the batch, in state-row order
    pos = 0
    total = sum(lengths)
    bar = tqdm(
        total=total,
        unit="tok",
        unit_scale=True,
        desc="prefill",
        disable=not progress,
        delay=PROGRESS_DELAY,
        leave=leave_bar(),
    )
    with bar:
        while active:
            ended = [k for k, i in enumerate(active) if lengths[i] == pos]
            if ended:
                if keep_states:
                    for k in ended:
                        ends[active[k]].state = state.select([k])
                keep = [k for k, i in enumerate(active) if lengths[i] > pos]
                active = [active[k] for k in keep]
                if not active:
                    break
                state = state.select(keep)
            end = min(pos + chunk_size, min(lengths[i] for i in active))
            ids = torch.tensor([rows[i][pos:end] for i in active], dtype=torch.long)
            logits, state = runner.prefill(
                ids.to(runner.device), state, last_only=on_chunk is None
            )  # (batch, end - pos or 1, vocab)
            if on_chunk is not None:
                on_chunk(list(active), pos, logits)
            if keep_last_logits:
                for k, i in enumerate(active):
                    if lengths[i] == end:
                        ends[i].logits = logits[k, -1].float()
            bar.update((end - pos) * len(active))
            pos = end
    return ends
