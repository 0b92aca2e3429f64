"""Generate a task's docs: ``generate(spec, tokenizer, seed) -> list[dict]``.

Pure: no I/O (beyond reading a user's haystack file), no global state, no
global RNG. Each doc draws its keys, values and text from its own
``random.Random`` seeded by ``(seed, family, length, index)``; docs are built
in index order, each starting its size search where the previous one ended.
The same inputs give byte-identical docs in any process, and asking for fewer
docs gives a prefix of the same list.

Docs cycle through the depths (doc i has ``depths[i % len(depths)]``), so
lm-eval's ``--limit N`` with N >= len(depths) covers every depth.

>>> from lc_models.tiny import build_tokenizer
>>> from lc_tasks.options import task_spec
>>> docs = generate(task_spec("passkey", 1024, num_samples=2), build_tokenizer("char"), seed=0)
>>> [d["depth"] for d in docs], all(d["n_tokens"] + 16 <= 1024 for d in docs)
([0.0, 10.0], True)
>>> sorted(docs[0])
['depth', 'family', 'index', 'input', 'length', 'n_tokens', 'needle_positions', 'outputs', 'seed']
"""

from __future__ import annotations

import random
from typing import Any

from lc_tasks.generators import cwe, fwe, niah, passkey, vt
from lc_tasks.generators.common import Built, doc_seed
from lc_tasks.options import TaskSpec
from lc_tasks.sizing import TokenCounter

__all__ = ["GENERATORS", "generate"]

# kind -> generator class with .doc(rng, depth) -> Built
GENERATORS = {
    "passkey": passkey.Generator,
    "niah": niah.Generator,
    "vt": vt.Generator,
    "cwe": cwe.Generator,
    "fwe": fwe.Generator,
}


def _check(spec: TaskSpec, built: Built) -> None:
    """What every doc promises; a failure here is a bug, never silently passed on."""
    limit = spec.length - spec.info.max_gen_toks - spec.reserve
    if built.n_tokens > limit:
        raise AssertionError(f"lc_{spec.family}: {built.n_tokens} prompt tokens exceed {limit}")
    missing = [o for o in built.outputs if o not in built.prompt]
    if missing or not built.outputs:
        raise AssertionError(f"lc_{spec.family}: answers {missing} are not in the prompt")


def generate(spec: TaskSpec, tokenizer: Any, seed: int = 42, progress: bool = False
             ) -> list[dict]:
    """The docs of one task, sized to ``spec.length`` tokens of ``tokenizer``.

    Each doc: ``index, family, length, n_tokens, depth, needle_positions, seed,
    input, outputs``. ``input`` is the whole prompt lm-eval sends (answer
    prefix included); ``n_tokens`` its token count with special tokens.
    """
    counter = TokenCounter(tokenizer)
    gen = GENERATORS[spec.info.kind](spec, counter)
    docs = []
    indices = range(spec.num_samples)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=f"lc_{spec.family} {spec.length} tokens", unit="doc")
    for i in indices:
        s = doc_seed(seed, spec.family, spec.length, i)
        depth = spec.depths[i % len(spec.depths)]
        built = gen.doc(random.Random(s), depth)
        _check(spec, built)
        docs.append({
            "index": i,
            "family": spec.family,
            "length": spec.length,
            "n_tokens": built.n_tokens,
            "depth": built.depth,
            "needle_positions": built.positions,
            "seed": s,
            "input": built.prompt,
            "outputs": built.outputs,
        })
    return docs
