"""lm-eval's entry point: ``custom_dataset: !function lc_tasks.dataset.build``.

lm-eval calls ``build(**metadata, **dataset_kwargs)``: the metadata is
``--model_args`` merged with ``--metadata``; ``dataset_kwargs`` in each task
YAML names the family and length. Returns ``{"test": Dataset}``.

>>> from lc_models.tiny import build_tokenizer
>>> import tempfile; folder = tempfile.mkdtemp()
>>> _ = build_tokenizer("char").save_pretrained(folder)
>>> ds = build(family="passkey", length=1024, tokenizer=folder, num_samples=3)["test"]
>>> len(ds), ds[0]["family"]
(3, 'passkey')
"""

from __future__ import annotations

from typing import Any

from lc_tasks.families import task_name
from lc_tasks.generators import generate
from lc_tasks.options import seed_option, task_spec
from lc_tasks.tokenizer import resolve_tokenizer

__all__ = ["build", "docs"]


def docs(family: str, length: int, **options: Any) -> list[dict]:
    """The docs of ``lc_<family>_<length>`` for the given options (see ``lc_tasks.options``)."""
    spec = task_spec(family, length, **options)
    tokenizer = resolve_tokenizer(options, task_name(family, spec.length))
    return generate(spec, tokenizer, seed=seed_option(options), progress=True)


def build(*, family: str, length: int, **options: Any) -> dict:
    """``{"test": datasets.Dataset}`` of the task's docs."""
    import datasets

    return {"test": datasets.Dataset.from_list(docs(family, length, **options))}
