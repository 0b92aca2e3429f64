"""The QA datasets of RULER's two QA tasks, read from the files users have.

* **SQuAD v2** (RULER ``qa_1``): the dev set JSON (``dev-v2.0.json``), or ``hf:<dataset>`` such
  as ``hf:rajpurkar/squad_v2`` (split ``validation``). Questions without an answer are left
  out; each question's gold document is its paragraph.
* **HotpotQA** (RULER ``qa_2``): the dev-distractor JSON (``hotpot_dev_distractor_v1.json``),
  or ``hf:hotpotqa/hotpot_qa:distractor``. A document is ``title\\ntext`` of one paragraph, as
  RULER writes it; a question's gold documents are its supporting paragraphs.

No data ships with lc-eval; ``load`` names where to get the files when none is given.

>>> import json, tempfile
>>> path = tempfile.mktemp(suffix=".json")
>>> squad = {"data": [{"title": "T", "paragraphs": [{"context": "Paris is in France.",
...          "qas": [{"question": "Where is Paris?", "answers": [{"text": "France"}],
...                   "is_impossible": False}]}]}]}
>>> _ = open(path, "w").write(json.dumps(squad))
>>> data = load("squad", path)
>>> data.docs, data.questions[0].answers, data.questions[0].gold
(('Paris is in France.',), ('France',), (0,))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lc_tasks.errors import UsageError

WHERE = {
    "squad": ("the SQuAD v2 dev set",
              "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json",
              "hf:rajpurkar/squad_v2"),
    "hotpotqa": ("the HotpotQA dev-distractor set",
                 "http://curtis.ml.cmu.edu/datasets/hotpot/hotpot_dev_distractor_v1.json",
                 "hf:hotpotqa/hotpot_qa:distractor"),
}


@dataclass(frozen=True)
class Question:
    question: str
    answers: tuple[str, ...]
    gold: tuple[int, ...]  # indices into QaData.docs


@dataclass(frozen=True)
class QaData:
    docs: tuple[str, ...]  # every distinct document, in file order
    questions: tuple[Question, ...]


def missing(dataset: str, task: str) -> UsageError:
    """The error for a QA task run without its data file."""
    what, url, hub = WHERE[dataset]
    return UsageError(f"{task} needs {what}: pass --metadata '{{\"{dataset}\": \"<path of the "
                      f"JSON>\"}}' (download it from {url}) or '{{\"{dataset}\": \"{hub}\"}}'")


@cache
def load(dataset: str, source: str) -> QaData:
    """The documents and answerable questions of ``dataset`` (``squad`` or ``hotpotqa``)."""
    if source.startswith("hf:"):
        rows = _hub_rows(dataset, source)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise UsageError(f"{dataset}={source!r}: no such file; {WHERE[dataset][0]} is at "
                             f"{WHERE[dataset][1]}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UsageError(f"{dataset}={source!r} is not a JSON file ({err})") from None
        rows = _squad_rows(raw) if dataset == "squad" else _hotpot_rows(raw)
    index: dict[str, int] = {}
    for _, _, _, docs in rows:  # every document, gold or not, in file order
        for doc in docs:
            index.setdefault(doc, len(index))
    questions = [Question(question, tuple(answers), tuple(index[doc] for doc in gold))
                 for question, answers, gold, _ in rows
                 if answers]  # SQuAD v2's unanswerable questions are left out
    if not questions:
        raise UsageError(f"{dataset}={source!r} holds no answerable question; is it "
                         f"{WHERE[dataset][0]}?")
    return QaData(tuple(index), tuple(questions))


def _squad_rows(raw) -> list:
    """(question, answers, [gold doc], [its docs]) of a SQuAD v2 JSON."""
    try:
        return [(qa["question"], _unique(a["text"] for a in qa.get("answers", [])),
                 [paragraph["context"]], [paragraph["context"]])
                for article in raw["data"] for paragraph in article["paragraphs"]
                for qa in paragraph["qas"] if not qa.get("is_impossible", False)]
    except (KeyError, TypeError) as err:
        raise UsageError(f"not SQuAD v2 JSON (no {err} where expected): pass dev-v2.0.json") \
            from None


def _hotpot_rows(raw) -> list:
    """(question, [answer], supporting paragraphs, all its paragraphs) of a HotpotQA
    distractor JSON."""
    try:
        rows = []
        for item in raw:
            paragraphs = {title: f"{title}\n{''.join(sentences)}"
                          for title, sentences in item["context"]}
            support = [t for t in dict.fromkeys(t for t, _ in item.get("supporting_facts", []))
                       if t in paragraphs] or list(paragraphs)
            rows.append((item["question"], [item["answer"]], [paragraphs[t] for t in support],
                         list(paragraphs.values())))
        return rows
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"not HotpotQA distractor JSON ({type(err).__name__}: {err}): pass "
                         "hotpot_dev_distractor_v1.json") from None


def _hub_rows(dataset: str, source: str) -> list:
    import datasets

    name, _, config = source[3:].partition(":")
    try:
        ds = datasets.load_dataset(name, config or None, split="validation")
    except Exception as err:  # noqa: BLE001  offline, unknown dataset, ...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UsageError(f"{dataset}={source!r}: cannot load it ({first}); pass a local JSON "
                         f"file ({WHERE[dataset][1]})") from None
    if dataset == "squad":
        return [(r["question"], _unique(r["answers"]["text"]), [r["context"]], [r["context"]])
                for r in ds]
    rows = []
    for r in ds:
        paragraphs = {t: f"{t}\n{''.join(s)}"
                      for t, s in zip(r["context"]["title"], r["context"]["sentences"])}
        support = [t for t in dict.fromkeys(r["supporting_facts"]["title"]) if t in paragraphs]
        rows.append((r["question"], [r["answer"]], [paragraphs[t] for t in support or paragraphs],
                     list(paragraphs.values())))
    return rows


def _unique(texts) -> list[str]:
    return list(dict.fromkeys(t for t in texts if t))
