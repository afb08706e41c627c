"""What differs between the wrapped APIs: request keys, replies, usage, errors, streams.

One adapter per API (OpenAI Chat Completions, OpenAI Responses, Anthropic Messages). The
wrapper's driver is shared; everything provider-specific, including which SDK errors are
transient and which mean "context too long", is decided here, in one place per provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ctxbudget.billing.usage import (
    Usage,
    as_plain,
    usage_from_anthropic,
    usage_from_openai_chat,
    usage_from_openai_responses,
)
from ctxbudget.convert.request import Format, requested_output
from ctxbudget.engine.request import Provider
from ctxbudget.errors import UsageError

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Collector",
    "ErrorKind",
    "classify_error",
    "is_overflow",
    "provider_limits",
    "shrunk_limit",
]

ErrorKind = Literal["transient", "overflow", "fatal"]

_TRANSIENT_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}
_TRANSIENT_NAMES = {"APIConnectionError", "APITimeoutError", "RateLimitError", "OverloadedError"}
_OVERFLOW = re.compile(
    r"context_length_exceeded|maximum context length|prompt is too long|"
    r"exceed(?:s|ed)? (?:the )?context (?:window|limit)|input length and `?max_tokens`? exceed",
    re.IGNORECASE,
)
_OVERFLOW_SHRINK = 0.8
"""Share of its own count a retried request may have when the provider gave no numbers."""
_ANTHROPIC_SIZES = re.compile(r"(\d[\d,]*) tokens > (\d[\d,]*) maximum")
_OPENAI_SIZES = re.compile(
    r"maximum context length is (\d[\d,]*) tokens\. However, your messages resulted in "
    r"(\d[\d,]*) tokens"
)


def classify_error(exc: BaseException) -> ErrorKind:
    """Whether an SDK error is worth a retry, means the request was too long, or is final."""
    status = getattr(exc, "status_code", None)
    text = f"{getattr(exc, 'code', '') or ''} {exc}"
    if is_overflow(status, text):
        return "overflow"
    if status in _TRANSIENT_STATUS or type(exc).__name__ in _TRANSIENT_NAMES:
        return "transient"
    return "fatal"


def is_overflow(status: int | None, text: str) -> bool:
    """Whether an error response (status, body or message text) says the input was too long."""
    return status in (400, 413) and _OVERFLOW.search(text) is not None


def provider_limits(exc: BaseException | str) -> tuple[int | None, int | None]:
    """(input tokens the provider counted, its maximum), as far as its message says."""
    text = str(exc)
    match = _ANTHROPIC_SIZES.search(text)
    if match is not None:
        return _int(match.group(1)), _int(match.group(2))
    match = _OPENAI_SIZES.search(text)
    if match is not None:
        return _int(match.group(2)), _int(match.group(1))
    return None, None


def shrunk_limit(
    manager: ContextManager, error: BaseException | str, options: Mapping[str, Any]
) -> int:
    """A tighter input limit after the provider said the last prepared request of
    ``manager`` was too long (``error``: its exception or message)."""
    report = manager.last_report
    ours = report.input_tokens.tokens if report is not None else manager.total()
    theirs, maximum = provider_limits(error)
    if theirs is None or theirs <= 0:
        return max(int(ours * _OVERFLOW_SHRINK), 1)
    # the provider counts differently: calibrate (estimated models), then aim under its
    # maximum (less the output it was asked for) in its own tokens
    manager.accountant.observe_billed(theirs)
    scale = min(ours / theirs, 1.0)
    limit = int(ours * _OVERFLOW_SHRINK * scale)
    if maximum is not None:
        reserve = manager.accountant.ledger.allocation.output_reserve
        output = requested_output(options, reserve)
        limit = min(limit, int((maximum - output) * 0.95))
    return max(limit, 1)


def _int(digits: str) -> int:
    return int(digits.replace(",", ""))


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait (``retry-after-ms`` / ``retry-after``), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms") is not None:
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after") is not None:
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None


@dataclass(slots=True)
class Collector:
    """Rebuilds the reply and usage of a streamed response from its events."""

    adapter: Adapter
    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    blocks: dict[int, dict[str, Any]] = field(default_factory=dict)
    partial: dict[int, list[str]] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    final: Any = None
    """A complete response carried by the stream (Responses' ``response.completed``)."""
    stopped: bool = False
    """The stream's closing event was seen (the reply is whole even if the stream is not
    read to its end)."""

    def feed(self, event: Any) -> None:
        """Take in one streamed event (SDK model or dict)."""
        self.adapter.feed(self, as_plain(event))

    def result(self) -> tuple[list[dict[str, Any]], Usage | None]:
        """The reply messages and the billed usage (None if the stream carried none)."""
        return self.adapter.collected(self)


class Adapter:
    """Base: one wrapped API."""

    format: Format
    provider: Provider
    messages_key = "messages"

    def split(self, kwargs: Mapping[str, Any]) -> tuple[list[Any], Any, Any, dict[str, Any]]:
        """(messages, system, tools, other options) of the caller's call."""
        rest = dict(kwargs)
        messages = rest.pop(self.messages_key, None)
        if messages is None:
            raise UsageError(f"the call has no {self.messages_key!r}; nothing to manage")
        return list(messages), None, rest.pop("tools", None), rest

    def reply(self, response: Any) -> list[dict[str, Any]]:
        """The assistant message(s) of a response, in this API's wire format."""
        raise NotImplementedError

    def usage(self, response: Any) -> Usage:
        """The billed usage of a response."""
        raise NotImplementedError

    def prepare_stream(self, options: dict[str, Any]) -> bool:
        """Adjust options for streaming; True when an extra usage event must be hidden."""
        return False

    def hide(self, event: Any) -> bool:
        """Whether an event exists only because the wrapper asked for usage."""
        return False

    def feed(self, c: Collector, event: Any) -> None:
        raise NotImplementedError

    def collected(self, c: Collector) -> tuple[list[dict[str, Any]], Usage | None]:
        raise NotImplementedError


class ChatAdapter(Adapter):
    """OpenAI Chat Completions."""

    format: Format = "openai_chat"
    provider: Provider = "openai"

    def reply(self, response: Any) -> list[dict[str, Any]]:
        data = as_plain(response)
        message = dict(data["choices"][0]["message"])
        return [_chat_message(message)]

    def usage(self, response: Any) -> Usage:
        return usage_from_openai_chat(as_plain(response).get("usage"))

    def prepare_stream(self, options: dict[str, Any]) -> bool:
        stream_options = dict(options.get("stream_options") or {})
        hidden = not stream_options.get("include_usage")
        stream_options["include_usage"] = True
        options["stream_options"] = stream_options
        return hidden

    def hide(self, event: Any) -> bool:
        data = as_plain(event)
        return not data.get("choices") and data.get("usage") is not None

    def feed(self, c: Collector, event: Any) -> None:
        if event.get("usage"):
            c.usage = event["usage"]
            c.stopped = True  # the usage chunk comes last
        for choice in event.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                c.text.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                slot = c.calls.setdefault(
                    call.get("index", 0),
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""

    def collected(self, c: Collector) -> tuple[list[dict[str, Any]], Usage | None]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(c.text) or None}
        if c.calls:
            message["tool_calls"] = [c.calls[i] for i in sorted(c.calls)]
        usage = usage_from_openai_chat(c.usage) if c.usage else None
        return [_chat_message(message)], usage


class ResponsesAdapter(Adapter):
    """OpenAI Responses."""

    format: Format = "openai_responses"
    provider: Provider = "openai_responses"
    messages_key = "input"

    def split(self, kwargs: Mapping[str, Any]) -> tuple[list[Any], Any, Any, dict[str, Any]]:
        rest = dict(kwargs)
        for key in ("previous_response_id", "conversation"):
            if rest.get(key) is not None:
                raise UsageError(
                    f"{key!r} keeps the context on OpenAI's servers, where ctxbudget cannot "
                    "manage it; send the whole conversation as 'input' instead"
                )
        raw = rest.pop("input", None)
        if raw is None:
            raise UsageError("the call has no 'input'; nothing to manage")
        messages = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw)
        return messages, rest.pop("instructions", None), rest.pop("tools", None), rest

    def reply(self, response: Any) -> list[dict[str, Any]]:
        return [dict(item) for item in as_plain(response).get("output") or ()]

    def usage(self, response: Any) -> Usage:
        return usage_from_openai_responses(as_plain(response).get("usage"))

    def feed(self, c: Collector, event: Any) -> None:
        if event.get("type") == "response.completed":
            c.final = event.get("response")
            c.stopped = True

    def collected(self, c: Collector) -> tuple[list[dict[str, Any]], Usage | None]:
        if c.final is None:
            return [], None
        return self.reply(c.final), self.usage(c.final)


