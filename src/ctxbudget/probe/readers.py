"""Who answers a probe, and how a reply is graded.

A reader gets the exact request a policy sent at the probe's call plus the question as a
final user message, and replies with text. Two readers:

- :class:`OfflineReader`, the *offline stand-in reader*: it answers only from text present
  in the context. It replies with the known answer when every evidence line of the probe
  (the line that holds the answer) is in the request's text, normalized; else ``unknown``.
  It measures what a policy kept, not what a model makes of it: an upper bound for a reader
  that reads perfectly.
- :class:`ModelReader`: a real model through the ``openai`` or ``anthropic`` SDK client the
  caller passes in (this module does no I/O of its own; the client does).

Grading (:func:`grade`) is a normalized match: the known answer, lowercased with
punctuation as spaces and whitespace collapsed, contained word-aligned in the reply.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Protocol

from ctxbudget.errors import ProviderError
from ctxbudget.probe.facts import Probe
from ctxbudget.probe.views import StepView, body_text

__all__ = [
    "OFFLINE_LABEL",
    "Answer",
    "ModelReader",
    "OfflineReader",
    "Reader",
    "grade",
    "normalize",
    "with_question",
]

OFFLINE_LABEL = "offline stand-in reader (answers only from text present in the context)"
INSTRUCTION = (
    "Answer from the conversation above only. Reply with the answer alone, verbatim as it "
    "appeared, or with the single word unknown if the conversation does not show it."
)
ANSWER_TOKENS = 200
"""``max_tokens`` of a model's answer."""
_PUNCT = re.compile(r"[^\w]+")
_SDKS = ("openai", "anthropic", "httpx")
"""Packages whose exceptions are the provider's answer (made :class:`ProviderError`)."""


def normalize(text: str) -> str:
    """Lowercase, punctuation as spaces, whitespace collapsed (``_`` is kept)."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def grade(reply: str, answer: str) -> bool:
    """Whether the normalized ``answer`` occurs in the normalized ``reply``, word-aligned."""
    want = normalize(answer)
    return bool(want) and f" {want} " in f" {normalize(reply)} "


@dataclass(frozen=True, slots=True)
class Answer:
    """A reader's reply and what asking cost."""

    text: str
    input_tokens: int
    output_tokens: int = 0
    calls: int = 0
    """Provider calls made (0 for the offline reader)."""


class Reader(Protocol):
    label: str

    def answer(self, probe: Probe, view: StepView) -> Answer: ...


class OfflineReader:
    """Answers when the probe's evidence lines are in the request's text (normalized)."""

    label = OFFLINE_LABEL

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}

    def answer(self, probe: Probe, view: StepView) -> Answer:
        key = id(view.body)
        text = self._texts.get(key)
        if text is None:
            text = f" {normalize(body_text(view.body))} "
            self._texts = {key: text}  # probes of one view come together: keep one
        found = all(f" {normalize(e)} " in text for e in probe.evidence)
        return Answer(probe.answer if found else "unknown", input_tokens=view.tokens)


def with_question(body: dict[str, Any], fmt: str, question: str, model: str) -> dict[str, Any]:
    """``body`` with the question as a final user message, for ``model``, tools offered but
    not to be called, and a short answer."""
    out = copy.deepcopy(body)
    out["model"] = model
    text = f"{INSTRUCTION}\n\n{question}"
    messages: list[dict[str, Any]] = out.setdefault("messages", [])
    if fmt == "anthropic":
        last = messages[-1] if messages else None
        if last is not None and last.get("role") == "user":
            content = last["content"]
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            last["content"] = [*content, {"type": "text", "text": text}]
        else:
            messages.append({"role": "user", "content": text})
        out["max_tokens"] = ANSWER_TOKENS
        if out.get("tools"):
            out["tool_choice"] = {"type": "none"}
    else:
        messages.append({"role": "user", "content": text})
        out.pop("max_tokens", None)
        out["max_completion_tokens"] = ANSWER_TOKENS
        if out.get("tools"):
            out["tool_choice"] = "none"
    out.pop("stream", None)
    return out


class ModelReader:
    """A real model: ``client`` is an ``openai.OpenAI`` (any OpenAI-compatible endpoint)
    or an ``anthropic.Anthropic``, matching the views' wire format."""

    def __init__(self, client: Any, model: str) -> None:
        self.client, self.model = client, model
        self.label = f"model {model}"

    def answer(self, probe: Probe, view: StepView) -> Answer:
        body = with_question(view.body, view.format, probe.question, self.model)
        try:
            if view.format == "anthropic":
                message = self.client.messages.create(**body)
                text = "".join(getattr(b, "text", "") for b in message.content)
                used = message.usage
                return Answer(text, used.input_tokens, used.output_tokens, calls=1)
            reply = self.client.chat.completions.create(**body)
        except Exception as exc:  # the SDKs' errors, translated once here
            if type(exc).__module__.split(".")[0] in _SDKS:
                status = getattr(exc, "status_code", None)
                where = f" (HTTP {status})" if status is not None else ""
                raise ProviderError(
                    f"the model's provider refused a probe{where}: {exc}; probing stopped"
                ) from exc
            raise
        text = (reply.choices[0].message.content or "") if reply.choices else ""
        usage = reply.usage
        tokens_in = usage.prompt_tokens if usage is not None else view.tokens
        tokens_out = usage.completion_tokens if usage is not None else 0
        return Answer(text, tokens_in, tokens_out, calls=1)
