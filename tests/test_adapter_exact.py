"""lc_hf computes what one full forward pass computes, for every architecture and chunk size.

For each tiny random architecture and chunk sizes {1, 7, 16, 64} (contexts of ~270
tokens, so 4 to 270 chunk boundaries, and decoding continues after them):
* loglikelihoods equal lm-eval's stock ``hf`` model (one full forward per request); for the
  native checkpoints that only lc_hf loads (mamba_ssm hybrids, RWKV-6), lm-eval's ``hf``
  scoring runs on the same model object's single full forward;
* loglikelihood_rolling equals one full forward pass over the whole document;
* greedy generations equal greedy decoding by full recomputation (no cache at all).
"""

from __future__ import annotations

import pytest
import torch
from conftest import NATIVE_KINDS
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import postprocess_generated_text

from lc_models import models
from lc_models.adapter import LongContextLM
from lc_models.zoo.tiny import TINY_CONFIGS

ARCHS = [*sorted(TINY_CONFIGS), *NATIVE_KINDS]
CHUNK_SIZES = [1, 7, 16, 64]
TOLERANCE = 1e-4  # fp32

CONTEXT = (
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
    "it. The grass is green. The sky is blue. The sun is yellow. Here we go. There and back "
    "again. One of the special magic numbers for the key is: 1234567. What is the special "
    "magic number? VAR ABCDE = 12345. VAR FGHIJ = VAR ABCDE. The pass key is"
)
LOGLIKELIHOOD = [
    (CONTEXT, " 98765."),
    (CONTEXT, " 1234567, remember it."),
    (CONTEXT, " green"),
    (CONTEXT[:100], " Find all variables."),
    ("", "hello world"),
]
DOCUMENTS = [CONTEXT + " 98765. Remember it. 98765 is the pass key.", "Below is a list."]
GENERATIONS = [
    (CONTEXT, {"until": ["\n\n"], "max_gen_toks": 12}),
    (CONTEXT[:90], {"until": ["."], "max_gen_toks": 9, "do_sample": False}),
]



def instances(kind, args_list):
    return [Instance(kind, {}, args, i) for i, args in enumerate(args_list)]


def full_rolling(hf: HFLM, text: str) -> float:
    """Log-likelihood of ``text`` from one forward pass over [prefix] + tokens."""
    tokens = hf.tok_encode(text)
    ids = torch.tensor([[hf.prefix_token_id, *tokens[:-1]]])
    with torch.no_grad():
        logprobs = hf.model(ids).logits.float().log_softmax(-1)[0]
    # summed in float64: a float32 sum of ~300 terms is itself off by ~1e-4
    return float(logprobs[torch.arange(len(tokens)), torch.tensor(tokens)].double().sum())


def greedy_by_recomputation(hf: HFLM, prompt: str, gen_kwargs: dict) -> str:
    """Greedy decoding that reruns the whole sequence for every new token."""
    ids = hf.tok_batch_encode([prompt])[0][0].tolist()
    eos = hf.tok_decode(hf.eot_token_id, skip_special_tokens=False)
    until = [*gen_kwargs["until"], eos]
    generated: list[int] = []
    with torch.no_grad():
        for _ in range(gen_kwargs["max_gen_toks"]):
            logits = hf.model(torch.tensor([ids + generated])).logits[0, -1]
            generated.append(int(logits.argmax()))
            text = hf.tokenizer.decode(generated)
            if generated[-1] == hf.eot_token_id or any(s in text for s in until):
                break
    return postprocess_generated_text(hf.tok_decode(generated), until, None)


def stock_hf(arch, tiny_model, native_model, dtype="float32"):
    """(pretrained, tokenizer, lm-eval's HFLM over the same model's full forward)."""
    if arch not in NATIVE_KINDS:
        # untied embeddings: with tied ones several tiny models just repeat their input
        # token, and generation would not depend on the carried state at all
        path = tiny_model(arch, tie_word_embeddings=False)
        return path, None, HFLM(pretrained=str(path), device="cpu", max_length=4096,
                                dtype=dtype)
    path, tokenizer = native_model(arch)
    model = models.find(path).load(dtype=getattr(torch, dtype))
    tok = models.special_tokenizer(tokenizer or models.tokenizer_for(path))
    if tok is None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)
    return path, tokenizer, HFLM(pretrained=model, tokenizer=tok, max_length=4096)


@pytest.fixture(scope="module")
def reference(tiny_model, native_model):
    """reference(arch) -> (checkpoint, tokenizer, hf loglikelihoods, full-pass rolling, greedy)."""
    cache = {}

    def get(arch):
        if arch not in cache:
            path, tokenizer, hf = stock_hf(arch, tiny_model, native_model)
            cache[arch] = (
                (path, tokenizer),
                hf.loglikelihood(instances("loglikelihood", LOGLIKELIHOOD), disable_tqdm=True),
                [full_rolling(hf, doc) for doc in DOCUMENTS],
                [greedy_by_recomputation(hf, p, kw) for p, kw in GENERATIONS],
            )
        return cache[arch]

    return get


@pytest.fixture(scope="module")
def lc_model():
    """lc_model(path, chunk_size, batch_size) -> LongContextLM, cached per module."""
    cache = {}

    def get(checkpoint, chunk_size, batch_size=2):
        path, tokenizer = checkpoint
        key = (str(path), chunk_size, batch_size)
        if key not in cache:
            cache[key] = LongContextLM(
                pretrained=str(path), tokenizer=tokenizer, chunk_size=chunk_size,
                batch_size=batch_size, device="cpu", dtype="float32",
            )
        return cache[key]

    return get


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES, ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("arch", ARCHS)
def test_loglikelihood_matches_stock_hf(arch, chunk_size, reference, lc_model):
    path, expected, _, _ = reference(arch)
    got = lc_model(path, chunk_size).loglikelihood(
        instances("loglikelihood", LOGLIKELIHOOD), disable_tqdm=True
    )
    for (ctx, cont), (want, want_greedy), (have, have_greedy) in zip(LOGLIKELIHOOD, expected, got):
        assert abs(have - want) <= TOLERANCE, f"{arch} chunk {chunk_size} {cont!r}: {have} != {want}"
        assert have_greedy == want_greedy, f"{arch} chunk {chunk_size} {cont!r}: is_greedy differs"


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES, ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("arch", ARCHS)
def test_rolling_matches_one_full_pass(arch, chunk_size, reference, lc_model):
    path, _, expected, _ = reference(arch)
    got = lc_model(path, chunk_size).loglikelihood_rolling(
        instances("loglikelihood_rolling", [(d,) for d in DOCUMENTS]), disable_tqdm=True
    )
    for want, have in zip(expected, got):
        assert abs(have - want) <= TOLERANCE, f"{arch} chunk {chunk_size}: {have} != {want}"


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES, ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_generation_matches_full_recomputation(arch, chunk_size, reference, lc_model):
    path, _, _, expected = reference(arch)
    got = lc_model(path, chunk_size).generate_until(
        instances("generate_until", GENERATIONS), disable_tqdm=True
    )
    assert got == expected, f"{arch} chunk {chunk_size}"
