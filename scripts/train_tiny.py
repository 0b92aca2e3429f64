"""Train the bundled tiny models (``lc_models/zoo``) on CPU, from scratch, reproducibly.

Each model learns two of our own tasks, ``lc_passkey`` and ``lc_niah_single``,
from docs made by ``lc_tasks.generators`` at lengths up to the training length
T = 1024 tokens (prompt + answer), so that ``lc_*_1k`` is its training length
and ``lc_*_2k`` and beyond measure extrapolation. Training docs use seeds the
evaluation (seed 42) never uses.

The tokenizer is byte-level BPE (lossless on any text; digits are single
tokens) trained on generator output, built here and shared by every model.

Usage::

    python scripts/train_tiny.py                       # all models into lc_models/zoo
    python scripts/train_tiny.py --models tiny-llama --out /tmp/zoo

Reproducible: fixed seeds and a fixed thread count (``--threads``, default 1);
the same command on the same torch build writes the same weights.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lc_tasks.families import FAMILIES
from lc_tasks.generators import generate
from lc_tasks.options import task_spec

TRAINING_LENGTH = 1024
FAMILIES_TRAINED = ("passkey", "niah_single")
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
VOCAB_SIZE = 512
TRAIN_SEED = 1_000  # generator seeds start here; evaluation uses 42
ZOO = Path(__file__).resolve().parent.parent / "lc_models" / "zoo"


# ------------------------------------------------------------------ tokenizer
def build_tokenizer(seed: int = 0):
    """Byte-level BPE with single-digit tokens, trained on docs of every family."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from lc_models.zoo.tiny import build_tokenizer as tiny_tokenizer

    char = tiny_tokenizer("char")  # sizes the corpus docs; any lossless tokenizer would do
    corpus = []
    for family in FAMILIES:
        for doc in generate(task_spec(family, 2048, num_samples=4), char, seed=seed):
            corpus.append(doc["input"] + " " + ", ".join(doc["outputs"]) + ".")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        unk_token="<unk>", model_max_length=TRAINING_LENGTH,
    )


# ------------------------------------------------------------------ models
def _llama(vocab: int, **ids):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab, hidden_size=128, intermediate_size=256, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=TRAINING_LENGTH,
        tie_word_embeddings=False, **ids,
    )


def _mamba2(vocab: int, **ids):
    from transformers import Mamba2Config

    return Mamba2Config(
        vocab_size=vocab, hidden_size=128, num_hidden_layers=3, expand=2, head_dim=16,
        num_heads=16, n_groups=1, state_size=64, conv_kernel=4, chunk_size=64,
        tie_word_embeddings=False, **ids,
    )


@dataclass(frozen=True)
class Recipe:
    """How one bundled model is built and trained, in two phases.

    1. *learn*: docs of 160..``short`` tokens, constant learning rate (after a 100-step
       warm-up), until the greedy exact match over the last 50 steps reaches ``learned``
       (retrieval is learnt suddenly, after a plateau whose length varies), or
       ``learn_max`` steps;
    2. *grow*: ``grow_steps`` steps in which the longest doc grows linearly to the training
       length over the first two thirds, the learning rate decaying (cosine) to a tenth.
    """

    config: object  # f(vocab, **special token ids) -> transformers config
    batch: int = 16
    lr: float = 2e-3
    lm_weight: float = 0.1  # weight of the loss on other prompt tokens; answers weigh 1
    digit_weight: float = 1.0  # extra weight on digits inside the prompt (the needle's repeat)
    short: int = 256
    learned: float = 0.8
    learn_max: int = 3000
    grow_steps: int = 600


RECIPES: dict[str, Recipe] = {
    "tiny-llama": Recipe(_llama),
    "tiny-mamba2": Recipe(_mamba2, lr=3e-3),
}


# ------------------------------------------------------------------ data
def answer_text(doc: dict) -> str:
    """What follows the prompt: a space (lm-eval's target delimiter), the answer, a period."""
    return " " + ", ".join(doc["outputs"]) + "."


def make_batch(tok, family: str, seed: int, size: int, longest: int, rng: random.Random,
               shortest: int | None = None):
    """``(ids, real, is_answer)``, each (size, T): ``size`` docs of ``family`` (generator
    seed ``seed``), all of about one total length (prompt + answer) drawn from
    [shortest, longest]; ``shortest`` defaults to max(160, longest / 2)."""
    longest = max(160, longest)
    total = rng.randint(shortest or max(160, longest // 2), longest)
    gen_room = FAMILIES[family].max_gen_toks
    spec = task_spec(family, total - 12 + gen_room, num_samples=size, depths=21)
    docs = generate(spec, tok, seed=seed)
    rows, marks = [], []
    for doc in docs:
        prompt = tok(doc["input"]).input_ids
        answer = tok(answer_text(doc)).input_ids + [tok.eos_token_id]
        rows.append(prompt + answer)
        marks.append([0] * len(prompt) + [1] * len(answer))
    width = max(map(len, rows))
    ids = torch.full((size, width), tok.pad_token_id)
    is_answer = torch.zeros((size, width), dtype=torch.bool)
    real = torch.zeros((size, width), dtype=torch.bool)
    for i, (row, mark) in enumerate(zip(rows, marks)):
        ids[i, : len(row)] = torch.tensor(row)
        is_answer[i, : len(row)] = torch.tensor(mark, dtype=torch.bool)
        real[i, : len(row)] = True
    return ids, real, is_answer


def digit_ids(tok) -> torch.Tensor:
    return torch.tensor([tok.convert_tokens_to_ids(str(d)) for d in range(10)])


def batch_loss(model, ids, real, is_answer, lm_weight: float, digits=None, digit_weight=0.0):
    """Weighted mean CE: answer tokens weigh 1, other prompt tokens ``lm_weight``, prompt
    digits ``lm_weight + digit_weight``. Also returns the fraction of docs whose every
    answer token is the argmax (greedy exact match, teacher-forced)."""
    logits = model(input_ids=ids).logits[:, :-1].float()  # (B, T-1, V)
    target = ids[:, 1:]
    ce = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), target, reduction="none"
    )  # (B, T-1)
    ans = is_answer[:, 1:]
    prompt = real[:, 1:] & ~ans
    weight = ans.float() + lm_weight * prompt.float()
    if digits is not None and digit_weight:
        weight = weight + digit_weight * (prompt & torch.isin(target, digits)).float()
    loss = (ce * weight).sum() / weight.sum()
    hit = (logits.argmax(-1) == target) | ~ans
    exact = hit.all(-1).float().mean()
    return loss, float(exact)


