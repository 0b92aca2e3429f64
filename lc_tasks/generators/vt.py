"""RULER's variable tracking (multi-hop tracing).

Chains "VAR ABCDE = 12345", "VAR FGHIJ = VAR ABCDE ", ... are scattered
through the haystack in order, at random depths; the model must name every
variable of the chain bound to the asked value. As in RULER, one solved
example (3-letter names, sized to 500 tokens) comes first.
"""

from __future__ import annotations

import random
import string

from lc_tasks.chat import ANSWER
from lc_tasks.generators.common import Built, NeedleFitter, choose_haystack
from lc_tasks.options import TaskSpec
from lc_tasks.prompts import split_template
from lc_tasks.sizing import TokenCounter

EXAMPLE_TOKENS = 500  # RULER sizes its in-context example to this


def _names(rng: random.Random, k: int, size: int) -> list[str]:
    out: list[str] = []
    while len(out) < k:
        name = "".join(rng.choices(string.ascii_uppercase, k=size))
        if name not in out:
            out.append(name)
    return out


def chains(rng: random.Random, num_chains: int, num_hops: int, name_len: int = 5):
    """``(variables, lines)`` per chain; chain values are distinct 5-digit numbers.

    >>> names, lines = chains(random.Random(0), 1, 2)[0]
    >>> lines[1] == f"VAR {names[1]} = VAR {names[0]} "
    True
    """
    names = _names(rng, num_chains * (num_hops + 1), name_len)
    values = rng.sample(range(10_000, 100_000), num_chains)
    out = []
    for c in range(num_chains):
        v = names[c * (num_hops + 1) : (c + 1) * (num_hops + 1)]
        lines = [f"VAR {v[0]} = {values[c]}"] + [f"VAR {v[j + 1]} = VAR {v[j]} "
                                                 for j in range(num_hops)]
        out.append((v, lines))
    return out


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.fitter = NeedleFitter(counter, spec.budget, repeat=spec.repeat_context)
        # Its own fitter: its size differs, so its estimate corrections do too. The solved
        # example stays as RULER writes it (read once, question last) whatever the options.
        # sized as plain text: the example sits inside the prompt, not in a chat turn of its own
        self.example_fitter = NeedleFitter(counter.plain(), min(EXAMPLE_TOKENS, spec.budget // 2))
        self.choice = choose_haystack(spec, lines=True)

    def _needles(self, rng: random.Random, groups) -> list[tuple[float, str]]:
        needles = []
        for _, lines in groups:
            fracs = sorted(rng.random() for _ in lines)  # chain order is kept
            if self.choice.name != "noise":
                lines = [line.strip() + "." for line in lines]  # RULER's essay form
            needles += list(zip(fracs, lines))
        return needles

    def _prompt_parts(self, value: str, num_v: int, query_first: bool = False
                      ) -> tuple[str, str]:
        return split_template(self.spec.family, query=value, num_v=num_v,
                              query_first=query_first)

    def doc(self, rng: random.Random, depth: float | None = None) -> Built:
        hops, n_chains = self.spec.params["num_hops"], self.spec.params["num_chains"]

        # The solved example: one chain of 3-letter names, at most 10 hops.
        ex_hops = min(10, hops)
        ex = chains(rng, 1, ex_hops, name_len=3)
        head, tail = self._prompt_parts(ex[0][1][0].split("= ")[-1], ex_hops + 1)
        ex_fit, _ = self.example_fitter.fit(head, tail, self._needles(rng, ex), self.choice, rng)
        # the solved example is plain text inside the prompt: its answer mark is a space
        example = ex_fit.prompt.replace(ANSWER, " ") + " " + " ".join(ex[0][0])

        groups = chains(rng, n_chains, hops)
        head, tail = self._prompt_parts(groups[0][1][0].split("= ")[-1], hops + 1,
                                        self.spec.query_first)
        needles = self._needles(rng, groups)
        fit, positions = self.fitter.fit(example + "\n\n" + head, tail, needles, self.choice, rng)
        return Built(fit.prompt, list(groups[0][0]), fit.n_tokens,
                     [round(100 * f, 2) for f, _ in needles], positions)


__all__ = ["Generator", "chains"]
