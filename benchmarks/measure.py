"""One benchmark measurement in this process; prints one JSON line (the last line of stdout).

Run by ``bench_prefill.py``, one process per measurement, so that the peak RSS it reports
(``ru_maxrss``) belongs to that measurement alone. Modes::

    measure.py build CONFIG PATH                 # save a random-weight checkpoint (a real
                                                 # model: print its .gguf path)
    measure.py gemm                              # torch fp32 matmul GFLOP/s
    measure.py loglikelihood MODEL PATH TOKENS   # one request of TOKENS tokens
    measure.py generate MODEL PATH TOKENS        # generate_until on a passkey prompt

MODEL is an lm-eval model name (``hf``, ``lc_hf``), or ``rwkv_pkg``: BlinkDL's ``rwkv``
package (``RWKV(..., "cpu fp32")``) on a native RWKV-6 or RWKV-7 ``.pth`` (``RWKV_V7_ON=1`` set
for x070 files before it is imported), the same request scored from its state (loglikelihood
only). ``--model_args`` adds to an lm-eval model's arguments. PATH may be a real model's
``.gguf`` file; its requests are then measured with its own tokenizer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from configs import build_checkpoint, loglikelihood_request, passkey_prompt
from roofline import attention_flops

WARMUP_TOKENS = 256


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def gemm_rate(seconds: float = 1.0) -> dict:
    """Best fp32 matmul rate over a few shapes a 768-wide model runs (GFLOP/s), through each
    GEMM torch has on the CPU: its default (MKL, ``a @ b``) and oneDNN (what lc_hf's linear
    layers use where it is faster, ``lc_models.ops.linear``). The roofline is the faster:
    MKL runs AVX2 code on AMD CPUs, so on an AVX-512 AMD machine oneDNN's rate is the
    machine's."""
    import torch

    from lc_models.ops.linear import linear

    shapes = {"2048x768x3072": (2048, 768, 3072), "2048x1536x768": (2048, 1536, 768),
              "2048x2048x2048": (2048, 2048, 2048)}
    backends = {"torch": lambda a, w: a @ w.t(), "onednn": linear}
    rates: dict[str, dict[str, float]] = {name: {} for name in backends}
    for shape, (m, k, n) in shapes.items():
        a, w = torch.randn(m, k), torch.randn(n, k)
        for name, fn in backends.items():
            try:
                fn(a, w)  # warm up
            except RuntimeError:  # no oneDNN in this build
                continue
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                fn(a, w)
                count += 1
            rates[name][shape] = 2 * m * k * n * count / (time.perf_counter() - start) / 1e9
    best = {name: max(r.values()) for name, r in rates.items() if r}
    return {"gemm_gflops": max(best.values()), "gemm_by_backend": best,
            "gemm_by_shape": rates, "threads": torch.get_num_threads()}


def load_lm(model: str, path: str, n_tokens: int, model_args: str):
    from lm_eval.api.registry import get_model

    import lc_models  # noqa: F401  (registers lc_hf)

    where = Path(path)
    if where.suffix == ".gguf":  # a real model: stock hf's form for a GGUF checkpoint
        args = f"pretrained={where.parent},gguf_file={where.name},device=cpu,dtype=float32"
    else:
        args = f"pretrained={path},device=cpu,dtype=float32"
    if (where / "tokenizer").is_dir():  # a native checkpoint, saved with the char tokenizer
        args += f",tokenizer={where / 'tokenizer'}"
    if model == "hf":  # stock hf would left-truncate at the config's length otherwise
        args += f",max_length={n_tokens + 64}"
    if model_args:
        args += "," + model_args
    return get_model(model).create_from_arg_string(args, {"batch_size": 1})


def n_params(lm) -> tuple[int, int]:
    """(all parameters, those outside the input embedding and the output head); tied weights
    count once. The second is what a prefill token multiplies by: the embedding is a lookup
    and the head runs only where logits are needed."""
    model = lm.model
    io = {p.data_ptr() for m in (model.get_input_embeddings(), model.get_output_embeddings())
          if m is not None for p in m.parameters()}
    seen, total, body = set(), 0, 0
    for p in model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel()
            body += 0 if p.data_ptr() in io else p.numel()
    return total, body


