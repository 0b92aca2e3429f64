"""Long-context QA (RULER ``qa_1`` on SQuAD, ``qa_2`` on HotpotQA).

As RULER builds them: numbered documents ("Document 1:\\n...") between the instruction, which
comes before and after them, and the question at the end; the answer is scored by RULER's
string-match-part (any gold answer found in the output). Unlike RULER, whose documents are
shuffled, the gold document(s) sit at the doc's depth, as one block, among distractor
documents of the same dataset drawn for each doc; the number of distractors is sized to fill
the length, and the start of one more distractor, cut after a word, fills what is left, so
the prompt fills the length as exactly as the other families'. A dataset too small to fill
the length without repeating a document is an error that says so.
"""

from __future__ import annotations

import bisect
import random
import re

from lc_tasks import qa_data
from lc_tasks.errors import UsageError
from lc_tasks.families import task_name
from lc_tasks.generators.common import Built, copies_estimate, repeated
from lc_tasks.options import TaskSpec
from lc_tasks.prompts import split_template
from lc_tasks.sizing import TokenCounter, fit_to_length

_BLOCK = 256  # distractors counted per step while growing the pool


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.counter = counter
        dataset = spec.info.params["dataset"]
        self.name = _task(spec)
        if not spec.qa_source:
            raise qa_data.missing(dataset, self.name)
        self.data = qa_data.load(dataset, spec.qa_source)
        self.offset = 0.0

    def doc(self, rng: random.Random, depth: float) -> Built:
        data, budget = self.data, self.spec.budget
        qa = data.questions[rng.randrange(len(data.questions))]
        head, tail = split_template(self.spec.family, query=qa.question,
                                    query_first=self.spec.query_first)
        copies = self.spec.repeat_context
        gold = [f"{data.docs[i]}" for i in qa.gold]
        others = [i for i in range(len(data.docs)) if i not in qa.gold]
        rng.shuffle(others)
        gold_tokens = sum(self.counter.piece_counts([_numbered(0, g) for g in gold]))
        fixed = self.counter.count(head + tail)

        def estimate(n: int) -> float:  # the prompt with n distractors in each copy
            return copies_estimate(self.counter, fixed, gold_tokens + cum[n], copies)

        cum = [0.0]  # cum[n]: estimated tokens of the first n distractors
        while estimate(-1) < budget * 1.1 + 64 and len(cum) <= len(others):
            block = others[len(cum) - 1 : len(cum) - 1 + _BLOCK]
            counts = self.counter.piece_counts([_numbered(0, data.docs[i]) for i in block])
            for count in counts:
                cum.append(cum[-1] + count)
        if estimate(-1) < budget:
            what = qa_data.WHERE[self.spec.info.params["dataset"]][0]
            raise UsageError(
                f"{self.name}: {what} has about "
                f"{int(estimate(-1))} tokens of documents, fewer than the {budget} this "
                "length needs without repeating one; run a shorter length")

        def build(n: int, words: int = 0):
            """The prompt with n whole distractors, the gold block among them at the depth,
            then the first ``words`` words of the next distractor as a last, cut document."""
            k = _insertion(cum, n, depth / 100)
            ordered = [data.docs[i] for i in others[:k]] + gold + [data.docs[i] for i in
                                                                   others[k:n]]
            if words:
                ordered.append("".join(_words(data.docs[others[n]])[:words]).lstrip())
            parts, starts, at = [], [], 0
            for j, text in enumerate(ordered):
                if k <= j < k + len(gold):
                    starts.append(at)
                piece = _numbered(j + 1, text)
                parts.append(piece)
                at += len(piece) + 2
            prompt, last = repeated(head, "\n\n".join(parts), tail, copies)
            return prompt, [last + s for s in starts]  # the gold block of the last copy

        fit = fit_to_length(build, estimate, budget=budget, n_min=0, n_max=len(cum) - 1,
                            counter=self.counter, offset=self.offset)
        self.offset = fit.offset
        if fit.n < len(others):  # fill what is left with the start of the next distractor
            n, cut = fit.n, _words(data.docs[others[fit.n]])
            per_word = (cum[n + 1] - cum[n]) / max(len(cut), 1) if n + 1 < len(cum) else 1.5
            fit = fit_to_length(lambda m: build(n, m),
                                lambda m: fit.n_tokens + copies * (4 + m * per_word),
                                budget=budget, n_min=0, n_max=len(cut) - 1, counter=self.counter)
        missing = [g for g in gold if g not in fit.prompt]
        if missing:
            raise AssertionError(f"lc_{self.spec.family}: a gold document is not in the prompt")
        positions = self.counter.positions(fit.prompt, fit.enc, fit.extra)
        return Built(fit.prompt, list(qa.answers), fit.n_tokens, depth, positions)


def _task(spec: TaskSpec) -> str:
    try:
        return task_name(spec.family, spec.length)
    except ValueError:  # a length outside the task table (generators take any)
        return f"lc_{spec.family}_{spec.length}"


def _words(text: str) -> list[str]:
    """A document's words, each with the whitespace before it (where a document may be cut)."""
    return re.findall(r"\s*\S+", text)


def _numbered(index: int, text: str) -> str:
    return f"Document {index}:\n{text}"


def _insertion(cum: list[float], n: int, fraction: float) -> int:
    """How many of the first n distractors go before the gold block: the count whose tokens
    come nearest to ``fraction`` of the n distractors' tokens."""
    target = fraction * cum[n]
    k = bisect.bisect_left(cum, target, hi=n)
    return min((k, max(k - 1, 0)), key=lambda j: abs(cum[j] - target))
