"""Max logit error of chunked prefill against one full forward pass, per architecture.

Two ways of feeding a sequence in chunks through a tiny random fp32 model of each
architecture in ``lc_models.zoo.tiny.TINY_CONFIGS``:

* ``transformers``: the model's own cached forward, as a user would call it
  (``model(chunk, cache=cache, use_cache=True)``, positions left to the model;
  RWKV with its ``state`` list);
* ``lc_hf``: the runner lc_hf uses (``lc_models.hf_runners.runner_for``).

The native checkpoints only lc_hf loads (``lc_models.zoo.tiny_native``: mamba_ssm Mamba2-Attn,
Transformer++ and an every-field hybrid; RWKV-6 and RWKV-7) have no transformers class, so only the
``lc_hf`` column is measured for them, against the same model's single full forward.

Usage: ``python benchmarks/chunked_vs_full.py [--tokens 256] [--out benchmarks/out/...]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

CHUNK_SIZES = (1, 7, 16, 64)


def transformers_chunked(model, ids, chunk):
    """Logits of ``ids`` fed ``chunk`` tokens at a time through the model's own cache."""
    from transformers import DynamicCache

    pieces, state = [], None
    # the model's own cache class where it has one; models that do not return theirs fill it
    kind = model.config.model_type
    if kind == "xlstm":
        from transformers.models.xlstm.modeling_xlstm import xLSTMCache

        cache = xLSTMCache(model.config, ids.shape[0], dtype=model.dtype)
    elif kind == "minimax":
        from transformers.models.minimax.modeling_minimax import MiniMaxCache

        cache = MiniMaxCache()
    else:
        cache = DynamicCache(config=model.config)
    for start in range(0, ids.shape[1], chunk):
        piece = ids[:, start : start + chunk]
        if model.config.model_type == "rwkv":
            out = model(piece, state=state, use_cache=True)
            state = out.state
        else:
            out = model(piece, cache=cache, use_cache=True)
            cache = getattr(out, "cache", None) or cache
        pieces.append(out.logits)
    return torch.cat(pieces, 1)


def runner_chunked(runner, ids, chunk):
    pieces, state = [], runner.new_state(1)
    for start in range(0, ids.shape[1], chunk):
        logits, state = runner.prefill(ids[:, start : start + chunk], state)
        pieces.append(logits)
    return torch.cat(pieces, 1)


@torch.no_grad()
def measure(arch: str, tokens: int) -> dict:
    from transformers import AutoModelForCausalLM

    from lc_models.hf_runners import runner_for
    from lc_models.zoo.tiny import save_tiny_model

    with tempfile.TemporaryDirectory() as folder:
        save_tiny_model(folder, arch)
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        vocab = model.config.vocab_size
        ids = torch.randint(4, vocab, (1, tokens), generator=torch.Generator().manual_seed(0))
        full = model(ids).logits
        row = {"arch": arch}
        for chunk in CHUNK_SIZES:
            row[f"transformers_{chunk}"] = (
                (transformers_chunked(model, ids, chunk) - full).abs().max().item()
            )
        runner = runner_for(model)  # patches the model where it needs a fix
        for chunk in CHUNK_SIZES:
            row[f"lc_hf_{chunk}"] = (runner_chunked(runner, ids, chunk) - full).abs().max().item()
    return row


NATIVE = ("mamba2attn", "transformerpp", "every_field", "rwkv6", "rwkv7")


@torch.no_grad()
def measure_native(kind: str, tokens: int) -> dict:
    from lc_models import models
    from lc_models.hf_runners import runner_for
    from lc_models.zoo.tiny_native import MAMBA_SSM_CONFIGS, save_mamba_ssm, save_rwkv6, save_rwkv7

    with tempfile.TemporaryDirectory() as folder:
        if kind in ("rwkv6", "rwkv7"):
            save = save_rwkv6 if kind == "rwkv6" else save_rwkv7
            path = save(Path(folder) / "model.pth", vocab_size=512)
        else:
            save_mamba_ssm(folder, MAMBA_SSM_CONFIGS[kind], vocab_size=512)
            path = folder
        model = models.find(path).load(dtype=torch.float32)
    ids = torch.randint(4, 512, (1, tokens), generator=torch.Generator().manual_seed(0))
    full = model(ids).logits
    runner = runner_for(model)
    row = {"arch": kind}
    for chunk in CHUNK_SIZES:
        row[f"lc_hf_{chunk}"] = (runner_chunked(runner, ids, chunk) - full).abs().max().item()
    return row


def main() -> None:
    from lc_models.zoo.tiny import TINY_CONFIGS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--out", default="benchmarks/out/chunked_vs_full.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [measure(arch, args.tokens) for arch in TINY_CONFIGS]
    rows += [measure_native(kind, args.tokens) for kind in NATIVE]
    print(
        "| architecture | transformers, chunks of 16 | transformers, max over {1,7,16,64} "
        "| lc_hf, max over {1,7,16,64} |"
    )
    print("| --- | --- | --- | --- |")
    for row in rows:
        after = max(row[f"lc_hf_{c}"] for c in CHUNK_SIZES)
        if "transformers_16" not in row:  # no transformers class
            print(f"| {row['arch']} | - | - | {after:.1e} |")
            continue
        before = max(row[f"transformers_{c}"] for c in CHUNK_SIZES)
        print(f"| {row['arch']} | {row['transformers_16']:.1e} | {before:.1e} | {after:.1e} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"tokens": args.tokens, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
