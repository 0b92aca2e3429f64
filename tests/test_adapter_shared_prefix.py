"""Requests that share a prefix are served by one pass, with the numbers of separate passes.

``lc_ppl`` sends one loglikelihood request per position bucket of a document, each with the
whole document before it as context; ``lc_hf`` plans them into one pass
(``lc_models.shared_prefix``). Checked here against lm-eval's stock ``hf`` on the same tiny
random models, and by counting the tokens the model is fed.
"""

from __future__ import annotations

import pytest
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from test_adapter_batching import RecordingRunner
from transformers import AutoTokenizer

from lc_models.adapter import LongContextLM
from lc_models.shared_prefix import plan_passes
from lc_tasks.generators import generate
from lc_tasks.generators.ppl import bucket_requests
from lc_tasks.options import task_spec

ARCHS = ["llama", "mamba2", "recurrent_gemma", "rwkv"]


def test_plan_serves_every_request_exactly_once():
    doc = tuple(range(100, 140))
    chain = [(doc[:a], doc[a:b]) for a, b in ((1, 8), (8, 16), (16, 32), (32, 40))]
    choices = [((5, 6, 7), (8,)), ((5, 6, 7), (9, 10)), ((5, 6, 7), (8,))]  # one repeated
    apart = [((1, 2), (3,)), ((1, 2, 3, 4), (5,))]  # a prefix, but not a context of another
    requests = chain + choices + apart
    passes = plan_passes(requests)
    served = sorted(i for p in passes for i in p.branches + p.riders)
    assert served == list(range(len(requests)))
    by_context = {p.context: p for p in passes}
    assert by_context[doc[:32]].riders == [2, 1, 0] and by_context[doc[:32]].branches == [3]
    assert by_context[(5, 6, 7)].branches == [4, 5, 6] and (1, 2) in by_context
    for p in passes:
        for i in p.riders:
            context, continuation = requests[i]
            assert (context + continuation) == p.context[: len(context) + len(continuation)]


def _bucket_instances(path, length, docs=2):
    tok = AutoTokenizer.from_pretrained(path)
    spec = task_spec("ppl", length, num_samples=docs, haystack="noise")
    pairs = [pair for doc in generate(spec, tok) for pair in bucket_requests(doc)]
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


@pytest.mark.parametrize("arch", ARCHS)
def test_buckets_equal_stock_hf(arch, tiny_model):
    path = str(tiny_model(arch, tie_word_embeddings=False))
    requests = _bucket_instances(path, 2048)
    stock = HFLM(pretrained=path, batch_size=1, device="cpu", dtype="float32")
    want = stock.loglikelihood(requests, disable_tqdm=True)
    tok = stock.tokenizer
    for batch_size, chunk in ((1, 256), (3, 97)):
        lm = LongContextLM(pretrained=path, chunk_size=chunk, batch_size=batch_size,
                           device="cpu", dtype="float32")
        got = lm.loglikelihood(requests, disable_tqdm=True)
        for (a, ga), (b, gb), req in zip(got, want, requests):
            n = len(tok(req.args[1], add_special_tokens=False)["input_ids"])
            assert abs(a - b) <= 1e-4 * max(1.0, abs(b)), f"{arch} bs={batch_size}: {a} vs {b}"
            assert abs(a - b) / n <= 1e-5, f"{arch}: per-token difference over {n} tokens"
            assert ga == gb


def test_the_buckets_of_a_document_are_one_pass(tiny_model):
    path = str(tiny_model("mamba2"))
    requests = _bucket_instances(path, 4096, docs=1)
    assert len(requests) == 3  # buckets 0-1k, 1k-2k, 2k-4k
    lm = LongContextLM(pretrained=path, chunk_size=512, device="cpu", dtype="float32")
    lm.runner = recorder = RecordingRunner(lm.runner)
    lm.loglikelihood(requests, disable_tqdm=True)
    context, continuation = lm.tok_encode(requests[-1].args[0]), lm.tok_encode(
        requests[-1].args[0] + requests[-1].args[1])
    fed = sum(len(chunk[0]) for _, chunk in recorder.calls)
    assert fed == len(continuation) - 1, "one pass over the document, each token fed once"
    assert len(recorder.calls) == -(-(len(context) - 1) // 512) + -(-(len(continuation) - len(
        context)) // 512), "forward calls: the chunks of one pass"
    separate = sum(len(lm.tok_encode(r.args[0] + r.args[1])) - 1 for r in requests)
    assert separate > 1.7 * fed, "separate passes would feed the prefixes again"
