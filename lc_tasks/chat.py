"""Prompts as the model reads them: plain, or wrapped in the tokenizer's chat template.

Every family's template ends with its question and an answer prefix ("... What is the pass
key? The pass key is"). ``split_template`` marks the boundary between the two with
:data:`ANSWER`, and a :class:`Frame` turns a generated prompt into the text lm-eval will send:

* **plain** (``PLAIN``): the mark becomes the space it always was, so plain prompts are
  byte-identical to those of lc-eval before chat support (lm-eval puts a
  ``--system_instruction`` right before a plain prompt; ``Frame(system=...)`` counts it);
* **chat** (``Frame(tokenizer, system)``): the prompt before the mark is the user turn, the
  answer prefix starts the assistant turn, and the tokenizer's chat template renders both, as
  lm-eval's ``--apply_chat_template`` does with a task's ``gen_prefix`` (its
  ``continue_final_message`` path). The sizing counts the tokens of that rendered text, so the
  templated prompt plus ``max_gen_toks`` fits the task's length.

The doc then holds the user turn as ``input`` and the answer prefix as ``gen_prefix`` (empty
for plain docs, which lm-eval then sends unchanged).

>>> PLAIN.text("Q?" + ANSWER + "A is"), PLAIN.record("Q?" + ANSWER + "A is")
('Q? A is', ('Q? A is', ''))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import jinja2

from lc_tasks.errors import UsageError

__all__ = ["ANSWER", "PLAIN", "Frame", "check_sized", "frame_for"]

# Between a template's question and its answer prefix (a space in plain prompts).
ANSWER = "\x00ANSWER\x00"
_SLOT = "\x00USER\x00"


@dataclass(frozen=True)
class Frame:
    """How a generated prompt (with one :data:`ANSWER` mark) becomes the model's text.

    ``tokenizer`` None is a plain frame. ``system`` is the system turn (lm-eval's
    ``--system_instruction``), ``template_args`` the extra arguments of
    ``apply_chat_template`` (``hf``'s ``chat_template_args`` and ``enable_thinking``).
    """

    tokenizer: Any = None
    system: str | None = None
    template_args: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def chat(self) -> bool:
        return self.tokenizer is not None

    def split(self, prompt: str) -> tuple[str, str]:
        """``(user turn, answer prefix)`` of a generated prompt."""
        if prompt.count(ANSWER) != 1:
            raise ValueError("a prompt must hold the answer mark exactly once (its template "
                             "needs {{ answer_sep }} between the question and the answer prefix)")
        user, prefix = prompt.split(ANSWER)
        return user, prefix

    def text(self, prompt: str) -> str:
        """The text lm-eval sends for ``prompt``: plain, or rendered by the chat template."""
        if ANSWER not in prompt:
            return prompt  # a document scored as it is (lc_ppl), or a piece of a prompt
        if not self.chat:
            return (self.system or "") + prompt.replace(ANSWER, " ")
        return self._render(*self.split(prompt))

    def offset(self, prompt: str) -> int:
        """Where the prompt's first character sits in :meth:`text` (the template's head)."""
        if ANSWER not in prompt:
            return 0
        if not self.chat:
            return len(self.system or "")
        return len(self._head(self.split(prompt)[1]))

    def record(self, prompt: str) -> tuple[str, str]:
        """``(input, gen_prefix)`` of the doc: what lm-eval's task config reads."""
        if not self.chat:
            return prompt.replace(ANSWER, " "), ""
        user, prefix = self.split(prompt)
        if not self._render(user, prefix).startswith(self._head(prefix) + user):
            # a template that edits the message text (e.g. strips or escapes it): the sized
            # text would not be what lm-eval sends
            raise UsageError("the tokenizer's chat template changes the text of the user turn, "
                             "so lc-eval cannot size prompts for it; run without "
                             "--apply_chat_template or pass tokenizer=<another tokenizer>")
        return user, prefix

    def _head(self, prefix: str) -> str:
        """The rendered text before the user turn's content."""
        return self._render(_SLOT, prefix).split(_SLOT)[0]

    def _render(self, user: str, prefix: str) -> str:
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": prefix}]
        if self.system:
            messages.insert(0, {"role": "system", "content": self.system})
        try:
            return self._apply(messages)
        except jinja2.exceptions.TemplateError:
            if not self.system:
                raise
            # lm-eval's hf does the same: a template without a system role drops it
            return self._apply(messages[1:])

    def _apply(self, messages: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=False, continue_final_message=True,
            **self.template_args)


PLAIN = Frame()


def frame_for(spec, tokenizer: Any, name: str = "the tokenizer") -> Frame:
    """The frame a task spec asks for (``spec.chat_template``), checked against the tokenizer."""
    if not spec.chat_template:
        return Frame(system=spec.system_instruction) if spec.system_instruction else PLAIN
    if not getattr(tokenizer, "chat_template", None):
        raise UsageError(f"{name} has no chat template, so --apply_chat_template cannot apply "
                         "one; run without it, or pass tokenizer=<a tokenizer with a chat "
                         "template>")
    return Frame(tokenizer, spec.system_instruction or None, spec.chat_template_args)


def check_sized(n_tokens: int, max_gen_toks: int, doc: Any) -> None:
    """Refuse a request of one of our docs that lm-eval made longer than the doc was sized
    for (a chat template, a system instruction or few-shot examples the task was not told
    of): it would run past the task's length, the answer prefix stuck in the user turn.

    >>> check_sized(1000, 16, {"family": "passkey", "length": 1024})
    >>> check_sized(1030, 16, {"family": "passkey", "length": 1024})
    Traceback (most recent call last):
    ...
    lc_tasks.errors.UsageError: lc_passkey at 1024 tokens: lm-eval sent a prompt of 1030 tokens ...
    """
    if not isinstance(doc, dict) or "family" not in doc or not isinstance(doc.get("length"), int):
        return  # not one of ours
    if n_tokens + max_gen_toks > doc["length"]:
        raise UsageError(
            f"lc_{doc['family']} at {doc['length']} tokens: lm-eval sent a prompt of {n_tokens} "
            f"tokens (+ {max_gen_toks} to generate), longer than the doc was sized for: a chat "
            "template or system instruction the task was not told of; add --metadata "
            "'{\"chat_template\": true}' (and \"system_instruction\", if you give one), or use "
            "lc-eval run, which passes them on")
