"""Retrieval without literal overlap (Modarressi et al. 2025, "NoLiMa").

One needle states a fact about a character ("Yuki lives next to the Semper Opera House.");
the question names what the fact implies, not the fact ("Which character has been to
Dresden?"), and the answer is the character's name. One association of general knowledge
links them: our own table, ``lc_tasks/data/associations.tsv`` (landmark -> city, dish ->
country, instrument -> section, animal -> country, tool -> profession). The needle sits at
the doc's depth in our prose; ``num_distractors`` other characters, with facts of the same
kind whose targets differ, sit at random levels of RULER's 40, so none of them meets the
association. ``literal: true`` asks about the same needle in its own words ("Which character
lives next to the Semper Opera House?"), the control that measures the latent gap.

Every latent doc is checked: its question and needle share no content word after
lower-casing and stemming (``content_words``).

>>> stem("lives"), stem("live"), stem("practises"), stem("stopped")
('liv', 'liv', 'practis', 'stop')
>>> sorted(content_words("Which character has been to Dresden?"))
['charact', 'dresden']
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from lc_tasks.generators.common import RULER_LEVELS, Built, NeedleFitter, choose_haystack
from lc_tasks.options import TaskSpec
from lc_tasks.prompts import split_template
from lc_tasks.sizing import TokenCounter

__all__ = ["KINDS", "Association", "Generator", "associations", "characters", "content_words",
           "stem"]

# kind -> (needle, latent question, literal question); {name}, {cue}, {target}.
KINDS: dict[str, tuple[str, str, str]] = {
    "landmark": ("{name} lives next to {cue}.", "Which character has been to {target}?",
                 "Which character lives next to {cue}?"),
    "dish": ("{name} ordered {cue} at the restaurant.", ("Which character ate a dish from "
             "{target}?"), "Which character ordered {cue} at the restaurant?"),
    "instrument": ("{name} practises the {cue} every evening.", ("Which character plays a "
                   "{target} instrument?"), "Which character practises the {cue} every evening?"),
    "animal": ("{name} photographed a wild {cue} last year.", ("Which character has travelled "
               "to {target}?"), "Which character photographed a wild {cue} last year?"),
    "tool": ("{name} always keeps a {cue} close at hand.", ("Which character works as "
             "{target}?"), "Which character always keeps a {cue} close at hand?"),
}

# Function words: never counted as overlap.
STOP = frozenset(("a", "an", "the", "of", "to", "at", "in", "on", "for", "from", "by", "with",
                  "as", "and", "or", "is", "are", "was", "were", "be", "been", "has", "have",
                  "had", "do", "does", "did", "which", "who", "what", "whom", "whose", "this",
                  "that", "it", "its"))
_SUFFIXES = ("ings", "ing", "edly", "ed", "es", "s", "ly", "er")


def stem(word: str) -> str:
    """A tiny suffix stemmer: lower-case, drop one inflectional suffix (keeping at least
    three letters), a final e and a doubled final consonant."""
    w = word.lower()
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiou":
        w = w[:-1]
    return w


def content_words(text: str) -> set[str]:
    """The stems of ``text``'s words that are not function words."""
    return {stem(w) for w in re.findall(r"[A-Za-z]+", text) if w.lower() not in STOP}


@dataclass(frozen=True)
class Association:
    kind: str
    cue: str  # what the needle states
    target: str  # what the latent question names


@cache
def associations() -> tuple[Association, ...]:
    """The rows of ``lc_tasks/data/associations.tsv``, in file order."""
    text = files("lc_tasks").joinpath("data", "associations.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return tuple(Association(*row) for row in rows)


@cache
def characters() -> tuple[str, ...]:
    """The characters' names (``lc_tasks/data/characters.txt``)."""
    text = files("lc_tasks").joinpath("data", "characters.txt").read_text(encoding="utf-8")
    return tuple(w for line in text.splitlines() if not line.startswith("#")
                 for w in line.split())


def needle(a: Association, name: str) -> str:
    return KINDS[a.kind][0].format(name=name, cue=a.cue)


def question(a: Association, literal: bool) -> str:
    return KINDS[a.kind][2 if literal else 1].format(cue=a.cue, target=a.target)


class Generator:
    def __init__(self, spec: TaskSpec, counter: TokenCounter):
        self.spec = spec
        self.fitter = NeedleFitter(counter, spec.budget, repeat=spec.repeat_context)
        self.choice = choose_haystack(spec, lines=True)

    def doc(self, rng: random.Random, depth: float) -> Built:
        literal, k = self.spec.params["literal"], self.spec.params["num_distractors"]
        table = associations()
        asked = rng.choice(table)
        # Distractors: same kind, other targets (one each), so none meets the association.
        others: dict[str, Association] = {}
        for a in rng.sample(table, len(table)):
            if a.kind == asked.kind and a.target != asked.target and a.target not in others:
                others[a.target] = a
        distractors = list(others.values())[:k]
        names = rng.sample(characters(), len(distractors) + 1)
        q = question(asked, literal)
        text = needle(asked, names[0])
        if not literal and content_words(q) & content_words(text):
            raise AssertionError(f"latent question {q!r} shares words with {text!r}")
        levels = rng.sample([lv for lv in RULER_LEVELS if lv != depth], len(distractors))
        needles = [(depth / 100, text), *((lv / 100, needle(a, n))
                                          for lv, a, n in zip(levels, distractors, names[1:]))]
        head, tail = split_template("niah_latent", question=q,
                                    query_first=self.spec.query_first)
        fit, positions = self.fitter.fit(head, tail, needles, self.choice, rng)
        return Built(fit.prompt, [names[0]], fit.n_tokens, depth, positions[:1],
                     extra={"literal": literal, "kind": asked.kind, "cue": asked.cue,
                            "target": asked.target, "needle": text, "question": q,
                            "distractor_positions": positions[1:]})
