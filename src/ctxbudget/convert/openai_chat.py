"""OpenAI Chat Completions messages and tools ⇄ items.

Reading keeps every field: what the model has no name for stays in ``provider_details``
(flat), and the few shapes the default writer would not reproduce (``content: null`` on a
user message, a one-element content list...) are noted as hints, so
``to_openai_chat(from_openai_chat(m)) == m``. Items read from other formats are written
with their own provider fields left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ctxbudget.convert._tools import from_openai_chat_tools, to_openai_chat_tools
from ctxbudget.convert._wire import (
    Json,
    as_array,
    as_object,
    data_url,
    describe,
    details,
    fail,
    foreign_as_text,
    is_plain_text,
    item_details,
    item_id,
    merge,
    opaque,
    opaque_body,
    own,
    pop_opt_str,
    pop_str,
    split_data_url,
)
from ctxbudget.session.exchanges import assign_exchanges
from ctxbudget.session.items import (
    Component,
    DocumentPart,
    ImagePart,
    Item,
    Part,
    ReasoningPart,
    Role,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

__all__ = [
    "from_openai_chat",
    "from_openai_chat_tools",
    "to_openai_chat",
    "to_openai_chat_tools",
]

FMT = "openai_chat"

_ROLES: dict[str, tuple[Role, Component]] = {
    "system": ("system", Component.SYSTEM),
    "developer": ("developer", Component.SYSTEM),
    "user": ("user", Component.HISTORY),
    "assistant": ("assistant", Component.HISTORY),
    "tool": ("tool", Component.TOOL_RESULTS),
    "function": ("tool", Component.TOOL_RESULTS),
}

ContentPart = TextPart | ImagePart | DocumentPart


def from_openai_chat(
    messages: Sequence[Mapping[str, Any]], *, id_prefix: str = "m", start: int = 0
) -> list[Item]:
    """Items for OpenAI chat ``messages``, one item per message, exchanges assigned."""
    items: list[Item] = []
    legacy_call: str | None = None
    for i, raw in enumerate(as_array(messages, "messages")):
        path = f"messages[{i}]"
        item = _read_message(as_object(raw, path), path, item_id(id_prefix, start, i), legacy_call)
        if item.role == "assistant":
            legacy = [
                p.id for p in item.tool_calls if own(p.provider_details, FMT)[1].get("legacy")
            ]
            legacy_call = legacy[0] if legacy else None
        items.append(item)
    return assign_exchanges(items)


def _read_message(msg: Json, path: str, iid: str, legacy_call: str | None) -> Item:
    wire_role = msg.pop("role", None)
    if not isinstance(wire_role, str) or wire_role not in _ROLES:
        fail(f"unknown role {wire_role!r}; expected one of {', '.join(_ROLES)}", f"{path}.role")
    role, component = _ROLES[wire_role]
    hints: Json = {}
    name = pop_opt_str(msg, "name", path)
    parts: list[Part] = []
    if "content" not in msg and role != "assistant":
        fail(f"missing required field 'content' (required on {wire_role} messages)", path)
    if role == "tool":
        if wire_role == "function":
            hints["role"] = "function"
            call_id = legacy_call or f"call_{iid}"
        else:
            call_id = pop_str(msg, "tool_call_id", path)
        content: str | tuple[ContentPart, ...] = ""
        if msg["content"] is None:
            del msg["content"]
            hints["content"] = "null"
        elif isinstance(msg["content"], str):
            content = msg.pop("content")
        else:
            content = tuple(_read_parts(msg.pop("content"), f"{path}.content"))
        parts.append(ToolResultPart(call_id=call_id, content=content))
    else:
        hints["content"] = _read_content(msg, path, role, parts)
        refusal = pop_opt_str(msg, "refusal", path)
        if refusal is not None:
            parts.append(
                TextPart(text=refusal, provider_details=details(FMT, {}, path, field="refusal"))
            )
        calls = msg.get("tool_calls")
        if isinstance(calls, list | tuple) and calls:
            del msg["tool_calls"]
            parts.extend(_read_call(c, f"{path}.tool_calls[{j}]") for j, c in enumerate(calls))
        elif calls is not None and not isinstance(calls, list | tuple):
            fail(f"expected an array or null, got {describe(calls)}", f"{path}.tool_calls")
        if isinstance(msg.get("function_call"), Mapping):
            fn = dict(msg.pop("function_call"))
            fpath = f"{path}.function_call"
            parts.append(
                ToolCallPart(
                    id=f"call_{iid}",
                    name=pop_str(fn, "name", fpath),
                    arguments=pop_str(fn, "arguments", fpath),
                    provider_details=details(FMT, fn, fpath, legacy=True),
                )
            )
    return Item(
        id=iid,
        role=role,
        component=component,
        parts=tuple(parts),
        name=name,
        provider_details=item_details(FMT, msg, path, **hints),
    )


def _read_content(msg: Json, path: str, role: str, parts: list[Part]) -> str | None:
    """Append the content parts; return the content-shape hint, if the default would differ.

    Only assistant messages may lack ``content`` (a tool-call-only turn).
    """
    if "content" not in msg:
        return "absent"
    content = msg.pop("content")
    if content is None:
        return None if role == "assistant" else "null"
    if isinstance(content, str):
        parts.append(TextPart(text=content))
        return None
    read = _read_parts(content, f"{path}.content")
    parts.extend(read)
    return None if len(read) > 1 or (read and not is_plain_text(read, FMT)) else "list"


def _read_parts(value: Any, path: str) -> list[ContentPart]:
    return [_read_part(raw, f"{path}[{j}]") for j, raw in enumerate(as_array(value, path))]


def _read_part(raw: Any, path: str) -> ContentPart:
    block = as_object(raw, path)
    kind = block.pop("type", None)
    if kind == "text":
        text = pop_str(block, "text", path)
        return TextPart(text=text, provider_details=details(FMT, block, path))
    if kind == "refusal":
        text = pop_str(block, "refusal", path)
        return TextPart(text=text, provider_details=details(FMT, block, path, type="refusal"))
    if kind == "image_url" and isinstance(block.get("image_url"), str):
        url = block.pop("image_url")
        return ImagePart(url=url, provider_details=details(FMT, block, path, image_url="str"))
    if kind == "image_url":
        ipath = f"{path}.image_url"
        inner = as_object(block.pop("image_url", None), ipath)
        url = pop_str(inner, "url", ipath)
        detail = pop_opt_str(inner, "detail", ipath)
        hints: Json = {"image_url": inner or None}
        return ImagePart(
            url=url, detail=detail, provider_details=details(FMT, block, path, **hints)
        )
    if kind == "file":
        fpath = f"{path}.file"
        inner = as_object(block.pop("file", None), fpath)
        data = pop_opt_str(inner, "file_data", fpath)
        title = pop_opt_str(inner, "filename", fpath)
        split = split_data_url(data) if data is not None else None
        media_type, data = split if split else (None, data)
        hints = {"file": inner or None, "data_url": True if split else None}
        return DocumentPart(
            data=data,
            media_type=media_type,
            title=title,
            provider_details=details(FMT, block, path, **hints),
        )
    return opaque(FMT, raw, path)


def _read_call(raw: Any, path: str) -> ToolCallPart:
    call = as_object(raw, path)
    call_id = pop_str(call, "id", path)
    kind = call.pop("type", None)
    if kind not in ("function", "custom", None):
        fail(f"unknown tool call type {kind!r}; expected 'function' or 'custom'", f"{path}.type")
    key = "custom" if kind == "custom" else "function"
    inner = as_object(call.pop(key, None), f"{path}.{key}")
    name = pop_str(inner, "name", f"{path}.{key}")
    arguments = pop_str(inner, "input" if kind == "custom" else "arguments", f"{path}.{key}")
    hints = {"type": "absent" if kind is None else ("custom" if kind == "custom" else None)}
    return ToolCallPart(
        id=call_id,
        name=name,
        arguments=arguments,
        provider_details=details(FMT, call, path, inner=inner or None, **hints),
    )


def to_openai_chat(items: Sequence[Item]) -> list[Json]:
    """OpenAI chat messages for ``items``; exact inverse of :func:`from_openai_chat`.

    Items from other formats: each tool result becomes its own ``tool`` message, other
    formats' reasoning is left out (OpenAI cannot verify it), system items stay in place.
    """
    out: list[Json] = []
    for i, item in enumerate(items):
        out.extend(_write_item(item, f"items[{i}]"))
    return out


def _write_item(item: Item, path: str) -> list[Json]:
    flat, hints = own(item.provider_details, FMT)
    results = item.tool_results
    if item.role == "tool" or results:
        out = [_write_result(r, item, flat, hints, path) for r in results]
        rest = [p for p in item.parts if not isinstance(p, ToolResultPart)]
        if rest:
            out.append(_write_message(item.with_(role="user", parts=tuple(rest)), {}, {}, path))
        return out
    return [_write_message(item, flat, hints, path)]


def _write_result(result: ToolResultPart, item: Item, flat: Json, hints: Json, path: str) -> Json:
    msg: Json = {"role": "function" if hints.get("role") == "function" else "tool"}
    if msg["role"] == "tool":
        msg["tool_call_id"] = result.call_id
    if isinstance(result.content, tuple):
        msg["content"] = [_write_part(p, f"{path}.content") for p in result.content]
    elif result.content or hints.get("content") != "null":
        msg["content"] = result.content
    else:
        msg["content"] = None
    if item.name is not None:
        msg["name"] = item.name
    return merge(msg, flat)


def _write_message(item: Item, flat: Json, hints: Json, path: str) -> Json:
    msg: Json = {"role": item.role}
    content: list[ContentPart] = []
    refusals: list[str] = []
    calls: list[Json] = []
    for j, part in enumerate(item.parts):
        ppath = f"{path}.parts[{j}]"
        if isinstance(part, ToolCallPart):
            pflat, phints = own(part.provider_details, FMT)
            if phints.get("legacy"):
                msg["function_call"] = merge(
                    {"name": part.name, "arguments": part.arguments}, pflat
                )
            else:
                calls.append(_write_call(part))
        elif isinstance(part, TextPart) and own(part.provider_details, FMT)[1].get("field"):
            refusals.append(part.text)
        elif isinstance(part, TextPart | ImagePart | DocumentPart):
            content.append(part)
        elif not isinstance(part, ReasoningPart):
            fail(f"a {part.kind} part cannot appear in a {item.role} message", ppath)
    form = hints.get("content")
    if form == "list" or (content and not is_plain_text(content, FMT)):
        msg["content"] = [_write_part(p, f"{path}.content") for p in content]
    elif content and isinstance(content[0], TextPart):
        msg["content"] = content[0].text
    elif form != "absent":
        msg["content"] = None if form == "null" or item.role == "assistant" else ""
    if item.name is not None:
        msg["name"] = item.name
    if refusals:
        msg["refusal"] = "".join(refusals)
    if calls:
        msg["tool_calls"] = calls
    return merge(msg, flat)


def _write_part(part: ContentPart, path: str) -> Json:
    body = opaque_body(part, FMT, path)
    if body is not None:
        return body
    part = foreign_as_text(part, FMT)
    flat, hints = own(part.provider_details, FMT)
    if isinstance(part, TextPart):
        if hints.get("type") == "refusal":
            return merge({"type": "refusal", "refusal": part.text}, flat)
        return merge({"type": "text", "text": part.text}, flat)
    if isinstance(part, ImagePart):
        url = part.url
        if url is None and part.data is not None:
            url = data_url(part.media_type or "image/png", part.data)
        if url is None:
            fail("an image needs a url or data", path)
        if hints.get("image_url") == "str":
            return merge({"type": "image_url", "image_url": url}, flat)
        image: Json = {"url": url}
        if part.detail is not None:
            image["detail"] = part.detail
        return merge({"type": "image_url", "image_url": merge(image, hints.get("image_url"))}, flat)
    if not flat and not hints and part.media_type == "text/plain" and part.data is not None:
        return {"type": "text", "text": part.data}
    file: Json = {}
    if part.data is not None:
        media = part.media_type
        file["file_data"] = part.data if media is None else data_url(media, part.data)
    elif part.url is not None and not hints:
        fail("OpenAI chat cannot attach a document by URL; fetch it first", path)
    if part.title is not None:
        file["filename"] = part.title
    return merge({"type": "file", "file": merge(file, hints.get("file"))}, flat)


def _write_call(part: ToolCallPart) -> Json:
    flat, hints = own(part.provider_details, FMT)
    custom = hints.get("type") == "custom"
    inner: Json = {"name": part.name, ("input" if custom else "arguments"): part.arguments}
    call: Json = {"id": part.id}
    if hints.get("type") != "absent":
        call["type"] = "custom" if custom else "function"
    call["custom" if custom else "function"] = merge(inner, hints.get("inner"))
    return merge(call, flat)
