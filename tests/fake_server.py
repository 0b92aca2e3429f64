"""A small OpenAI-compatible server on 127.0.0.1, for the served-engine tests that run in CI.

It speaks the routes lm-eval's API models post to (``/v1/completions``,
``/v1/chat/completions``) and the ones lc-eval reads (``/v1/models``, ``/props``), records
every request body, and behaves like the servers it stands for in what matters to lc-eval:

* ``engine="vllm"``: reports ``max_model_len``, accepts token-id prompts, continues a final
  assistant message when asked (``continue_final_message``), 404 for a model it does not serve,
  and tokenizes a text prompt with the tokenizer's special tokens unless
  ``add_special_tokens: false``;
* ``engine="llama-cpp-python"``: reports no context, refuses token-id prompts (500), closes a
  final assistant message and opens a new turn, refuses a long prompt with its 400
  ("Requested tokens (N) exceed context window of M"), penalizes repeats unless
  ``repeat_penalty`` is 1.0 (a repeated digit of the pass key is lost), and tokenizes every text prompt with
  the tokenizer's special tokens (a BOS where the tokenizer adds one, as for a GGUF whose
  metadata says so), whatever the prompt starts with.

Its "model" is a reader of the prompt it renders: it answers the pass key it finds, if the
prompt ends with the answer prefix (the assistant turn continued); after a new assistant
turn it talks about pass keys instead, as SmolLM2 does.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHAT_TEMPLATE = ("{% for m in messages %}[{{ m['role'] | upper }}]\n{{ m['content'] }}\n[END]\n"
                 "{% endfor %}{% if add_generation_prompt %}[ASSISTANT]\n{% endif %}")


@dataclass
class FakeServer:
    tokenizer: object
    engine: str = "vllm"
    context: int = 4096
    models: tuple[str, ...] = ("served-model",)
    bodies: list = field(default_factory=list)

    def __post_init__(self):
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, route: str = "completions") -> str:
        return f"http://127.0.0.1:{self.port}/v1/{route}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def vllm(self) -> bool:
        return self.engine == "vllm"

    def prompts(self) -> list[str]:
        """The text of every generation request but the probes (one-token requests)."""
        return [self.render(b)[0] for b in self.bodies if b.get("max_tokens", 0) > 1]

    def render(self, body: dict) -> tuple[str, bool]:
        """(the prompt text the model reads, whether a token-id prompt was sent)."""
        if "messages" in body:
            continued = self.vllm and body.get("continue_final_message")
            return self.tokenizer.apply_chat_template(
                body["messages"], tokenize=False, add_generation_prompt=not continued,
                continue_final_message=bool(continued)), False
        prompt = body["prompt"]
        if isinstance(prompt, list):  # a batch of one, or token ids
            prompt = prompt[0] if len(prompt) == 1 and not isinstance(prompt[0], int) else prompt
        if isinstance(prompt, list):
            ids = prompt[0] if isinstance(prompt[0], list) else prompt
            return self.tokenizer.decode(ids), True
        return prompt, False

    def answer(self, body: dict) -> tuple[int, dict]:
        if self.vllm and body.get("model") not in self.models:
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                   "type": "NotFoundError", "code": 404}}
        text, ids = self.render(body)
        if ids and not self.vllm:
            return 500, {"error": {"message": "'list' object has no attribute 'encode'",
                                   "type": "internal_server_error"}}
        # a text prompt gets the tokenizer's special tokens (vLLM: unless add_special_tokens is
        # false); a chat prompt's template holds its own
        special = "prompt" in body and not ids and (
            body.get("add_special_tokens", True) if self.vllm else True)
        n = len(self.tokenizer(text, add_special_tokens=special)["input_ids"])
        if n >= self.context:
            return 400, {"error": {"message": f"Requested tokens ({n}) exceed context window "
                                              f"of {self.context}", "type": "invalid_request"}}
        if text.rstrip().endswith("The pass key is"):
            key = re.search(r"The pass key is (\d+)\.", text)
            out = f" {key.group(1)}." if key else " unknown."
            if not self.vllm and body.get("repeat_penalty", 1.1) != 1.0:
                out = re.sub(r"(\d)\1+", r"\1", out)  # its default penalty: no repeated digit
        else:
            out = "The pass key is a special type of password."
        usage = {"prompt_tokens": n, "completion_tokens": 3, "total_tokens": n + 3}
        choice = ({"index": 0, "message": {"role": "assistant", "content": out}}
                  if "messages" in body else {"index": 0, "text": out})
        return 200, {"choices": [choice], "usage": usage}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"  # keep-alive, as aiohttp expects of a real server

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            entry = {"id": self.fake.models[0], "object": "model",
                     "owned_by": "vllm" if self.fake.vllm else "me"}
            if self.fake.vllm:
                entry["max_model_len"] = self.fake.context
            return self._send(200, {"object": "list", "data": [entry]})
        return self._send(404, {"detail": "Not Found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path not in ("/v1/completions", "/v1/chat/completions"):
            return self._send(404, {"detail": "Not Found"})
        self.fake.bodies.append(body)
        self._send(*self.fake.answer(body))
