"""Check that chunked prefill through a runner computes what one full forward pass does.

The oracle is the model's own full forward over the whole sequence. The check
feeds two short random sequences as a batch, in odd-sized chunks (so chunk
boundaries fall at awkward places), then token by token, and compares the logits.
Every length in the config that shapes attention (a sliding window, an attention chunk, a
top-k indexer, a compression block, a carried convolution: ``lc_models.length_fields``) is
crossed by a probe fed in chunks shorter than it (``probes``). The full pass runs with the
model's stock attention implementation, so that what is checked is what stock ``hf`` computes.

>>> err = chunked_error(runner, length=29, chunk=5)  # doctest: +SKIP
>>> err < 1e-4  # doctest: +SKIP
True
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from lc_models import length_fields
from lc_models.state import Runner
from lc_tasks.errors import UsageError

# Largest error tolerated, relative to the largest |logit| of the full pass. In float32 and
# float64 the check takes the largest error of any position: chunking changes only the order
# of sums. Half precision rounds differently when the same tokens are split differently, and
# the rounding compounds through the layers chaotically: a real Gemma-3-270m in bf16 shows a
# median position 0.7% off, and a few positions 5.6% off. There the check takes, per segment
# (each chunk, and the token-by-token steps together) and per sequence, the median error of
# its positions: a state that is not carried, or a broken decoding step, puts every position
# of a segment off by the order of the logits, while rounding moves single positions. A
# non-finite logit, or a step of the wrong shape, refuses in any precision. An error below
# bf16's rounding (unpatched transformers Mamba is off by 1e-3 in float32) passes unseen in
# half precision: run a new architecture in float32 first.
RELATIVE_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-6}
HALF_PRECISION_TOLERANCE = 5e-2
# the shortest probe, and its chunk: 29 tokens in chunks of 5
BASE_LENGTH, BASE_CHUNK = 29, 5
# a probe runs this many tokens past the longest length it crosses
PAST = 11
# lengths up to this many times the shortest of a probe share that probe (and its chunks
# shorter than all of them): each probe stays under ~2 * GROUP_RATIO chunks
GROUP_RATIO = 8
# a length-like field no table knows is crossed up to this many tokens (a larger one is
# logged, not crossed: it may be no attention length at all)
UNKNOWN_CEILING = 8192
log = logging.getLogger("lm_eval.models.lc_hf")
# bf16's tolerance on a summed log-likelihood, relative: 2**-6, two bits short of bf16's
# eight (its machine epsilon is 2**-7)
BF16_RELATIVE = 2.0**-6


def bf16_agrees(lc: float, stock: float, exact: float) -> bool:
    """bf16's tolerance for a log-likelihood (stated in docs/performance.md):
    ``lc``, lc_hf's in bf16, is within ``BF16_RELATIVE`` of ``exact`` (the float32 result),
    or no further from it than twice ``stock``'s error (stock ``hf``'s in bf16), whichever
    is larger. Random-weight models amplify bf16's rounding: a 24-layer Mamba2-130m config
    is 0.2-1.8 nats off over 8 tokens (about 1.5%) under either implementation."""
    return abs(lc - exact) <= max(2 * abs(stock - exact), BF16_RELATIVE * abs(exact))


@dataclass(frozen=True)
class Probe:
    """``length`` random tokens fed in chunks of ``chunk``: longer than each of ``crosses``
    (field -> tokens) and, where it can be, in chunks shorter than each."""

    length: int
    chunk: int
    crosses: dict[str, int] = field(default_factory=dict)

    def names(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.crosses.items())


def _odd_below(n: int) -> int:
    """The largest odd number below ``n`` (at least 1)."""
    return max(1, n - 1 if n % 2 == 0 else n - 2)


def probes(config) -> list[Probe]:
    """The probes of the check: 29 tokens in chunks of 5, or for a config with lengths that
    shape attention, one probe per group of them (lengths within ``GROUP_RATIO`` of the
    group's shortest): past the group's longest, in odd chunks shorter than its shortest and
    at most a sixth of the probe.

    >>> from transformers import MistralConfig
    >>> probes(MistralConfig(sliding_window=16, vocab_size=64))
    [Probe(length=29, chunk=5, crosses={'sliding_window': 16})]
    """
    found = length_fields.lengths(config)
    unknown = set(length_fields.unknown_fields(config))
    skipped = {k: v for k, v in found.items() if k in unknown and v > UNKNOWN_CEILING}
    if skipped:
        log.warning("lc_hf: the load check does not cross %s: length-like config fields it "
                    "does not know, over %d tokens", skipped, UNKNOWN_CEILING)
    found = {k: v for k, v in found.items() if k not in skipped}
    if not found:
        return [Probe(BASE_LENGTH, BASE_CHUNK)]
    out, group = [], {}
    for name, value in sorted(found.items(), key=lambda kv: kv[1]):
        shortest = min((v for v in group.values() if v >= 2), default=None)
        if shortest is not None and value > GROUP_RATIO * shortest:
            out.append(group)
            group = {}
        group[name] = value
    out.append(group)
    made = []
    for group in out:
        length = max(BASE_LENGTH, max(group.values()) + PAST)
        # no chunk is shorter than 1: a length of 1 (one carried conv state) bounds none
        shortest = min((v for v in group.values() if v >= 2), default=length)
        chunk = min(_odd_below(shortest), (length // 6) | 1)
        made.append(Probe(length, chunk, group))
    return made


def probe_size(config) -> tuple[int, int]:
    """(length, chunk) of the longest probe (see ``probes``)."""
    longest = probes(config)[-1]
    return longest.length, longest.chunk


@contextmanager
def stock_attention(model):
    """``model`` attending with the implementation stock ``hf`` uses, for the oracle: lc_hf's
    own ``lc_sdpa`` goes back to "sdpa" inside (code that tests the name then takes the
    branch stock ``hf`` takes)."""
    from lc_models.hf_runners import lc_sdpa

    config = getattr(model, "config", None)
    switched = getattr(config, "_attn_implementation", None) == lc_sdpa.NAME
    if switched:
        model.set_attn_implementation("sdpa")
    try:
        yield
    finally:
        if switched:
            model.set_attn_implementation(lc_sdpa.NAME)


@torch.no_grad()
def position_errors(runner: Runner, length: int = 29, chunk: int = 5, seed: int = 0):
    """Chunked (then token-by-token) prefill against one full forward pass, over a batch of
    two random sequences of ``length`` tokens. Returns (errors (2, length) float32: each
    position's max |logit difference| relative to the largest |logit| of the full pass;
    segments: the (start, end) positions of each chunk, the token-by-token steps as one).
    Logits are compared piece by piece in float32; only the full pass's are kept whole."""
    model = runner.model
    vocab = model.get_input_embeddings().weight.shape[0]
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (2, length), generator=generator).to(runner.device)
    with stock_attention(model):
        full = torch.cat([model(input_ids=row[None]).logits for row in ids])  # (2, L, vocab)
    scale = full.abs().amax().float().clamp(min=1.0)

    split = length - 3  # chunks first, then the last 3 tokens one at a time
    steps = [(s, min(s + chunk, split)) for s in range(0, split, chunk)]
    steps += [(pos, pos + 1) for pos in range(split, length)]
    state = runner.new_state(2)
    errors = torch.full((2, length), float("inf"))
    for start, end in steps:
        logits, state = runner.prefill(ids[:, start:end], state)  # (2, end - start, vocab)
        if logits.shape != full[:, start:end].shape:  # a broken runner: every position fails
            errors.fill_(float("inf"))
            break
        diff = (logits.float() - full[:, start:end].float()).abs().amax(-1)  # (2, n)
        errors[:, start:end] = (diff / scale).cpu()
    segments = [seg for seg in steps if seg[1] <= split] + [(split, length)]
    return errors.nan_to_num(nan=float("inf"), posinf=float("inf")), segments


