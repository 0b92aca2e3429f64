"""Our tasks through served engines: lm-eval's API models, and vLLM or sglang in process.

``lc-eval run --model local-completions`` (or ``local-chat-completions``) sends each prompt to
an OpenAI-compatible server. The score must be the model's, with the prompt ``lc_hf`` would
read, or the run is refused in one line. Two steps:

``check_model(model, model_args, chat, lengths)``, before lm-eval loads anything:
lm-eval's ``[api]`` extra, a ``base_url`` that answers, ``--apply_chat_template`` with the chat
route, a tokenizer lm-eval can load (a GGUF file or a zoo name becomes a tokenizer folder,
through the tasks' own resolver), and for ``vllm``/``sglang`` the package and a
``max_model_len``/``context_length`` that holds the longest task.

``prepare(lm, lengths, chat, model_args)``, once the model exists and before any request:

* the server's own context (``lc_eval.server.discover``) against each task's length; lm-eval's
  client ``max_length`` (2048 unless given) becomes the server's, where it reports one;
* greedy decoding as in process: ``repeat_penalty: 1.0`` on every generation request
  (llama-cpp-python's server penalizes repeated tokens unless told);
* a one-token probe in the run's own request format: a token-id prompt the server refuses,
  a model name it does not serve, a wrong URL, each one line;
* chat over the completions route: the chat template rendered here, with the tokenizer that
  sized the prompts, exactly as ``lc_hf`` renders it (the answer prefix continues the
  assistant turn), and sent as text;
* chat over the chat route: the answer prefix is the final assistant message, sent with
  ``continue_final_message: true, add_generation_prompt: false`` (vLLM, sglang); a probe
  checks by the prompt's token count that the server continued the message, and a server
  that closes it instead (llama-cpp-python's) is refused, naming the completions route;
* an HTTP failure during the run (a context error read from the server's text, a lost
  server) ends in one line instead of a traceback from aiohttp or tenacity.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from lc_eval import server as http
from lc_eval.served_failures import RESTART, one_line_failures
from lc_tasks.errors import UsageError

__all__ = ["IN_PROCESS", "SERVED", "check_model", "prepare", "render_chat"]

# lm-eval's API models -> the route they post to
SERVED = {"local-completions": "completions", "local-chat-completions": "chat",
          "openai-completions": "completions", "openai-chat-completions": "chat"}
# in-process engines -> (package, the model arg that sets their context)
IN_PROCESS = {"vllm": ("vllm", "max_model_len"), "sglang": ("sglang", "context_length")}
API_PACKAGES = ("aiohttp", "tenacity", "requests")
LOGLIKELIHOOD = ("ppl",)  # our families scored by log-likelihood, not by generation
COMPLETIONS_ROUTE = ("use --model local-completions with base_url=<server>/v1/completions,"
                     "tokenized_requests=False: lc-eval renders the chat template itself and "
                     "sends the text, the answer prefix inside the assistant turn")


def check_model(model: Any, model_args: dict, chat: bool,
                families: list[tuple[str, int]]) -> dict:
    """The cheap checks of a served or in-process engine (module docstring) for our tasks'
    ``(family, length)`` pairs; returns the model args, with a GGUF or zoo ``tokenizer``
    replaced by a folder lm-eval can load."""
    lengths = [n for _, n in families]
    if model in IN_PROCESS:
        _check_in_process(model, model_args, lengths)
        return model_args
    if model not in SERVED:
        return model_args
    missing = [p for p in API_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise UsageError(f"--model {model} needs lm-eval's [api] extra ({', '.join(missing)} "
                         "not installed): pip install 'lm-eval[api]'")
    if SERVED[model] == "chat" and not chat:
        raise UsageError(f"--model {model} sends chat messages, so it needs "
                         "--apply_chat_template (lc-eval sizes the prompts for it); for plain "
                         "prompts use --model local-completions")
    scored = [f for f, _ in families if f in LOGLIKELIHOOD]
    if scored:
        raise UsageError(f"lc_{scored[0]} scores log-likelihoods, which a server returns only "
                         "for token ids it echoes back with their logprobs (not every engine "
                         f"does, and text prompts shift them by the BOS it adds); run lc_"
                         f"{scored[0]} with --model lc_hf, or --model vllm in process")
    if not str(model).startswith("local-"):
        return model_args
    base_url = model_args.get("base_url")
    route = "chat/completions" if SERVED[model] == "chat" else "completions"
    if not base_url:
        raise UsageError(f"--model {model} needs the server's URL: pass --model_args "
                         f"base_url=http://<host>:<port>/v1/{route}")
    other = "completions" if route == "chat/completions" else "chat/completions"
    tail = str(base_url).rstrip("/")
    if tail.endswith("/v1/" + other):
        raise UsageError(f"base_url={base_url} is the {other} endpoint, but --model {model} "
                         f"posts to /v1/{route}; pass base_url=<server>/v1/{route}")
    http.discover(str(base_url), _auth(model_args))  # answers at all, or one line
    return _loadable_tokenizer(model, model_args)


def _check_in_process(model: str, model_args: dict, lengths: list[int]) -> None:
    package, arg = IN_PROCESS[model]
    if importlib.util.find_spec(package) is None:
        raise UsageError(f"--model {model} needs the {package} package and a CUDA GPU: pip "
                         f"install {package}; on a CPU use --model lc_hf")
    limit = model_args.get(arg)
    if lengths and limit is not None and int(limit) < max(lengths):
        raise UsageError(f"--model_args {arg}={limit} is shorter than the longest task "
                         f"({max(lengths)} tokens): {model} would refuse or cut its prompts; "
                         f"pass {arg}={max(lengths)} or more, or run shorter tasks")


def _auth(model_args: dict) -> dict:
    import os

    key = model_args.get("auth_token") or os.environ.get("OPENAI_API_KEY", "")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _loadable_tokenizer(model: str, model_args: dict) -> dict:
    """lm-eval's API models load ``tokenizer`` (else ``model``) with ``AutoTokenizer``; a
    GGUF file or a zoo short name is loaded through the tasks' resolver and saved as a
    folder, so both sides tokenize with one tokenizer."""
    backend = model_args.get("tokenizer_backend", "auto" if SERVED[model] == "completions"
                             else None)
    name = model_args.get("tokenizer")
    if backend in (None, "None", "none", "remote", "tiktoken") or not isinstance(name, str):
        return model_args
    from lc_tasks.tokenizer import checkpoint_location, load_tokenizer

    folder, gguf_file = checkpoint_location(name)
    if gguf_file is None and folder == name:
        return model_args  # a folder or hub id AutoTokenizer loads itself
    return {**model_args, "tokenizer": _saved(load_tokenizer(name), name)}


def _saved(tokenizer: Any, name: str) -> str:
    import hashlib
    import tempfile
    from pathlib import Path

    from lc_tasks.doc_cache import cache_root, tokenizer_fingerprint

    root = cache_root() or Path(tempfile.gettempdir()) / "lc-eval"
    folder = root / "tokenizers" / hashlib.sha256(
        (name + tokenizer_fingerprint(tokenizer)).encode()).hexdigest()[:16]
    if not (folder / "tokenizer_config.json").is_file():
        tokenizer.save_pretrained(folder)
    return str(folder)


def render_chat(tokenizer: Any, chat_history: list[dict], add_generation_prompt: bool) -> str:
    """The chat template rendered as lm-eval's ``hf`` (and so ``lc_hf``) renders it: a final
    assistant message is continued, and a template without a system role drops it."""
    import jinja2

    def apply(messages):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt)

    try:
        return apply(chat_history)
    except jinja2.exceptions.TemplateError:
        return apply([m for m in chat_history if m.get("role") != "system"])


def prepare(lm, lengths: list[tuple[str, int]], chat: bool, model_args: dict,
            model: str) -> None:
    """Ready lm-eval's API model ``lm`` (``--model`` name ``model``) for our tasks'
    ``(name, length)`` pairs, or refuse in one line (module docstring). ``chat``:
    ``--apply_chat_template`` was given; ``model_args`` name the tokenizer."""
    inner = getattr(lm, "lm", lm)  # CachingLM (--use_cache) wraps the model
    if SERVED.get(model) is None or not str(model).startswith("local-") or not hasattr(
            inner, "base_url"):
        return
    route = SERVED[model]
    server = http.discover(inner.base_url, _auth(model_args))
    _fit_context(inner, server, lengths, model_args)
    _greedy(inner)
    tokenizer = _tokenizer(model_args)
    _probe(inner, server, route)
    if route == "completions" and not getattr(inner, "tokenized_requests", False):
        _same_tokens_as_lc_hf(inner, server, tokenizer, chat)
    if chat:
        if route == "completions":
            inner.apply_chat_template = lambda history, add_generation_prompt=True: render_chat(
                tokenizer, history, add_generation_prompt)
        else:
            _continue_final_message(inner, server, tokenizer)
    one_line_failures(inner, server, lengths)


def _amend_payload(inner, amend) -> None:
    """``inner._create_payload`` with ``amend(body, messages, generate)`` applied to each
    request body it builds (the one place lc-eval adds fields to lm-eval's requests)."""
    create = inner._create_payload

    def payload(*args, **kwargs):
        body = create(*args, **kwargs)
        messages = args[0] if args else kwargs.get("messages")
        amend(body, messages, kwargs.get("generate", args[1] if len(args) > 1 else False))
        return body

    inner._create_payload = payload


def _greedy(inner) -> None:
    """Generation requests decode greedily, as lc_hf does: ``repeat_penalty: 1.0`` (llama.cpp's
    field; llama-cpp-python's server penalizes repeats by 1.1 unless told, so a needle with a
    repeated digit, 9006146, comes out as 900614). Other servers ignore the field; a value the
    user gives in --gen_kwargs wins."""
    def amend(body, messages, generate):
        if generate:
            body.setdefault("repeat_penalty", 1.0)

    _amend_payload(inner, amend)


def _tokenizer(model_args: dict):
    """The tokenizer that sized the prompts (``tokenizer``, else ``pretrained``/``model``)."""
    from lc_tasks.tokenizer import resolve_tokenizer

    return resolve_tokenizer(model_args, "the served model")


def _fit_context(inner, server: http.Server, lengths: list[tuple[str, int]],
                 model_args: dict) -> None:
    if server.context is None:
        return
    task, length = max(lengths, key=lambda t: t[1], default=(None, 0))
    if length > server.context:
        raise UsageError(f"{task} needs {length} tokens, but the server at {server.url} "
                         f"serves a context of {server.context} ({server.context_from}); "
                         f"{RESTART}, or run tasks of at most {server.context} tokens")
    if "max_length" not in model_args:  # lm-eval's 2048 would refuse what the server takes
        inner.max_length = server.context  # a task sized to it fits: prompt + max_gen_toks
        logging.getLogger("lm_eval.lc_tasks").info(
            "lc-eval: max_length %d, the server's context (%s)", server.context,
            server.context_from)


def _post(inner, messages, **extra) -> http.Reply:
    """A one-token request of ``messages`` (chat messages, or a batch of one prompt) built by
    the model's own payload code."""
    chat = isinstance(messages[0], dict)
    payload = inner._create_payload(messages if chat else inner.create_message(messages),
                                    generate=True,
                                    gen_kwargs={"max_gen_toks": 1, "until": ["\n"]},
                                    seed=inner._seed, eos=None)
    return http.post(inner.base_url, {**payload, **extra}, dict(inner.header),
                     timeout=max(http.TIMEOUT, getattr(inner, "timeout", 0)))


def _probe(inner, server: http.Server, route: str) -> None:
    """One one-token request in the run's own format, its failure named in one line."""
    if route == "chat":
        reply = _post(inner, [{"role": "user", "content": "Hi"}])
    else:
        tokens = getattr(inner, "tokenized_requests", False) and inner.tokenizer is not None
        reply = _post(inner, [inner.tok_encode("Hi")] if tokens else ["Hi"])
        if not reply.ok and tokens and _post(inner, ["Hi"]).ok:
            raise UsageError(f"the server at {server.url} refuses token-id prompts (HTTP "
                             f"{reply.status}: {reply.message(120)}); pass --model_args "
                             "tokenized_requests=False, and lc-eval sends the prompt text")
    if reply.ok:
        return
    said = reply.message(160)
    if (reply.status == 404 and "model" in said.lower()) or "does not exist" in said:
        served = ", ".join(server.models) or "none listed"
        raise UsageError(f"the server at {server.url} does not serve model={inner.model!r} "
                         f"(HTTP {reply.status}: {said}); pass --model_args model=<one of: "
                         f"{served}>")
    if reply.status in (404, 405):
        raise UsageError(f"base_url={server.url} answered HTTP {reply.status} ({said}); point "
                         "it at the endpoint itself, <server>/v1/completions (local-completions) "
                         "or <server>/v1/chat/completions (local-chat-completions)")
    raise UsageError(f"the server at {server.url} refused a one-token request (HTTP "
                     f"{reply.status}: {said}); check --model_args against the server")


def _prompt_tokens(reply: http.Reply) -> int | None:
    usage = reply.body.get("usage") if reply.ok and isinstance(reply.body, dict) else None
    sent = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return sent if isinstance(sent, int) else None


def _same_tokens_as_lc_hf(inner, server: http.Server, tokenizer, chat: bool) -> None:
    """A text prompt is read as lc_hf reads it (lm-eval's hf rule: the tokenizer's own special
    tokens, none after a text that starts with the BOS): a server that reads other tokens is
    asked to tokenize that way (``add_special_tokens``, vLLM's and sglang's field), or
    refused. The probe is a prompt of the run's kind (templated or plain)."""
    text = render_chat(tokenizer, [{"role": "user", "content": "Hi"},
                                   {"role": "assistant", "content": "The"}], False) if chat else "Hi"
    bos = getattr(tokenizer, "bos_token", None)
    special = not (bos and text.startswith(bos))
    want = len(tokenizer(text, add_special_tokens=special)["input_ids"])
    sent = _prompt_tokens(_post(inner, [text]))
    if sent is None or sent == want:
        if sent is None:
            logging.getLogger("lm_eval.lc_tasks").warning(
                "lc-eval: the server at %s reports no prompt token count, so lc-eval cannot "
                "check that it reads prompts as lc_hf does (a BOS token of its own)", server.url)
        return
    if _prompt_tokens(_post(inner, [text], add_special_tokens=special)) == want:
        _amend_payload(inner, lambda body, messages, generate: body.update(
            add_special_tokens=special))
        return
    raise UsageError(f"the server at {server.url} reads a {'templated' if chat else 'plain'} "
                     f"prompt as {sent} tokens where lc_hf reads {want} (a BOS token of its own, "
                     "or one too few): the scores would not be lc_hf's; pass --model_args "
                     "tokenized_requests=True if the server takes token ids (they are sent as "
                     "they are)")


def _continue_final_message(inner, server: http.Server, tokenizer) -> None:
    """Ask the server to continue a final assistant message, and check that it does."""
    def amend(body, messages, generate):
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict) and (
                messages[-1].get("role") == "assistant"):
            body.update(continue_final_message=True, add_generation_prompt=False)

    _amend_payload(inner, amend)
    messages = [{"role": "user", "content": "What is the pass key?"},
                {"role": "assistant", "content": "The pass key is"}]
    reply = _post(inner, messages)
    sent = _prompt_tokens(reply)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    continued = count(render_chat(tokenizer, messages, add_generation_prompt=False))
    closed = count(render_chat(tokenizer, messages, add_generation_prompt=True))
    if sent == continued and continued != closed:
        return
    if sent is None:
        why = (f"it reported no prompt token count (HTTP {reply.status}), so lc-eval cannot see "
               "whether it continues the answer prefix")
    elif continued == closed:
        why = ("its chat template renders the continued and the closed turn with as many "
               "tokens, so lc-eval cannot tell which it did")
    else:
        why = (f"its prompt had {sent} tokens: {continued} if the answer prefix were continued, "
               f"{closed} if its turn were closed")
    raise UsageError(f"the server at {server.url} ({server.engine}) cannot be seen to continue "
                     f"the final assistant message ({why}): the model would start a new turn "
                     f"and the score would measure the prompt format; {COMPLETIONS_ROUTE}")
