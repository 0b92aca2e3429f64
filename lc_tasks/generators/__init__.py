"""Generate a task's docs: ``generate(spec, tokenizer, seed) -> list[dict]``.

Pure: no I/O (beyond reading a user's haystack file), no global state, no
global RNG. Each doc draws its keys, values and text from its own
``random.Random`` seeded by ``(seed, family, length, index)``; docs are built
in index order, each starting its size search where the previous one ended.
The same inputs give byte-identical docs in any process, and asking for fewer
docs gives a prefix of the same list.

Docs cycle through the depths (doc i has ``depths[i % len(depths)]``), so
lm-eval's ``--limit N`` with N >= len(depths) covers every depth.

What carries from one doc to the next is only each fitter's sizing hint (where the previous
size search ended); ``generate`` records it after every doc and, given a ``cache`` of earlier
docs (``lc_tasks.doc_cache``), loads those and restores the hint, so a build that continues
from the cache gives the docs of one full build.

>>> from lc_tasks.options import task_spec
>>> # build_tokenizer(kind): an offline test tokenizer, given by tests/test_doctests.py
>>> docs = generate(task_spec("passkey", 1024, num_samples=2), build_tokenizer("char"), seed=0)
>>> [d["depth"] for d in docs], all(d["n_tokens"] + 16 <= 1024 for d in docs)
([0.0, 10.0], True)
>>> sorted(docs[0])
['depth', 'family', 'gen_prefix', 'index', 'input', 'length', 'n_tokens', 'needle_positions', 'outputs', 'seed']
"""

from __future__ import annotations

import random
from typing import Any

from lc_tasks.chat import Frame, frame_for
from lc_tasks.generators import (
    copy,
    cwe,
    fwe,
    kvrecall,
    latent,
    niah,
    passkey,
    ppl,
    qa,
    statetrack,
    vt,
)
from lc_tasks.generators.common import Built, doc_seed
from lc_tasks.options import TaskSpec
from lc_tasks.sizing import SizingError, TokenCounter

__all__ = ["GENERATORS", "VERSION", "generate"]

# Bump when a change to any generator changes its docs: cached docs of other versions are not
# reused.
VERSION = 3

# kind -> generator class with .doc(rng, depth) -> Built
GENERATORS = {
    "passkey": passkey.Generator,
    "niah": niah.Generator,
    "vt": vt.Generator,
    "cwe": cwe.Generator,
    "fwe": fwe.Generator,
    "qa": qa.Generator,
    "kvrecall": kvrecall.Generator,
    "ppl": ppl.Generator,
    "copy": copy.Generator,
    "latent": latent.Generator,
    "statetrack": statetrack.Generator,
}


def _check(spec: TaskSpec, built: Built) -> None:
    """What every doc promises; a failure here is a bug, never silently passed on."""
    limit = spec.length - spec.max_gen_toks - spec.reserve
    if built.n_tokens > limit:
        raise AssertionError(f"lc_{spec.family}: {built.n_tokens} prompt tokens exceed {limit}")
    if spec.info.kind == "ppl":  # no answers: the document itself is scored
        return
    # a QA answer need not be in the prompt (HotpotQA's yes/no); its generator checks that
    # the gold documents are
    missing = [o for o in built.outputs if o not in built.prompt and spec.info.kind != "qa"]
    if missing or not built.outputs:
        raise AssertionError(f"lc_{spec.family}: answers {missing} are not in the prompt")


def _fitters(gen) -> list:
    """The objects of a generator that carry a sizing hint (``offset``), in a fixed order."""
    return [gen, *vars(gen).values()]


def hints(gen) -> list[float]:
    return [holder.offset for holder in _fitters(gen) if hasattr(holder, "offset")]


def set_hints(gen, values: list[float]) -> None:
    holders = [holder for holder in _fitters(gen) if hasattr(holder, "offset")]
    for holder, value in zip(holders, values, strict=True):
        holder.offset = value


def generate(spec: TaskSpec, tokenizer: Any, seed: int = 42, progress: bool = False,
             cache=None) -> list[dict]:
    """The docs of one task, sized to ``spec.length`` tokens of ``tokenizer``.

    Each doc: ``index, family, length, n_tokens, depth, needle_positions, seed,
    input, gen_prefix, outputs``. ``input`` is the whole prompt lm-eval sends (answer
    prefix included) and ``gen_prefix`` empty; with ``spec.chat_template``, ``input`` is the
    user turn and ``gen_prefix`` the answer prefix that starts the assistant turn
    (``lc_tasks.chat``). ``n_tokens`` counts the text the model reads, special tokens and
    any chat template or system instruction included; ``needle_positions`` index into it.
    ``cache`` (a ``DocCache`` for this spec, seed and tokenizer) serves and keeps docs.
    """
    counter = TokenCounter(tokenizer, frame_for(spec, tokenizer))
    gen = GENERATORS[spec.info.kind](spec, counter)
    docs = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        from lc_tasks.progress import leave_bar

        bar = tqdm(total=spec.num_samples, desc=f"building lc_{spec.family} docs of "
                   f"{spec.length} tokens", unit="doc", delay=1.0, leave=leave_bar())
    carried = None  # the hints after the last doc taken from the cache
    tokens = 0
    for i in range(spec.num_samples):
        hit = cache.get(i) if cache is not None else None
        if hit is not None:
            docs.append(hit[0])
            carried = hit[1]
        else:
            if carried is not None:
                set_hints(gen, carried)
                carried = None
            docs.append(_framed(_build(spec, gen, seed, i), counter.frame))
            if cache is not None:
                cache.put(i, docs[-1], hints(gen))
        if bar is not None:
            tokens += docs[-1]["n_tokens"]
            rate = tokens / max(bar.format_dict["elapsed"], 1e-9)
            bar.set_postfix_str(f"{rate:,.0f} tok/s", refresh=False)
            bar.update(1)
    if bar is not None:
        bar.close()
    return docs


def _framed(doc: dict, frame: Frame) -> dict:
    """The doc with ``input`` and ``gen_prefix`` as lm-eval's task config reads them: the
    plain prompt and "", or the user turn and the answer prefix (``lc_tasks.chat``)."""
    text, gen_prefix = frame.record(doc["input"])
    return {**doc, "input": text, "gen_prefix": gen_prefix}


def _build(spec: TaskSpec, gen, seed: int, i: int) -> dict:
    s = doc_seed(seed, spec.family, spec.length, i)
    try:
        built = gen.doc(random.Random(s), spec.depths[i % len(spec.depths)])
    except SizingError as err:
        if str(err).startswith("lc_"):
            raise
        fewer = " or fewer pairs (num_pairs)" if spec.info.kind == "kvrecall" else ""
        raise SizingError(f"lc_{spec.family} at {spec.length} tokens: {str(err).rstrip('.')}"
                          f"{fewer}") from None
    _check(spec, built)
    return {
        "index": i,
        "family": spec.family,
        "length": spec.length,
        "n_tokens": built.n_tokens,
        "depth": built.depth,
        "needle_positions": built.positions,
        "seed": s,
        "input": built.prompt,  # with the answer mark; _framed makes it the doc's input
        "outputs": built.outputs,
        **built.extra,
    }
