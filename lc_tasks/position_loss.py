"""``lc_ppl``'s lm-eval task class: one loglikelihood request per position bucket of a doc.

A YAML task gives one request per doc (or one per choice, all with the same context); a doc
of ``lc_ppl`` needs one request per bucket, each with its own context (the document before
the bucket). This class is the YAML task (``class: !function lc_tasks.position_loss.
PositionLossTask`` beside the usual keys) with only that changed, so lm-eval's scoring hook
receives every bucket's ``(loglikelihood, is_greedy)`` of a doc together.
"""

from __future__ import annotations

from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from lc_tasks.generators.ppl import bucket_requests

__all__ = ["PositionLossTask"]


class PositionLossTask(ConfigurableTask):
    """A ``ConfigurableTask`` whose docs each make one loglikelihood request per bucket."""

    def __init__(self, config: dict | None = None, **kwargs):
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        super().__init__(config=config, **kwargs)

    def construct_requests(self, doc: dict, ctx, **kwargs) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)  # a document is scored as it is
        kwargs.pop("chat_template", None)
        return [
            Instance(request_type="loglikelihood", doc=doc, arguments=pair, idx=i, **kwargs)
            for i, pair in enumerate(bucket_requests(doc))
        ]
