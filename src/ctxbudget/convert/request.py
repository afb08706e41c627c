"""Whole request bodies: detect the wire format, read them into items and write them back.

Only the conversation, the tools and the model are interpreted; every other top-level
key (``max_tokens``, ``temperature``, ``stream``...) is kept verbatim in ``options``, as
are keys whose value carries nothing to convert (``"tools": []``, ``"system": null``), so
``write_request(read_request(body)) == body``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ctxbudget.convert._wire import Json, as_object, fail
from ctxbudget.convert.anthropic import (
    from_anthropic,
    from_anthropic_tools,
    to_anthropic,
    to_anthropic_tools,
)
from ctxbudget.convert.openai_chat import (
    from_openai_chat,
    from_openai_chat_tools,
    to_openai_chat,
    to_openai_chat_tools,
)
from ctxbudget.convert.openai_responses import (
    from_openai_responses,
    from_openai_responses_tools,
    to_openai_responses,
    to_openai_responses_tools,
)
from ctxbudget.errors import ConversionError
from ctxbudget.session.items import Item, ToolSpec

__all__ = [
    "Format",
    "Request",
    "detect_format",
    "has_anthropic_blocks",
    "has_anthropic_tools",
    "read_request",
    "read_tools",
    "requested_output",
    "write_request",
]

OUTPUT_OPTIONS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
"""Request options that cap the output, one per API (Anthropic and legacy Chat, Chat,
Responses)."""

Format = Literal["openai_chat", "openai_responses", "anthropic"]
"""A wire format: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages."""

_ANTHROPIC_BLOCKS = {"tool_use", "tool_result", "thinking", "redacted_thinking"}


def _no_options() -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A provider request body, read into the neutral model."""

    format: Format
    """The wire format it was read from (and is written in)."""
    items: tuple[Item, ...]
    """The conversation, system prompt included, in order."""
    tools: tuple[ToolSpec, ...] = ()
    """Tools offered to the model."""
    model: str | None = None
    """The model name, if the body had one."""
    options: dict[str, Any] = field(default_factory=_no_options)
    """Every other top-level key, verbatim."""


def detect_format(body: Mapping[str, Any]) -> Format:
    """The wire format of a request body; plain ``messages`` count as OpenAI chat."""
    if not isinstance(body, Mapping):
        fail("expected a request body object", "request")
    if "input" in body or "instructions" in body:
        return "openai_responses"
    if "messages" not in body:
        fail(
            "cannot tell the wire format: expected 'messages' (OpenAI chat, Anthropic) or "
            "'input' (OpenAI Responses); pass format=... to say which",
            "request",
        )
    if "system" in body or has_anthropic_tools(body.get("tools")):
        return "anthropic"
    return "anthropic" if has_anthropic_blocks(body.get("messages")) else "openai_chat"


def has_anthropic_tools(tools: Any) -> bool:
    """Whether tool schemas are Anthropic's (``input_schema``)."""
    return isinstance(tools, list | tuple) and any(
        isinstance(t, Mapping) and "input_schema" in t for t in tools
    )


def read_tools(tools: Sequence[Mapping[str, Any] | ToolSpec]) -> list[ToolSpec]:
    """Tool specs from OpenAI Chat, OpenAI Responses or Anthropic schemas (or specs as they
    are); a mix of specs and dicts is a ConversionError."""
    specs = [t for t in tools if isinstance(t, ToolSpec)]
    if len(specs) == len(tools):
        return specs
    if specs:
        raise ConversionError("pass either ToolSpec objects or tool schema dicts, not both")
    dicts = [t for t in tools if not isinstance(t, ToolSpec)]
    if any(isinstance(t, Mapping) and "function" not in t and "parameters" in t for t in dicts):
        return from_openai_responses_tools(dicts)
    if has_anthropic_tools(dicts):
        return from_anthropic_tools(dicts)
    return from_openai_chat_tools(dicts)


def has_anthropic_blocks(messages: Any) -> bool:
    """Whether messages carry content blocks only Anthropic's format has."""
    if not isinstance(messages, list | tuple):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        for block in content if isinstance(content, list | tuple) else ():
            if not isinstance(block, Mapping):
                continue
            kind = block.get("type")
            if kind in _ANTHROPIC_BLOCKS or (kind in ("image", "document") and "source" in block):
                return True
    return False


def _take(body: Json, key: str, *, keep_empty: bool = True) -> Any:
    """Pop a key whose value is worth converting; null (and empty lists) stay in options."""
    value = body.get(key)
    if value is None or (not keep_empty and isinstance(value, list | tuple) and not value):
        return None
    return body.pop(key)


def read_request(
    body: Mapping[str, Any], *, format: Format | None = None, id_prefix: str = "m"
) -> Request:
    """Read a whole request body (format detected unless given) into a :class:`Request`."""
    fmt = format if format is not None else detect_format(body)
    if fmt not in get_args(Format):
        fail(f"unknown format {fmt!r}; expected one of {', '.join(get_args(Format))}", "format")
    rest = as_object(body, "request")
    model = rest.pop("model") if isinstance(rest.get("model"), str) else None
    raw_tools = _take(rest, "tools", keep_empty=False)
    items: list[Item]
    if fmt == "openai_chat":
        items = from_openai_chat(rest.pop("messages", None), id_prefix=id_prefix)
        tools = from_openai_chat_tools(raw_tools) if raw_tools is not None else []
    elif fmt == "anthropic":
        system = _take(rest, "system", keep_empty=False)
        messages = rest.pop("messages", None)
        items = from_anthropic(messages, system=system, id_prefix=id_prefix)
        tools = from_anthropic_tools(raw_tools) if raw_tools is not None else []
    else:
        instructions = _take(rest, "instructions")
        raw_input = _take(rest, "input", keep_empty=False)
        items = from_openai_responses(
            raw_input if raw_input is not None else [],
            instructions=instructions,
            id_prefix=id_prefix,
        )
        tools = from_openai_responses_tools(raw_tools) if raw_tools is not None else []
    options = deepcopy(rest)  # never shared with the caller's body
    return Request(format=fmt, items=tuple(items), tools=tuple(tools), model=model, options=options)


def write_request(request: Request) -> Json:
    """The request body of ``request`` in its ``format``; exact inverse of :func:`read_request`.

    To send a conversation to another provider, ``dataclasses.replace`` the format (and
    adapt ``options``, which are written verbatim).
    """
    body: Json = {}
    if request.model is not None:
        body["model"] = request.model
    items = list(request.items)
    if request.format == "openai_chat":
        body["messages"] = to_openai_chat(items)
        tools = to_openai_chat_tools(request.tools)
    elif request.format == "anthropic":
        system, body["messages"] = to_anthropic(items)
        if system is not None:
            body["system"] = system
        tools = to_anthropic_tools(request.tools)
    elif request.format == "openai_responses":
        instructions, raw_input = to_openai_responses(items)
        if instructions is not None:
            body["instructions"] = instructions
        if isinstance(raw_input, str) or raw_input:
            body["input"] = raw_input
        tools = to_openai_responses_tools(request.tools)
    else:
        fail(f"unknown format {request.format!r}", "format")
    if tools:
        body["tools"] = tools
    for key, value in request.options.items():
        body.setdefault(key, deepcopy(value))
    return body


def requested_output(options: Mapping[str, Any], default: int) -> int:
    """The most output tokens a request with these options asks for (``default`` when no
    option caps it)."""
    return next((options[k] for k in OUTPUT_OPTIONS if isinstance(options.get(k), int)), default)