class RwkvPackage:
    """BlinkDL's ``rwkv`` package as a loglikelihood scorer, tokenized like lm-eval does.

    The context is prefilled without logits (its last position's only), then the continuation
    with ``full_output``: what a user of the package computes for one request.
    """

    def __init__(self, path: str):
        import torch
        from transformers import AutoTokenizer

        (pth,) = Path(path).glob("*.pth")
        v7 = "blocks.0.att.r_k" in torch.load(pth, weights_only=True, mmap=True)
        if v7:
            os.environ["RWKV_V7_ON"] = "1"  # read when rwkv.model is imported
        from rwkv.model import RWKV

        quiet = {} if v7 else {"verbose": False}  # RWKV_x070 takes no verbose
        self.model = RWKV(model=str(pth)[: -len(".pth")], strategy="cpu fp32", **quiet)
        self.tok = AutoTokenizer.from_pretrained(str(Path(path) / "tokenizer"))

    def loglikelihood(self, instances, disable_tqdm=True):
        import torch

        out = []
        for inst in instances:
            context, continuation = inst.args
            spaces = len(context) - len(context.rstrip())  # as lm-eval's _encode_pair does
            if spaces:
                context, continuation = context[:-spaces], context[-spaces:] + continuation
            ctx = self.tok(context, add_special_tokens=False)["input_ids"]
            cont = self.tok(continuation, add_special_tokens=False)["input_ids"]
            last, state = self.model.forward(ctx, None)  # (vocab,) after the context
            rest, _ = self.model.forward(cont[:-1], state, full_output=True)  # (n - 1, vocab)
            logits = torch.cat([last.reshape(1, -1), rest.reshape(len(cont) - 1, -1)])
            logprobs = logits.float().log_softmax(-1)[torch.arange(len(cont)), torch.tensor(cont)]
            out.append((float(logprobs.double().sum()), False))
        return out

    def n_params(self) -> tuple[int, int]:
        w = getattr(self.model, "w", None) or self.model.z  # x060, x070
        total = sum(t.numel() for k, t in w.items())
        return total, total - w["emb.weight"].numel() - w["head.weight"].numel()


def run_request(mode: str, model: str, path: str, n_tokens: int, model_args: str,
                warmup: int = WARMUP_TOKENS) -> dict:
    import torch
    from lm_eval.api.instance import Instance

    tok = None  # the char tokenizer: n characters are n tokens

    def request(n):
        if mode == "loglikelihood":
            return Instance("loglikelihood", {}, loglikelihood_request(n, tokenizer=tok), 0)
        gen = {"until": ["\n"], "max_gen_toks": 8, "do_sample": False}
        return Instance("generate_until", {}, (passkey_prompt(n, tokenizer=tok), gen), 0)

    def call(lm, inst):
        fn = lm.loglikelihood if mode == "loglikelihood" else lm.generate_until
        try:
            return fn([inst], disable_tqdm=True)
        except TypeError:  # an implementation without the keyword
            return fn([inst])

    start = time.perf_counter()
    if model == "rwkv_pkg":
        if mode != "loglikelihood":
            raise SystemExit("rwkv_pkg measures loglikelihood requests only")
        lm = RwkvPackage(path)
    else:
        lm = load_lm(model, path, n_tokens, model_args)
        if Path(path).suffix == ".gguf":  # a real tokenizer: requests measured with it
            tok = lm.tokenizer
    load_s = time.perf_counter() - start
    call(lm, request(warmup))  # one-time costs: thread pools, kernel builds
    rss_before = peak_rss_mb()
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    inst = request(n_tokens)
    start = time.perf_counter()
    out = call(lm, inst)
    seconds = time.perf_counter() - start
    return {
        "mode": mode, "model": model, "tokens": n_tokens, "seconds": seconds,
        "tokens_per_s": n_tokens / seconds, "peak_rss_mb": peak_rss_mb(),
        "rss_before_request_mb": rss_before, "load_s": load_s,
        **dict(zip(("params", "params_nonembedding"),
                   lm.n_params() if model == "rwkv_pkg" else n_params(lm))),
        "threads": torch.get_num_threads(), "result": repr(out[0])[:80],
        "attn_flops": 0.0 if model == "rwkv_pkg" else attention_flops(lm.model.config, n_tokens),
        **({"cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20} if cuda else {}),
        **({"loglikelihood": float(out[0][0])} if mode == "loglikelihood" else {}),
        **(_footprint(lm) if model == "lc_hf" else {}),
    }


def _footprint(lm) -> dict:
    """lc_hf's carried state per row: fixed bytes and KV-cache bytes per token."""
    from lc_models.footprint import state_footprint

    return state_footprint(lm.runner)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("build")
    b.add_argument("config")
    b.add_argument("path")
    sub.add_parser("gemm")
    for mode in ("loglikelihood", "generate"):
        r = sub.add_parser(mode)
        r.add_argument("model")
        r.add_argument("path")
        r.add_argument("tokens", type=int)
        r.add_argument("--model_args", default="")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.mode == "build":
        result = {"path": str(build_checkpoint(args.config, Path(args.path)))}
    elif args.mode == "gemm":
        result = gemm_rate()
    else:
        result = run_request(args.mode, args.model, args.path, args.tokens, args.model_args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
