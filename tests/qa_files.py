"""Small files in the formats of RULER's QA datasets, written by the tests themselves.

* ``write_squad``: SQuAD v2 dev JSON (articles, paragraphs, questions with answer spans, a
  few unanswerable ones, which must be left out);
* ``write_hotpot``: HotpotQA dev-distractor JSON (question, answer, ten titled paragraphs of
  sentences, supporting facts).

Each answer can be read off its gold paragraph(s): "The code of <name> is <6 digits>." (and,
for HotpotQA, "<name> works with <other>.", a second hop), so the oracle model can answer by
reading the prompt.
"""

from __future__ import annotations

import itertools
import json
import random

from lc_tasks import prose


def _filler(rng: random.Random, k: int) -> list[str]:
    return [s for s, _ in itertools.islice(prose.iter_sentences(rng), k)]


def _name(i: int) -> str:
    return f"Kestrel{i:04d}"


def write_squad(path, articles: int = 150, seed: int = 0):
    rng = random.Random(seed)
    data = []
    for a in range(articles):
        paragraphs = []
        for p in range(5):
            i = a * 5 + p
            code = f"{rng.randint(100000, 999999)}"
            sentences = _filler(rng, 3)
            sentences.insert(rng.randint(0, 3), f"The code of {_name(i)} is {code}.")
            qas = [{"id": f"q{i}", "question": f"What is the code of {_name(i)}?",
                    "answers": [{"text": code, "answer_start": 0}], "is_impossible": False},
                   {"id": f"x{i}", "question": f"Who lost the code of {_name(i)}?",
                    "answers": [], "is_impossible": True}]
            paragraphs.append({"context": " ".join(sentences), "qas": qas})
        data.append({"title": f"Article {a}", "paragraphs": paragraphs})
    path.write_text(json.dumps({"version": "v2.0", "data": data}))
    return path


def write_hotpot(path, questions: int = 120, seed: int = 0):
    rng = random.Random(seed)
    items = []
    for q in range(questions):
        first, second = _name(5000 + 2 * q), _name(5001 + 2 * q)
        code = f"{rng.randint(100000, 999999)}"
        context = [[first, [f"{first} works with {second}. ", *_filler(rng, 2)]],
                   [second, [*_filler(rng, 1), f" The code of {second} is {code}."]]]
        context += [[f"Other {q}-{j}", _filler(rng, 3)] for j in range(8)]
        rng.shuffle(context)
        items.append({"_id": f"h{q}", "question": f"What is the code of the one {first} "
                      "works with?", "answer": code, "type": "bridge", "level": "easy",
                      "supporting_facts": [[first, 0], [second, 1]], "context": context})
    path.write_text(json.dumps(items))
    return path