class MessagesAdapter(Adapter):
    """Anthropic Messages."""

    format: Format = "anthropic"
    provider: Provider = "anthropic"

    def split(self, kwargs: Mapping[str, Any]) -> tuple[list[Any], Any, Any, dict[str, Any]]:
        messages, _, tools, rest = super().split(kwargs)
        return messages, rest.pop("system", None), tools, rest

    def reply(self, response: Any) -> list[dict[str, Any]]:
        data = as_plain(response)
        return [{"role": "assistant", "content": [_block(b) for b in data.get("content") or ()]}]

    def usage(self, response: Any) -> Usage:
        return usage_from_anthropic(as_plain(response).get("usage"))

    def feed(self, c: Collector, event: Any) -> None:
        kind = event.get("type")
        if kind == "message_start":
            c.usage = dict((event.get("message") or {}).get("usage") or {})
        elif kind == "content_block_start":
            c.blocks[event["index"]] = dict(event.get("content_block") or {})
            c.partial[event["index"]] = []
        elif kind == "content_block_delta":
            _delta(c, event["index"], event.get("delta") or {})
        elif kind == "message_delta":
            usage = event.get("usage") or {}
            c.usage.update({k: v for k, v in usage.items() if v is not None})
        elif kind == "message_stop":
            c.stopped = True

    def collected(self, c: Collector) -> tuple[list[dict[str, Any]], Usage | None]:
        content = []
        for index in sorted(c.blocks):
            block = c.blocks[index]
            if block.get("type") in ("tool_use", "server_tool_use"):
                raw = "".join(c.partial.get(index, ()))
                block["input"] = json.loads(raw) if raw else block.get("input") or {}
            content.append(_block(block))
        usage = usage_from_anthropic(c.usage) if c.usage else None
        return [{"role": "assistant", "content": content}], usage


def _delta(c: Collector, index: int, delta: Mapping[str, Any]) -> None:
    block = c.blocks.setdefault(index, {"type": "text", "text": ""})
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta.get("text", "")
    elif kind == "input_json_delta":
        c.partial.setdefault(index, []).append(delta.get("partial_json", ""))
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
    elif kind == "signature_delta":
        block["signature"] = block.get("signature", "") + delta.get("signature", "")


def _block(block: Mapping[str, Any]) -> dict[str, Any]:
    """A response content block as request input (response-only fields dropped)."""
    out = {k: v for k, v in block.items() if k not in ("citations", "caller") or v}
    if out.get("type") == "text":
        return {"type": "text", "text": out.get("text", "")}
    return out


def _chat_message(message: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions reply as a request message (response-only fields dropped)."""
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {
                    "name": call["function"]["name"],
                    "arguments": call["function"].get("arguments") or "",
                },
            }
            for call in message["tool_calls"]
        ]
    if message.get("refusal"):
        out["refusal"] = message["refusal"]
    return out


ADAPTERS: dict[str, Adapter] = {
    "chat": ChatAdapter(),
    "responses": ResponsesAdapter(),
    "messages": MessagesAdapter(),
}
