"""What an OpenAI-compatible server says about itself, over HTTP, in a few small requests.

lm-eval's API models (``local-completions``, ``local-chat-completions``) send our prompts to a
server: vLLM, sglang, TGI, llama.cpp's ``llama-server`` or llama-cpp-python's server. Before a
run spends time, ``lc_eval.served`` asks the server here:

* whether it answers at all (``discover``: ``GET <prefix>/models``),
* how long a context it serves, where it says so (``Server.context``): vLLM and sglang in
  ``/v1/models`` (``max_model_len``), llama.cpp in ``/props``
  (``default_generation_settings.n_ctx``), TGI in ``/info`` (``max_total_tokens``);
  llama-cpp-python reports none, so there the first request's 400 is read instead
  (``context_in_error``);
* whether a one-token request goes through (``post``), the probe ``lc_eval.served`` sends.

Only the standard library: this runs before lm-eval's ``[api]`` extra is known to be there.

>>> api_prefix("http://127.0.0.1:8000/v1/chat/completions")
'http://127.0.0.1:8000/v1'
>>> context_in_error("Requested tokens (8200) exceed context window of 4096")
4096
>>> context_in_error("This model's maximum context length is 32768 tokens. However, ...")
32768
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from lc_tasks.errors import UsageError

__all__ = ["Reply", "Server", "api_prefix", "context_in_error", "discover", "one_line", "post"]

TIMEOUT = 10  # seconds for one small request (a probe, a /models listing)


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: its status (0: no answer), its JSON body (None if not JSON), its text."""

    status: int
    body: Any
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def message(self, width: int = 200) -> str:
        """The server's error message on one line (``error.message`` where it sends one)."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        text = error.get("message") if isinstance(error, dict) else (
            error if isinstance(error, str) else None)
        if text is None and isinstance(self.body, dict) and isinstance(
                self.body.get("detail"), str):
            text = self.body["detail"]
        return one_line(str(text if text is not None else self.text), width)


def one_line(text: str, width: int = 200) -> str:
    """``text`` on one line, cut to ``width`` characters with "..." where longer.

    >>> one_line("a\\n  b", 10), one_line("x" * 12, 10)
    ('a b', 'xxxxxxx...')
    """
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class Server:
    """What a server said about itself."""

    url: str  # the base_url the model posts to
    models: tuple[str, ...] = ()  # the ids /models lists
    engine: str = "unknown"  # /models' owned_by, or the endpoint that answered
    context: int | None = None  # the tokens of context it serves, where it says
    context_from: str = ""  # where that number came from
    raw: dict = field(default_factory=dict, repr=False)


def api_prefix(base_url: str) -> str:
    """``http://host:port/v1`` of a completions or chat-completions URL."""
    url = base_url.rstrip("/")
    for tail in ("/chat/completions", "/completions"):
        if url.endswith(tail):
            return url[: -len(tail)]
    return url


def _root(base_url: str) -> str:
    parts = urllib.parse.urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def _request(url: str, payload: dict | None, headers: dict, timeout: float) -> Reply:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = None
    return Reply(status, body, text)


def _unreachable(base_url: str, err: Exception) -> UsageError:
    reason = getattr(err, "reason", err)
    return UsageError(f"cannot reach the server at base_url={base_url} ({reason}); start it, or "
                      "pass --model_args base_url=<its URL, e.g. "
                      "http://127.0.0.1:8000/v1/completions>")


def get(url: str, headers: dict | None = None, timeout: float = TIMEOUT) -> Reply:
    """GET ``url``; an unreachable host is ``Reply(0, None, reason)``."""
    try:
        return _request(url, None, headers or {}, timeout)
    except (urllib.error.URLError, OSError) as err:
        return Reply(0, None, str(getattr(err, "reason", err)))


def post(base_url: str, payload: dict, headers: dict | None = None,
         timeout: float = TIMEOUT) -> Reply:
    """POST ``payload`` to ``base_url``; an unreachable server is a UsageError."""
    try:
        return _request(base_url, payload, headers or {}, timeout)
    except (urllib.error.URLError, OSError) as err:
        raise _unreachable(base_url, err) from None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def discover(base_url: str, headers: dict | None = None) -> Server:
    """What the server at ``base_url`` lists and how long a context it reports.

    A server that does not answer at all is a UsageError naming the URL; one without a
    ``/models`` listing is still a server (an empty ``models``).
    """
    if not urllib.parse.urlsplit(base_url).netloc:
        raise UsageError(f"base_url={base_url!r} is not a URL; pass e.g. "
                         "base_url=http://127.0.0.1:8000/v1/completions")
    prefix, root = api_prefix(base_url), _root(base_url)
    listing = get(f"{prefix}/models", headers)
    if listing.status == 0:
        raise _unreachable(base_url, OSError(listing.text))
    entries = listing.body.get("data") if isinstance(listing.body, dict) else None
    entries = [e for e in entries or [] if isinstance(e, dict)]
    models = tuple(str(e["id"]) for e in entries if "id" in e)
    engine = next((str(e["owned_by"]) for e in entries if e.get("owned_by")), "unknown")
    for entry in entries:
        if (n := _int(entry.get("max_model_len"))) is not None:  # vLLM, sglang
            return Server(base_url, models, engine, n, "/v1/models max_model_len")
        meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
        if (n := _int(meta.get("n_ctx"))) is not None:  # llama.cpp's llama-server
            return Server(base_url, models, engine, n, "/v1/models meta.n_ctx")
    props = get(f"{root}/props", headers)  # llama.cpp's llama-server
    if props.ok and isinstance(props.body, dict):
        settings = props.body.get("default_generation_settings") or {}
        n = _int(settings.get("n_ctx")) or _int(props.body.get("n_ctx"))
        if n is not None:
            return Server(base_url, models, "llama.cpp", n, "/props n_ctx")
    info = get(f"{root}/info", headers)  # TGI
    if info.ok and isinstance(info.body, dict):
        n = _int(info.body.get("max_total_tokens")) or _int(info.body.get("max_input_tokens"))
        if n is not None:
            return Server(base_url, models, "tgi", n, "/info max_total_tokens")
    return Server(base_url, models, engine)


# The context a server names in its refusal of a too-long prompt, by server.
_CONTEXT_ERRORS = (
    r"exceed context window of (\d+)",  # llama-cpp-python's Llama (its chat route)
    r"maximum context length is (\d+)",  # vLLM, OpenAI, llama-cpp-python's server
    r"maximum context length of (\d+)",  # sglang, prompt + max_new_tokens
    r"context length \((\d+) tokens?\)",  # sglang, the prompt alone
    r"\"n_ctx\"\s*:\s*(\d+)",  # llama.cpp's llama-server (its error JSON)
    r"available context size \((\d+)",  # llama.cpp's llama-server (the message)
    r"must be <= (\d+)",  # TGI: `inputs` tokens + `max_new_tokens` must be <= N
    r"must have less than (\d+) tokens",  # TGI: the prompt alone
)
_CONTEXT_WORDS = re.compile(r"context (window|length|size)|exceed_context|max_total_tokens", re.IGNORECASE)


def context_in_error(text: str) -> int | None:
    """The server's context named in an error text, 0 for a context error that names none,
    None for any other error."""
    for pattern in _CONTEXT_ERRORS:
        if found := re.search(pattern, text):
            return int(found.group(1))
    return 0 if _CONTEXT_WORDS.search(text) else None
