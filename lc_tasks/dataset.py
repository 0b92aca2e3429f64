"""lm-eval's entry point: ``custom_dataset: !function lc_tasks.dataset.build``.

lm-eval calls ``build(**metadata, **dataset_kwargs)``: the metadata is
``--model_args`` merged with ``--metadata``; ``dataset_kwargs`` in each task
YAML names the family and length. Returns ``{"test": Dataset}``.

>>> import tempfile; folder = tempfile.mkdtemp()
>>> # build_tokenizer(kind): an offline test tokenizer, given by tests/test_doctests.py
>>> _ = build_tokenizer("char").save_pretrained(folder)
>>> ds = build(family="passkey", length=1024, tokenizer=folder, num_samples=3)["test"]
>>> len(ds), ds[0]["family"]
(3, 'passkey')
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

from lc_tasks.doc_cache import DocCache, cache_root, tokenizer_fingerprint
from lc_tasks.families import pair_task_name, task_name
from lc_tasks.generators import VERSION, generate
from lc_tasks.haystack import read_text_file
from lc_tasks.options import seed_option, task_spec
from lc_tasks.tokenizer import resolve_tokenizer

__all__ = ["build", "docs"]

# A child of lm-eval's logger, so that lm-eval's CLI shows our messages in its format.
log = logging.getLogger("lm_eval.lc_tasks")


class _NotForOurTasks(logging.Filter):
    """Drops lm-eval's hint about RULER's ``max_seq_lengths``, which it prints for every task
    with a ``custom_dataset`` (ours too) and which means nothing for ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith("lc_") and "max_seq_lengths" in message)


# lm-eval imports this module when it reads our task YAMLs, before it would print the hint
logging.getLogger("lm_eval.api.task").addFilter(_NotForOurTasks())


def docs(family: str, length: int, **options: Any) -> list[dict]:
    """The docs of ``lc_<family>_<length>`` for the given options (see ``lc_tasks.options``),
    from lc-eval's doc cache where it has them (``lc_tasks.doc_cache``)."""
    spec = task_spec(family, length, **options)
    pairs = options.get("sweep_pairs")
    name = task_name(family, spec.length) if pairs is None else pair_task_name(spec.length,
                                                                               int(pairs))
    tokenizer = resolve_tokenizer(options, name)
    seed = seed_option(options)
    cache = _cache(spec, seed, tokenizer)
    out = generate(spec, tokenizer, seed=seed, progress=True, cache=cache)
    if cache is not None:
        log.info("%s: %d docs from the doc cache, %d built (%s)", name, cache.hits, cache.built,
                 cache.folder)
    return out


def _cache(spec, seed: int, tokenizer) -> DocCache | None:
    """The doc cache of this build: everything a doc depends on, except the doc count."""
    root = cache_root()
    if root is None:
        return None
    key = {f.name: getattr(spec, f.name) for f in fields(spec) if f.name != "num_samples"}
    key["params"] = dict(spec.params)
    key["chat_template_args"] = dict(spec.chat_template_args)
    if spec.chat_template:  # the template's text: the same tokenizer may carry another one
        key["chat_template"] = str(tokenizer.chat_template)
    if spec.haystack and spec.haystack not in ("noise", "prose") and not spec.haystack.startswith(
            "hf:"):  # a file: its content, not its path
        key["haystack"] = hashlib.sha256(read_text_file(spec.haystack).encode()).hexdigest()
    if spec.qa_source and not spec.qa_source.startswith("hf:"):  # the QA file's content
        key["qa_source"] = hashlib.sha256(Path(spec.qa_source).expanduser().read_bytes()
                                          ).hexdigest()
    key.update(seed=seed, generator=VERSION, tokenizer=tokenizer_fingerprint(tokenizer))
    return DocCache(root, key)


def build(*, family: str, length: int, **options: Any) -> dict:
    """``{"test": datasets.Dataset}`` of the task's docs."""
    import datasets

    return {"test": datasets.Dataset.from_list(docs(family, length, **options))}
