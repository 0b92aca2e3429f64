"""State tracking (Merrill et al. 2024, "The Illusion of State in State-Space Models").

Five boxes, A to E, hold five objects. ``num_ops`` instructions "Swap the contents of boxes B
and D." follow, and the question asks what one box holds at the end. Composing swaps is
composing permutations of five elements (the group S5): diagonal SSMs and attention of fixed
depth cannot do it at every length, linear RNNs with negative eigenvalues (DeltaNet- and
RWKV-7-style) can. The statement of the initial contents sits at the doc's depth of RULER's
noise and the swaps are spread evenly from there to the end, so at depth 0 the tracking
spans the whole context. With ``parity`` every swap is of boxes A and B, and the answer is
the parity of the count. Each doc records the initial contents, the swaps, the contents
after each swap, the asked box, and the token position of the statement and of every swap.

>>> from lc_tasks.generators import generate
>>> from lc_tasks.options import task_spec
>>> # build_tokenizer(kind): an offline test tokenizer, given by tests/test_doctests.py
>>> doc = generate(task_spec("statetrack", 1024, num_samples=1, num_ops=4),
...                build_tokenizer("bpe"))[0]
>>> len(doc["swaps"]), doc["states"][-1][BOXES.index(doc["box"])] == doc["outputs"][0]
(4, True)
"""

from __future__ import annotations

import random
from functools import cache

from lc_tasks import words
from lc_tasks.generators.common import Built, NeedleFitter, choose_haystack
from lc_tasks.haystack import NOISE
from lc_tasks.options import TaskSpec
from lc_tasks.prompts import split_template
from lc_tasks.sizing import TokenCounter

__all__ = ["BOXES", "Generator", "apply_swaps", "op_levels"]

BOXES = "ABCDE"
START = "At the start, {contents}."
SWAP = "Swap the contents of boxes {a} and {b}."


@cache
def _objects() -> tuple[str, ...]:
    noise = {w.strip(".").lower() for line in NOISE for w in line.split()}
    return tuple(n for n in words.nouns() if n.isalpha() and n not in noise)


def apply_swaps(initial: list[str], swaps: list[list[str]]) -> list[list[str]]:
    """The boxes' contents after each swap (boxes as letters of ``BOXES``).

    >>> apply_swaps(["a", "b", "c", "d", "e"], [["A", "B"], ["B", "E"]])
    [['b', 'a', 'c', 'd', 'e'], ['b', 'e', 'c', 'd', 'a']]
    """
    state, out = list(initial), []
    for a, b in swaps:
        i, j = BOXES.index(a), BOXES.index(b)
        state[i], state[j] = state[j], state[i]
        out.append(list(state))
    return out


def op_levels(num_ops: int, depth: float) -> list[float]:
    """Depths (percent) of the swaps: evenly spaced after the statement at ``depth``, the
    last at 100.

    >>> op_levels(4, 0.0), op_levels(2, 50.0)
    ([25.0, 50.0, 75.0, 100.0], [75.0, 100.0])
    """
    return [round(depth + (100 - depth) * k / num_ops, 4) for k in range(1, num_ops + 1)]


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.fitter = NeedleFitter(counter, spec.budget, repeat=spec.repeat_context)
        self.choice = choose_haystack(spec, lines=True)

    def doc(self, rng: random.Random, depth: float) -> Built:
        num_ops, parity = self.spec.params["num_ops"], self.spec.params["parity"]
        initial = rng.sample(_objects(), len(BOXES))
        if parity:
            swaps = [["A", "B"] for _ in range(num_ops)]
            box = rng.choice("AB")
        else:
            swaps = [sorted(rng.sample(BOXES, 2)) for _ in range(num_ops)]
            box = rng.choice(BOXES)
        states = apply_swaps(initial, swaps)
        answer = (states[-1] if states else initial)[BOXES.index(box)]
        contents = ", ".join(f"box {b} holds the {o}" for b, o in zip(BOXES[:-1], initial))
        start = START.format(contents=f"{contents}, and box E holds the {initial[-1]}")
        levels = op_levels(num_ops, depth)
        needles = [(depth / 100, start), *((lv / 100, SWAP.format(a=a, b=b))
                                           for lv, (a, b) in zip(levels, swaps))]
        head, tail = split_template("statetrack", box=box, query_first=self.spec.query_first)
        fit, positions = self.fitter.fit(head, tail, needles, self.choice, rng)
        return Built(fit.prompt, [answer], fit.n_tokens, depth, positions,
                     extra={"num_ops": num_ops, "parity": parity, "box": box,
                            "initial": initial, "swaps": swaps, "states": states,
                            "op_depths": levels})
