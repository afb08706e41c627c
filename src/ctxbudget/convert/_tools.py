"""Tool schemas of each wire format ⇄ :class:`ToolSpec`.

Function tools map to name, description and JSON Schema; every other field stays in
``provider_details`` (``strict``, ``cache_control``). Built-in tools (web search, bash,
custom grammars...) are kept whole and only render back to their own provider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from copy import deepcopy
from typing import Any

from ctxbudget.convert._wire import (
    Json,
    as_array,
    as_object,
    details,
    fail,
    is_opaque,
    item_details,
    merge,
    own,
    pop_opt_str,
    pop_str,
)
from ctxbudget.session.items import ToolSpec

__all__ = [
    "from_anthropic_tools",
    "from_openai_chat_tools",
    "from_openai_responses_tools",
    "to_anthropic_tools",
    "to_openai_chat_tools",
    "to_openai_responses_tools",
]

_CHAT = "openai_chat"
_RESPONSES = "openai_responses"
_ANTHROPIC = "anthropic"


# -- openai_chat --


def from_openai_chat_tools(tools: Sequence[Mapping[str, Any]]) -> list[ToolSpec]:
    """Tool specs for OpenAI chat ``tools``; non-function tools are kept whole."""
    specs: list[ToolSpec] = []
    for i, raw in enumerate(as_array(tools, "tools")):
        path = f"tools[{i}]"
        tool = as_object(raw, path)
        if tool.get("type") != "function" or not isinstance(tool.get("function"), Mapping):
            specs.append(_opaque_tool(tool, path))
            continue
        del tool["type"]
        fpath = f"{path}.function"
        fn = as_object(tool.pop("function"), fpath)
        name = pop_str(fn, "name", fpath)
        description = pop_opt_str(fn, "description", fpath)
        has_parameters = "parameters" in fn
        parameters = as_object(fn.pop("parameters", {}), f"{fpath}.parameters")
        hints = {"outer": tool or None, "parameters": "empty" if has_parameters else None}
        if parameters:
            hints["parameters"] = None
        specs.append(
            ToolSpec(
                name=name,
                description=description,
                parameters=deepcopy(parameters),
                provider_details=details(_CHAT, fn, fpath, **hints),
            )
        )
    return specs


def _opaque_tool(tool: Json, path: str) -> ToolSpec:
    kind = tool.get("type")
    inner = tool.get(kind) if isinstance(kind, str) else None
    name = tool.get("name") or (inner.get("name") if isinstance(inner, Mapping) else None) or kind
    if not isinstance(name, str):
        fail("expected a tool with a 'type' (e.g. 'function')", path)
    return ToolSpec(name=name, provider_details=details(_CHAT, tool, path, opaque=True))


def to_openai_chat_tools(specs: Sequence[ToolSpec]) -> list[Json]:
    """OpenAI chat ``tools`` for tool specs; exact inverse of :func:`from_openai_chat_tools`."""
    out: list[Json] = []
    for i, spec in enumerate(specs):
        flat, hints = own(spec.provider_details, _CHAT)
        if hints.get("opaque"):
            out.append(flat)
            continue
        if is_opaque(spec.provider_details):
            fail(f"tool {spec.name!r} is a built-in tool of another provider", f"tools[{i}]")
        fn: Json = {"name": spec.name}
        if spec.description is not None:
            fn["description"] = spec.description
        if spec.parameters or hints.get("parameters") == "empty":
            fn["parameters"] = deepcopy(spec.parameters)
        out.append(merge({"type": "function", "function": merge(fn, flat)}, hints.get("outer")))
    return out


# -- openai_responses --


def from_openai_responses_tools(tools: Sequence[Mapping[str, Any]]) -> list[ToolSpec]:
    """Tool specs for Responses ``tools``; built-in tools (web search...) are kept whole."""
    specs: list[ToolSpec] = []
    for i, raw in enumerate(as_array(tools, "tools")):
        path = f"tools[{i}]"
        tool = as_object(raw, path)
        if tool.get("type") != "function":
            name = tool.get("name", tool.get("type"))
            if not isinstance(name, str):
                fail("expected a tool with a 'type' (e.g. 'function')", path)
            specs.append(
                ToolSpec(
                    name=name, provider_details=item_details(_RESPONSES, tool, path, opaque=True)
                )
            )
            continue
        del tool["type"]
        name = pop_str(tool, "name", path)
        description = pop_opt_str(tool, "description", path)
        parameters: Json = {}
        if "parameters" not in tool:
            hint: str | None = "absent"
        elif tool["parameters"] is None:
            del tool["parameters"]
            hint = "null"
        else:
            parameters = as_object(tool.pop("parameters"), f"{path}.parameters")
            hint = None if parameters else "empty"
        specs.append(
            ToolSpec(
                name=name,
                description=description,
                parameters=deepcopy(parameters),
                provider_details=item_details(_RESPONSES, tool, path, parameters=hint),
            )
        )
    return specs


def to_openai_responses_tools(specs: Sequence[ToolSpec]) -> list[Json]:
    """Responses ``tools`` for tool specs; exact inverse of :func:`from_openai_responses_tools`."""
    out: list[Json] = []
    for i, spec in enumerate(specs):
        flat, hints = own(spec.provider_details, _RESPONSES)
        if hints.get("opaque"):
            out.append(flat)
            continue
        if is_opaque(spec.provider_details):
            fail(f"tool {spec.name!r} is a built-in tool of another provider", f"tools[{i}]")
        tool: Json = {"type": "function", "name": spec.name}
        if spec.description is not None:
            tool["description"] = spec.description
        form = hints.get("parameters")
        if spec.parameters or form is None:
            tool["parameters"] = deepcopy(spec.parameters) or {"type": "object", "properties": {}}
        elif form != "absent":
            tool["parameters"] = None if form == "null" else {}
        out.append({**tool, **flat})
    return out


# -- anthropic --


def from_anthropic_tools(tools: Sequence[Mapping[str, Any]]) -> list[ToolSpec]:
    """Tool specs for Anthropic ``tools``; built-in tools (no ``input_schema``) are kept whole."""
    specs: list[ToolSpec] = []
    for i, raw in enumerate(as_array(tools, "tools")):
        path = f"tools[{i}]"
        tool = as_object(raw, path)
        if "input_schema" not in tool:
            name = tool.get("name", tool.get("type"))
            if not isinstance(name, str):
                fail("expected a tool with a 'name' and an 'input_schema'", path)
            specs.append(
                ToolSpec(name=name, provider_details=details(_ANTHROPIC, tool, path, opaque=True))
            )
            continue
        name = pop_str(tool, "name", path)
        description = pop_opt_str(tool, "description", path)
        schema = as_object(tool.pop("input_schema"), f"{path}.input_schema")
        specs.append(
            ToolSpec(
                name=name,
                description=description,
                parameters=deepcopy(schema),
                provider_details=details(
                    _ANTHROPIC, tool, path, schema=None if schema else "empty"
                ),
            )
        )
    return specs


def to_anthropic_tools(specs: Sequence[ToolSpec]) -> list[Json]:
    """Anthropic ``tools`` for tool specs; exact inverse of :func:`from_anthropic_tools`."""
    out: list[Json] = []
    for i, spec in enumerate(specs):
        flat, hints = own(spec.provider_details, _ANTHROPIC)
        if hints.get("opaque"):
            out.append(flat)
            continue
        if is_opaque(spec.provider_details):
            fail(f"tool {spec.name!r} is a built-in tool of another provider", f"tools[{i}]")
        tool: Json = {"name": spec.name}
        if spec.description is not None:
            tool["description"] = spec.description
        empty = hints.get("schema") == "empty"
        tool["input_schema"] = deepcopy(spec.parameters) or (
            {} if empty else {"type": "object", "properties": {}}
        )
        out.append(merge(tool, flat))
    return out