def learn_lr(step: int, peak: float) -> float:
    """Phase 1: linear warm-up over 100 steps, then ``peak``."""
    return peak * min(1.0, (step + 1) / 100)


def grow_at(recipe: Recipe, step: int) -> tuple[float, int]:
    """Phase 2 at ``step``: (learning rate, longest doc)."""
    progress = step / recipe.grow_steps
    lr = recipe.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    longest = recipe.short + (TRAINING_LENGTH - recipe.short) * min(1.0, 1.5 * progress)
    return lr, int(longest)


# ------------------------------------------------------------------ training
def train(name: str, recipe: Recipe, tok, seed: int):
    """Train one model from scratch; returns (model, parameter count, seconds, phase-1 steps)."""
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = recipe.config(
        len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01)
    rng = random.Random(seed)
    digits = digit_ids(tok)
    start = time.time()
    recent: list[float] = []

    def step_once(step: int, lr: float, longest: int) -> None:
        nonlocal recent
        family = FAMILIES_TRAINED[step % len(FAMILIES_TRAINED)]  # alternate families
        ids, real, is_answer = make_batch(tok, family, TRAIN_SEED + step, recipe.batch,
                                          longest, rng)
        for group in opt.param_groups:
            group["lr"] = lr
        loss, exact = batch_loss(model, ids, real, is_answer, recipe.lm_weight, digits,
                                 recipe.digit_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        recent = (recent + [exact])[-50:]
        bar.set_postfix(loss=f"{float(loss):.3f}", exact=f"{sum(recent) / len(recent):.2f}",
                        T=ids.shape[1])

    bar = tqdm(total=recipe.learn_max, desc=f"{name} ({params / 1e6:.2f}M params) learn",
               unit="step")
    learn_steps = 0
    while learn_steps < recipe.learn_max:
        step_once(learn_steps, learn_lr(learn_steps, recipe.lr), recipe.short)
        learn_steps += 1
        bar.update()
        if len(recent) == 50 and sum(recent) / 50 >= recipe.learned:
            break
    bar.close()
    if learn_steps == recipe.learn_max:
        print(f"warning: {name} did not reach exact {recipe.learned} in {learn_steps} steps "
              "on short docs; growing anyway", file=sys.stderr)
    bar = tqdm(range(recipe.grow_steps), desc=f"{name} grow to {TRAINING_LENGTH}", unit="step")
    for step in bar:
        lr, longest = grow_at(recipe, step)
        step_once(learn_steps + step, lr, longest)
    return model, params, time.time() - start, learn_steps


def evaluate(model, tok, n: int = 32) -> dict[str, float]:
    """Greedy exact match of the answer (teacher-forced argmax) at the training length."""
    model.eval()
    out = {}
    with torch.no_grad():
        for k, family in enumerate(FAMILIES_TRAINED):
            hits = []
            for first in range(0, n, 8):
                ids, real, is_answer = make_batch(tok, family, TRAIN_SEED + 10**9 + 2 * first + k,
                                                  8, TRAINING_LENGTH, random.Random(first),
                                                  TRAINING_LENGTH)
                hits.append(batch_loss(model, ids, real, is_answer, 0.0)[1])
            out[family] = sum(hits) / len(hits)
    model.train()
    return out


def save(model, tok, path: Path, name: str, params: int, seconds: float, seed: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    model.config.lc_eval_training_length = TRAINING_LENGTH
    model.config.lc_eval_trained = {
        "script": "scripts/train_tiny.py", "name": name, "seed": seed,
        "families": list(FAMILIES_TRAINED), "params": params,
        "train_seconds": round(seconds), "torch": torch.__version__,
    }
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(RECIPES),
                        help=f"comma-separated, from {', '.join(RECIPES)}")
    parser.add_argument("--out", type=Path, default=ZOO, help="folder of the model folders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (fixed: results "
                        "depend on it)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown model {unknown[0]!r}; choose from {', '.join(RECIPES)}")
    tok = build_tokenizer(args.seed)
    for name in names:
        model, params, seconds, learn_steps = train(name, RECIPES[name], tok, args.seed)
        scores = evaluate(model, tok)
        save(model, tok, args.out / name, name, params, seconds, args.seed)
        print(json.dumps({"model": name, "params": params, "train_seconds": round(seconds),
                          "learn_steps": learn_steps, "exact_at_1k": scores}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