def chunked_error(runner: Runner, length: int = 29, chunk: int = 5, seed: int = 0,
                  half: bool = False) -> float:
    """The check's error: the largest of ``position_errors``, or with ``half`` (for half
    precision) the largest over segments and sequences of the median position error; inf
    where any position is not finite."""
    errors, segments = position_errors(runner, length, chunk, seed)
    if not half or not torch.isfinite(errors).all():
        return errors.max().item()
    return max(errors[:, a:b].median(dim=1).values.max().item() for a, b in segments)


def check_exact(runner: Runner) -> float:
    """Raise UsageError (a refusal of the model) unless chunked prefill matches the full
    forward pass."""
    dtype = runner.model.get_input_embeddings().weight.dtype
    half = dtype not in RELATIVE_TOLERANCE
    tolerance = HALF_PRECISION_TOLERANCE if half else RELATIVE_TOLERANCE[dtype]
    name = getattr(runner.model.config, "model_type", type(runner.model).__name__)
    worst = 0.0
    for probe in probes(runner.model.config):
        kinds = length_fields.kinds_bounded_by(runner.model.config, probe.crosses)
        layers = f" in its {', '.join(kinds)} layers" if kinds else ""
        past = f" past {probe.names()}{layers}" if probe.crosses else ""
        where = f"{probe.length} tokens in chunks of {probe.chunk}"
        try:
            error = chunked_error(runner, length=probe.length, chunk=probe.chunk, half=half)
        except Exception as err:
            reason = (str(err).strip().splitlines() or [""])[0][:200]
            raise UsageError(
                f"lc_hf refuses model type {name!r}: chunked prefill with its state fails"
                f"{past} ({where}; {type(err).__name__}: {reason}). It needs a runner "
                "module in lc_models/hf_runners/."
            ) from err
        if not error <= tolerance:
            raise UsageError(
                f"lc_hf refuses model type {name!r}: chunked prefill with its state differs "
                f"from the full forward pass{past} (relative error {error:.2e} > "
                f"{tolerance:.0e}, {where}), so results would be wrong. It needs a "
                "runner module in lc_models/hf_runners/."
            )
        worst = max(worst, error)
    return worst
