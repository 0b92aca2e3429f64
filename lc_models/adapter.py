"""``lc_hf``: any HF causal LM over inputs of any length, in chunks, exactly.

lm-eval's stock ``hf`` model runs one forward pass per request and
left-truncates past ``max_length``. ``lc_hf`` reuses everything else of it
(loading, tokenization, devices, ``accelerate`` data parallelism,
``parallelize``/``device_map``) but feeds every input in chunks of
``chunk_size`` tokens, carrying the model's state (KV caches, conv and
recurrent states) from chunk to chunk, so that its numbers are those of one
full forward pass over the whole input, at any length:

* ``loglikelihood``: each distinct context is prefilled once; every
  continuation is scored from a copy of that state;
* ``loglikelihood_rolling``: one pass over the whole document (no windows);
* ``generate_until``: chunked prefill, then decoding from the carried state
  (greedy unless the task asks for sampling).

Nothing is truncated: a request longer than a user-set ``max_length`` is an
error; by default there is no limit.

Example::

    lc-eval run --model lc_hf --model_args pretrained=state-spaces/mamba2-130m,chunk_size=2048 \\
        --tasks lc_passkey_4k
"""

from __future__ import annotations

import json
import logging
import sys

import torch
import transformers
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import (
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from tqdm import tqdm

from lc_models import models as own_models
from lc_models.args import check_model_args
from lc_models.footprint import state_footprint
from lc_models.generate import Sampler, check_gen_kwargs, decode
from lc_models.hf_runners import runner_for
from lc_models.lengths import built_for, learned_positions
from lc_models.load_checks import check_vocabulary, check_weight_dtypes
from lc_models.ops import dispatch, linear
from lc_models.prefill import feed
from lc_models.shared_prefix import RiderScores, plan_passes
from lc_tasks.chat import check_sized
from lc_tasks.errors import UsageError
from lc_tasks.tokenizer import UNLIMITED, checkpoint_location, local_path

# A child of lm-eval's logger, so that lm-eval's CLI shows our messages in its format.
log = logging.getLogger("lm_eval.models.lc_hf")

DEFAULT_CHUNK_SIZE = 1024
NO_LIMIT = sys.maxsize  # what ``max_length`` reports when the user set none
LM_EVAL_DEFAULT_DEVICE = "cuda:0"  # what lm-eval's CLI passes when --device is not given


class LongContextLM(HFLM):
    """lm-eval model ``lc_hf`` (see the module docstring).

    Model args, beside all of ``hf``'s: ``chunk_size`` (tokens per forward
    call, default 1024), ``max_length`` (default: no limit), ``verify``
    (check an architecture lc_hf does not know against its full forward pass
    before use; default true), ``kernels`` (``auto``, ``torch``, ``native`` or
    ``vendor``: which implementation every recurrence runs, see
    ``lc_models.ops.dispatch``; default auto), and for native mamba_ssm checkpoints a
    ``tokenizer`` (default ``EleutherAI/gpt-neox-20b``).
    """

    def __init__(
        self,
        pretrained,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_length: int | None = None,
        device: str | None = None,
        batch_size: int | str = 1,
        verify: bool = True,
        kernels: str = "auto",
        **kwargs,
    ) -> None:
        if device in (None, LM_EVAL_DEFAULT_DEVICE) and not torch.cuda.is_available():
            device = "cpu"  # no device asked for (lm-eval passes its default): as hf does
        args = check_model_args({"chunk_size": chunk_size, "max_length": max_length,
                                 "device": device, "batch_size": batch_size, "verify": verify,
                                 "kernels": kernels, **kwargs})
        dispatch.set_kernels(args["kernels"])  # process-wide: every op asks dispatch.choose
        if device is None:
            device = "cuda"
        if isinstance(pretrained, str):  # a short name -> its folder; a .gguf path -> its
            pretrained, gguf_file = checkpoint_location(  # folder and gguf_file
                pretrained, kwargs.pop("gguf_file", None))
            if gguf_file:
                kwargs["gguf_file"] = gguf_file
        super().__init__(pretrained=pretrained, device=device, batch_size=args["batch_size"],
                         **kwargs)
        if self.backend != "causal":
            raise UsageError("lc_hf runs decoder-only (causal) models only; use --model hf for "
                             f"{self.config.model_type}")
        self.chunk_size = args["chunk_size"]
        self._limit = args["max_length"]
        self._positions = learned_positions(self.model)  # (positions, where) or None
        self._positions_warned = False
        self._use_accelerate_ranks()
        check_vocabulary(self.tokenizer, self.model, pretrained, kwargs.get("tokenizer"))
        if getattr(self, "_own", None) is None and not kwargs.get("gguf_file"):
            check_weight_dtypes(self.model, pretrained)
        self.runner = runner_for(self.model, verify=args["verify"])
        if (self.model.dtype == torch.bfloat16 and self.device.type == "cpu"
                and not linear.cpu_has_bf16()):
            log.warning("lc_hf: this CPU has no bf16 instructions (AVX-512 BF16 or AMX), so "
                        "dtype=bfloat16 is emulated and slower than float32; use dtype=float32")

    def _use_accelerate_ranks(self) -> None:
        """Data parallelism under ``accelerate launch`` on any device.

        ``HFLM`` takes ranks from accelerate only when several GPUs are
        visible; ``accelerate launch --cpu`` runs would otherwise have every
        process evaluate everything.
        """
        accelerator = getattr(self, "accelerator", None)
        if accelerator is not None and accelerator.num_processes > 1 and self._world_size == 1:
            self._rank = accelerator.process_index
            self._world_size = accelerator.num_processes
        if self._world_size > 1:
            log.info("lc_hf: data-parallel rank %d of %d", self._rank, self._world_size)

    # ------------------------- checkpoints transformers cannot load (lc_models.models)
    def _get_config(self, pretrained, *, revision="main", subfolder="", **kwargs) -> None:
        self._own = own_models.find(pretrained, revision, subfolder)
        if self._own is not None:
            self._config = self._own.hf_config
            return
        try:
            super()._get_config(pretrained, revision=revision, subfolder=subfolder, **kwargs)
        except (OSError, ValueError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise UsageError(f"pretrained={pretrained!r}: cannot read its config ({reason}); "
                             "pass a local checkpoint folder or a hub id") from err

    def _get_backend(self, config, backend="default", trust_remote_code=False) -> None:
        if getattr(self, "_own", None) is None:
            return super()._get_backend(config, backend, trust_remote_code)
        self.backend = "causal"  # our families are decoder-only LMs
        self.AUTO_MODEL_CLASS = transformers.AutoModelForCausalLM

    def _create_tokenizer(self, pretrained, tokenizer, *args, **kwargs) -> None:
        if not tokenizer and getattr(self, "_own", None) is not None:
            tokenizer = self._own.tokenizer
        if isinstance(tokenizer, str):  # a tokenizer no `tokenizers` file expresses (RWKV World)
            tokenizer = own_models.special_tokenizer(local_path(tokenizer)) or tokenizer
        elif not tokenizer and isinstance(pretrained, str):
            tokenizer = own_models.special_tokenizer(pretrained)
        super()._create_tokenizer(pretrained, tokenizer, *args, **kwargs)
        # lc_hf takes any length (or refuses one, with its own message): no per-encode warning
        # from transformers ("Token indices sequence length is longer than ...")
        self.tokenizer.model_max_length = UNLIMITED

    def _create_model(self, pretrained, revision="main", dtype="auto", **kwargs) -> None:
        if getattr(self, "_own", None) is None:
            try:
                return super()._create_model(pretrained, revision=revision, dtype=dtype,
                                             **kwargs)
            except TypeError as err:  # a model arg nobody takes reached from_pretrained
                raise UsageError(f"lc_hf: {err}; check the --model_args names") from err
            except Exception as err:
                reason = (str(err).strip().splitlines() or [""])[0][:200]
                raise UsageError(f"pretrained={pretrained!r}: cannot load its weights "
                                 f"({type(err).__name__}: {reason})") from err
        from lm_eval.models.utils_hf import get_dtype

        if kwargs.get("parallelize"):
            raise UsageError(f"lc_hf: parallelize=True is not supported for "
                             f"{self._config.model_type} checkpoints; run on one device")
        self._model = self._own.load(dtype=None if dtype in (None, "auto") else get_dtype(dtype),
                                     device=self._device)
        self._own.state = None  # the weights now live in the model

    def get_model_info(self) -> dict:
        """lm-eval's model info (recorded in the results' ``config``), plus the bytes of the
        model's state for one row: ``lc_state_bytes`` (fixed: recurrent and conv states) and
        ``lc_kv_bytes_per_token`` (growing: KV caches); ``lc-eval report`` shows them; and
        ``lc_fp32_gemm``, the GEMM its fp32 linear layers run on (``lc_models.ops.linear``)."""
        info = super().get_model_info()
        info.update(state_footprint(self.runner))
        info["lc_fp32_gemm"] = linear.fast_backend()
        return info

    # ------------------------------------------------------------------ lengths
    @property
    def max_length(self) -> int:
        """The user's ``max_length``, else the size of a learned position table, else
        ``NO_LIMIT``."""
        if self._limit:
            return self._limit
        return self._positions[0] if self._positions else NO_LIMIT

    @property
    def limit_reason(self) -> str:
        """Why ``max_length`` is what it is, for error messages."""
        if self._limit:
            return f"lc_hf was given max_length={self._limit} (it never truncates)"
        if self._positions:
            return (f"{self.config.model_type} has learned absolute positions for only "
                    f"{self._positions[0]} tokens ({self._positions[1]})")
        return "lc_hf has no length limit"

    def _check_length(self, lengths: list[int], what: str) -> None:
        """Refuse ``what`` requests of these lengths (tokens the model reads) if the model
        cannot take the longest; note once when it goes past the length the model was built
        for (extrapolation is measured, not prevented)."""
        n_tokens = max(lengths, default=0)
        if self._limit is not None and n_tokens > self._limit:
            raise UsageError(
                f"lc_hf: a {what} request is {n_tokens} tokens long, over max_length="
                f"{self._limit}; lc_hf never truncates, so raise max_length or leave it unset."
            )
        if n_tokens > self.max_length:  # past a learned position table
            raise UsageError(f"lc_hf: a {what} request is {n_tokens} tokens long, but "
                             f"{self.limit_reason}; use tasks of at most {self.max_length} tokens")
        built = built_for(self.config)
        if built and not self._positions_warned and n_tokens > built[1]:
            self._positions_warned = True
            log.warning(
                "lc_hf: requests run past the model's %s=%d (the longest is %d tokens); "
                "that is the extrapolation being measured (logged once per run).",
                built[0], built[1], n_tokens)

    @property
    def _progress(self) -> bool:
        return self.rank == 0

    def _bar(self, kind: str, weights: list[int], disable: bool):
        """Progress over ``kind`` requests, counted in tokens: the longest run first, so a
        count of requests would give a first ETA far too long."""
        return tqdm(total=sum(weights), unit="tok", unit_scale=True,
                    disable=disable or self.rank != 0,
                    desc=f"Running {len(weights)} {kind} requests (longest first)")

    def _remember(self, kind: str, args, result) -> None:
        """Hand a finished request to lm-eval's ``--use_cache`` store, written at once, so
        that a run killed midway and started again recomputes none of it."""
        self.cache_hook.add_partial(kind, args, result)
        store = getattr(self.cache_hook, "dbdict", None)
        if store is not None:
            store.commit()

    # ------------------------------------------------------------ scoring
    def _new_state(self, batch_size: int, n_tokens: int):
        """An empty state for rows of at most ``n_tokens`` tokens, context and continuation
        together (lc_hf knows every request's length first: KV caches are allocated once)."""
        state = self.runner.new_state(batch_size)
        state.reserve(n_tokens)
        return state

    def _score(self, rows, targets, state) -> list[tuple[float, bool]]:
        """Sum of log p(targets[i][t] | rows[i][: t + 1]) for every row, and whether
        every target token is the argmax, feeding ``rows`` after ``state``."""
        totals = [0.0] * len(rows)
        greedy = [True] * len(rows)

        def on_chunk(row_ids, start, logits):  # logits (b, T, vocab)
            width = logits.shape[1]
            wanted = torch.tensor(
                [targets[i][start : start + width] for i in row_ids], device=logits.device
            )  # (b, T)
            logprobs = logits.float().log_softmax(-1).gather(-1, wanted[..., None])[..., 0]
            hits = (logits.argmax(-1) == wanted).all(-1)  # (b,)
            for k, i in enumerate(row_ids):
                totals[i] += float(logprobs[k].sum())
                greedy[i] = greedy[i] and bool(hits[k])

        feed(self.runner, rows, state, self.chunk_size, on_chunk=on_chunk, progress=self._progress)
        return list(zip(totals, greedy))

    def _loglikelihood_tokens(self, requests, disable_tqdm=False, override_bs=None):
        """Score (context, continuation) token pairs in as few passes as shared prefixes allow
        (``lc_models.shared_prefix``): each distinct context is prefilled once, its
        continuations are scored from copies of its state, and requests whose whole tokens
        are a longer context (``lc_ppl``'s position buckets) are scored inside its prefill."""
        for _, context, continuation in requests:
            if not context or not continuation:
                raise UsageError("loglikelihood requests need a non-empty context and "
                                 "continuation")
        self._check_length([len(c) + len(t) - 1 for _, c, t in requests], "loglikelihood")
        log.info("lc_hf: computing %d loglikelihood requests", len(requests))
        pairs = [(c, t) for _, c, t in requests]
        passes = plan_passes(pairs)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        size = self.batch_size
        weights = [len(c) + len(t) for c, t in pairs]
        bar = self._bar("loglikelihood", weights, disable_tqdm)

        def finish(i: int, answer: tuple[float, bool]) -> None:
            results[i] = answer
            if requests[i][0] is not None:
                self._remember("loglikelihood", requests[i][0], answer)
            bar.update(weights[i])

        for first in range(0, len(passes), size):
            batch = passes[first : first + size]
            riders = RiderScores([p.context for p in batch],
                                 [[pairs[i] for i in p.riders] for p in batch])
            # state after context[:-1]; the last context token starts every continuation row
            ends = feed(
                self.runner,
                [list(p.context[:-1]) for p in batch],
                self._new_state(len(batch), max(len(p.context) + max(len(pairs[i][1]) for i in
                                                p.branches) for p in batch)),
                self.chunk_size,
                on_chunk=riders.on_chunk if riders.any else None,
                keep_states=True,
                progress=self._progress,
            )
            for row, (pass_, end) in enumerate(zip(batch, ends)):
                for i, answer in zip(pass_.riders, riders.results(row)):
                    finish(i, answer)
                for sub in range(0, len(pass_.branches), size):
                    group = pass_.branches[sub : sub + size]
                    conts = [pairs[i][1] for i in group]
                    rows = [[pass_.context[-1], *cont[:-1]] for cont in conts]
                    scores = self._score(rows, conts, end.state.select([0] * len(group)))
                    for i, answer in zip(group, scores):
                        finish(i, answer)
        bar.close()
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm=False) -> list[float]:
        """Log-likelihood of whole documents in one pass each, state carried throughout."""
        log.info("lc_hf: computing %d loglikelihood_rolling requests", len(requests))
        docs = [self.tok_encode(req.args[0]) for req in requests]
        self._check_length([len(doc) for doc in docs], "loglikelihood_rolling")
        order = sorted(range(len(docs)), key=lambda i: len(docs[i]), reverse=True)
        order = [i for i in order if docs[i]]  # an empty document scores 0
        totals = [0.0] * len(docs)
        bar = self._bar("loglikelihood_rolling", [len(doc) for doc in docs], disable_tqdm)
        for first in range(0, len(order), self.batch_size):
            batch = order[first : first + self.batch_size]
            rows = [[self.prefix_token_id, *docs[i][:-1]] for i in batch]
            state = self._new_state(len(batch), max(len(row) for row in rows))
            scores = self._score(rows, [docs[i] for i in batch], state)
            for i, (total, _) in zip(batch, scores):
                totals[i] = total
                self._remember("loglikelihood_rolling", requests[i].args, total)
                bar.update(len(docs[i]))
        for i in range(len(docs)):
            if not docs[i]:
                self._remember("loglikelihood_rolling", requests[i].args, 0.0)
        bar.close()
        return totals

    # ---------------------------------------------------------- generation
    def _encode_prompt(self, text: str) -> list[int]:
        """Token ids of a generation prompt, exactly as ``hf`` encodes it."""
        ids = self.tok_batch_encode([text])[0][0].tolist()
        if not ids:
            raise UsageError("generate_until needs a non-empty prompt")
        return ids

    def _stop_rule(self, until: list[str]):
        """``should_stop(generated)``: an EOS token, or a stop string in the text."""
        eos = {self.eot_token_id}
        config_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        eos.update(config_eos if isinstance(config_eos, list) else [config_eos])
        stops = [s for s in until if s]
        # enough trailing tokens to hold any stop string (tokens may be partial characters)
        window = 2 * max((len(s) for s in stops), default=0) + 4

        def should_stop(generated: list[int]) -> bool:
            if generated[-1] in eos:
                return True
            tail = self.tokenizer.decode(generated[-window:])
            if not any(s in tail for s in stops):
                return False
            text = self.tokenizer.decode(generated)  # confirm on the whole text
            return any(s in text for s in stops)

        return should_stop

    def _finish_text(self, tokens: list[int], until: list[str]) -> str:
        """Generated tokens to the returned string, as ``hf`` post-processes them."""
        if isinstance(self.think_end_token, int) and self.think_end_token in tokens:
            last = len(tokens) - 1 - tokens[::-1].index(self.think_end_token)
            tokens = tokens[last + 1 :]
            text = self.tok_decode(tokens).lstrip()
        else:
            text = self.tok_decode(tokens)
        think = self.think_end_token if isinstance(self.think_end_token, str) else None
        return postprocess_generated_text(generation=text, stop=until, think_end_token=think)

    def generate_until(self, requests, disable_tqdm=False) -> list[str]:
        """Chunked prefill of each prompt, then decoding until a stop string, EOS or
        ``max_gen_toks``."""
        log.info("lc_hf: computing %d generate_until requests", len(requests))
        results: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for index, req in enumerate(requests):
            key = json.dumps(req.args[1], sort_keys=True, default=str)
            groups.setdefault(key, []).append(index)
        eos_text = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        plans = []  # every group's settings and prompts, checked before any compute
        for indices in groups.values():
            kwargs = check_gen_kwargs(
                normalize_gen_kwargs(requests[indices[0]].args[1], self.max_gen_toks))
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos_text)
            max_gen_toks = kwargs.pop("max_gen_toks")
            prompts = {i: self._encode_prompt(requests[i].args[0]) for i in indices}
            for i, prompt in prompts.items():
                check_sized(len(prompt), max_gen_toks, getattr(requests[i], "doc", None))
            plans.append((indices, until, max_gen_toks, Sampler.from_gen_kwargs(kwargs), prompts))
        lengths = {i: len(p) + plan[2] for plan in plans for i, p in plan[4].items()}
        self._check_length(list(lengths.values()), "generate_until")
        bar = self._bar("generate_until", list(lengths.values()), disable_tqdm)
        for indices, until, max_gen_toks, sampler, prompts in plans:
            should_stop = self._stop_rule(until)
            order = sorted(indices, key=lambda i: len(prompts[i]), reverse=True)
            for first in range(0, len(order), self.batch_size):
                batch = order[first : first + self.batch_size]
                ends = feed(
                    self.runner,
                    [prompts[i] for i in batch],
                    self._new_state(len(batch), max(lengths[i] for i in batch)),
                    self.chunk_size,
                    keep_states=True,
                    keep_last_logits=True,
                    progress=self._progress,
                )
                for i, end in zip(batch, ends):
                    tokens = decode(
                        self.runner,
                        end.state,
                        end.logits,
                        max_new_tokens=max_gen_toks,
                        sampler=sampler,
                        should_stop=should_stop,
                        context=prompts[i],
                    )
                    text = self._finish_text(tokens, until)
                    results[i] = text
                    self._remember("generate_until", requests[i].args, text)
                    bar.update(lengths[i])
        bar.close()
        return results
