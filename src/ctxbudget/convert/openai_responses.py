"""OpenAI Responses API ``instructions`` + ``input`` and tools ⇄ items.

The Responses API spreads one model turn over several input items (reasoning, message,
function calls). They become ONE assistant item, parts in order, so a turn's calls and
their results form one exchange. Each part remembers what it needs (the reasoning item's
``id``, which message a text belonged to...) to write back exactly the original list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ctxbudget.convert._tools import from_openai_responses_tools, to_openai_responses_tools
from ctxbudget.convert._wire import (
    Json,
    add_hints,
    as_array,
    as_object,
    data_url,
    details,
    fail,
    foreign_as_text,
    is_from,
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
    text_of,
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
    "from_openai_responses",
    "from_openai_responses_tools",
    "to_openai_responses",
    "to_openai_responses_tools",
]

FMT = "openai_responses"

Content = TextPart | ImagePart | DocumentPart
_COMPONENTS: dict[str, Component] = {
    "system": Component.SYSTEM,
    "developer": Component.SYSTEM,
    "user": Component.HISTORY,
    "assistant": Component.HISTORY,
    "tool": Component.TOOL_RESULTS,
}
_MESSAGE_ROLES = ("user", "assistant", "system", "developer")
_OUTPUTS = {"function_call_output": None, "custom_tool_call_output": "custom"}
_GROUP_HINTS = {"msg", "message", "content"}
"""Hints on an assistant text part that describe its message, not the part itself."""


def from_openai_responses(
    input: str | Sequence[Mapping[str, Any]],
    *,
    instructions: str | None = None,
    id_prefix: str = "m",
    start: int = 0,
) -> list[Item]:
    """Items for Responses ``instructions`` and ``input``; one model turn → one assistant item."""
    items: list[Item] = []
    if instructions is not None:
        if not isinstance(instructions, str):
            fail("expected a string", "instructions")
        items.append(
            _item(
                items, id_prefix, start, "system", [TextPart(text=instructions)], instructions=True
            )
        )
    if isinstance(input, str):
        items.append(_item(items, id_prefix, start, "user", [TextPart(text=input)], input="str"))
        return assign_exchanges(items)
    turn: list[Part] = []
    messages_in_turn = 0
    for i, raw in enumerate(as_array(input, "input")):
        path = f"input[{i}]"
        entry = as_object(raw, path)
        kind = entry.get("type")
        is_message = kind == "message" or (kind is None and "role" in entry)
        if is_message and entry.get("role") == "assistant" and entry.get("content") != []:
            turn.extend(_read_turn_message(entry, path, messages_in_turn))
            messages_in_turn += 1
            continue
        if kind == "reasoning" or (isinstance(kind, str) and kind.endswith("_call")):
            turn.append(_read_turn_item(raw, entry, path))
            continue
        if turn:
            items.append(_item(items, id_prefix, start, "assistant", turn))
            turn, messages_in_turn = [], 0
        iid = item_id(id_prefix, start, len(items))
        if is_message:
            items.append(_read_message(entry, path, iid))
        elif kind in _OUTPUTS:
            items.append(_read_output(entry, path, iid))
        else:
            role: Role = "tool" if isinstance(kind, str) and kind.endswith("_output") else "user"
            items.append(_item(items, id_prefix, start, role, [_opaque_item(raw, path)]))
    if turn:
        items.append(_item(items, id_prefix, start, "assistant", turn))
    return assign_exchanges(items)


def _item(
    items: list[Item], prefix: str, start: int, role: Role, parts: list[Part], **hints: Any
) -> Item:
    return Item(
        id=item_id(prefix, start, len(items)),
        role=role,
        component=_COMPONENTS[role],
        parts=tuple(parts),
        provider_details=item_details(FMT, {}, "input", **hints),
    )


def _read_message(entry: Json, path: str, iid: str) -> Item:
    role = entry.pop("role", None)
    if role not in _MESSAGE_ROLES:
        fail(f"unknown role {role!r}; expected one of {', '.join(_MESSAGE_ROLES)}", f"{path}.role")
    if "content" not in entry:
        fail("missing required field 'content'", path)
    parts, hint = _read_content(entry.pop("content"), f"{path}.content", role)
    return Item(
        id=iid,
        role=role,
        component=_COMPONENTS[role],
        parts=tuple(parts),
        provider_details=item_details(FMT, entry, path, content=hint),
    )


def _read_turn_message(entry: Json, path: str, index: int) -> list[Part]:
    """Parts of an assistant message inside a turn; the first one carries the message's fields."""
    del entry["role"]
    if "content" not in entry:
        fail("missing required field 'content'", path)
    parts, hint = _read_content(entry.pop("content"), f"{path}.content", "assistant")
    first = {"message": entry or None, "content": hint}
    return [
        add_hints(p, FMT, msg=index or None, **(first if j == 0 else {}))
        for j, p in enumerate(parts)
    ]


def _read_content(content: Any, path: str, role: str) -> tuple[list[Content], str | None]:
    if isinstance(content, str):
        return [TextPart(text=content)], None
    parts = [_read_part(raw, f"{path}[{j}]", role) for j, raw in enumerate(as_array(content, path))]
    return parts, "list" if not parts or is_plain_text(parts, FMT) else None


def _read_part(raw: Any, path: str, role: str) -> Content:
    block = as_object(raw, path)
    kind = block.pop("type", None)
    if kind in ("input_text", "output_text"):
        default = "output_text" if role == "assistant" else "input_text"
        text = pop_str(block, "text", path)
        hint = None if kind == default else kind
        return TextPart(text=text, provider_details=details(FMT, block, path, type=hint))
    if kind == "refusal":
        text = pop_str(block, "refusal", path)
        return TextPart(text=text, provider_details=details(FMT, block, path, type="refusal"))
    if kind == "input_image":
        url = pop_opt_str(block, "image_url", path)
        detail = pop_opt_str(block, "detail", path)
        return ImagePart(url=url, detail=detail, provider_details=details(FMT, block, path))
    if kind == "input_file":
        data = pop_opt_str(block, "file_data", path)
        url = pop_opt_str(block, "file_url", path)
        title = pop_opt_str(block, "filename", path)
        split = split_data_url(data) if data is not None else None
        media_type, data = split if split else (None, data)
        return DocumentPart(
            data=data,
            url=url,
            media_type=media_type,
            title=title,
            provider_details=details(FMT, block, path, data_url=True if split else None),
        )
    return opaque(FMT, raw, path)


def _read_turn_item(raw: Any, entry: Json, path: str) -> Part:
    kind = entry.pop("type")
    if kind == "reasoning":
        return _read_reasoning(entry, path)
    if kind not in ("function_call", "custom_tool_call"):
        return _opaque_item(raw, path)
    custom = kind == "custom_tool_call"
    call_id = pop_str(entry, "call_id", path)
    name = pop_str(entry, "name", path)
    arguments = pop_str(entry, "input" if custom else "arguments", path)
    hint = "custom" if custom else None
    return ToolCallPart(
        id=call_id,
        name=name,
        arguments=arguments,
        provider_details=details(FMT, entry, path, type=hint),
    )


def _opaque_item(raw: Any, path: str) -> Part:
    """A whole input item we have no model for (web search call, item reference...)."""
    return add_hints(opaque(FMT, raw, path), FMT, item=True)


def _item_body(part: Part, path: str) -> Json | None:
    """The original input item of a part made by :func:`_opaque_item`."""
    body = opaque_body(part, FMT, path)
    return body if body is not None and own(part.provider_details, FMT)[1].get("item") else None


def _read_reasoning(entry: Json, path: str) -> ReasoningPart:
    hints: Json = {}
    texts: list[str] = []
    if "summary" not in entry:
        hints["summary"] = "absent"
    else:
        summary = as_array(entry.pop("summary"), f"{path}.summary")
        for j, raw in enumerate(summary):
            piece = as_object(raw, f"{path}.summary[{j}]")
            if piece.get("type") != "summary_text" or not isinstance(piece.get("text"), str):
                fail('expected {"type": "summary_text", "text": ...}', f"{path}.summary[{j}]")
            texts.append(piece["text"])
            if len(piece) != 2:
                hints["summary_raw"] = summary
        if len(texts) > 1 or texts == [""]:
            hints["split"] = [len(t) for t in texts]
    encrypted = pop_opt_str(entry, "encrypted_content", path)
    return ReasoningPart(
        text="\n\n".join(texts),
        encrypted_content=encrypted,
        provider_details=details(FMT, entry, path, **hints),
    )


def _read_output(entry: Json, path: str, iid: str) -> Item:
    kind = entry.pop("type")
    call_id = pop_str(entry, "call_id", path)
    if "output" not in entry:
        fail("missing required field 'output'", path)
    output = entry.pop("output")
    content: str | tuple[Content, ...]
    if isinstance(output, str):
        content = output
    else:
        opath = f"{path}.output"
        content = tuple(
            _read_part(r, f"{opath}[{j}]", "tool") for j, r in enumerate(as_array(output, opath))
        )
    return Item(
        id=iid,
        role="tool",
        component=Component.TOOL_RESULTS,
        parts=(ToolResultPart(call_id=call_id, content=content),),
        provider_details=item_details(FMT, entry, path, type=_OUTPUTS[kind]),
    )


def to_openai_responses(items: Sequence[Item]) -> tuple[str | None, str | list[Json]]:
    """``(instructions, input)`` for items; exact inverse of :func:`from_openai_responses`.

    Items from other formats: system items become system/developer messages, each tool
    result a ``function_call_output``, and other providers' reasoning is left out.
    """
    instructions: str | None = None
    rest: list[tuple[int, Item]] = []
    for i, item in enumerate(items):
        hints = own(item.provider_details, FMT)[1]
        if instructions is None and hints.get("instructions"):
            instructions = "".join(text_of(item, f"items[{i}]"))
        else:
            rest.append((i, item))
    if len(rest) == 1:
        only = rest[0][1]
        if own(only.provider_details, FMT)[1].get("input") == "str" and is_plain_text(
            only.parts, FMT
        ):
            return instructions, text_of(only, "items[0]")[0]
    out: list[Json] = []
    for i, item in rest:
        out.extend(_write_item(item, f"items[{i}]"))
    return instructions, out


def _write_item(item: Item, path: str) -> list[Json]:
    flat, hints = own(item.provider_details, FMT)
    mine = is_from(item.provider_details, FMT)
    if item.role == "assistant" and item.parts:
        return _write_turn(item, path, mine)
    out: list[Json] = []
    rest: list[Content] = []
    for j, part in enumerate(item.parts):
        body = _item_body(part, f"{path}.parts[{j}]")
        if body is not None:
            out.append(body)
        elif isinstance(part, ToolResultPart):
            kind = (
                "custom_tool_call_output"
                if hints.get("type") == "custom"
                else "function_call_output"
            )
            output: Any = part.content
            if isinstance(part.content, tuple):
                output = [_write_part(p, f"{path}.parts[{j}]", "tool") for p in part.content]
            out.append(merge({"type": kind, "call_id": part.call_id, "output": output}, flat))
        elif isinstance(part, Content):
            rest.append(part)
        elif not isinstance(part, ReasoningPart):
            fail(f"a {part.kind} part cannot appear in a {item.role} message", f"{path}.parts[{j}]")
    if rest or not out:
        role = "user" if item.role == "tool" else item.role
        form = hints.get("content")
        content: Any
        if form != "list" and is_plain_text(rest, FMT):
            content = text_of(item.with_(parts=tuple(rest)), path)[0]
        else:
            content = [_write_part(p, f"{path}.parts", role) for p in rest]
        out.append(merge({"role": role, "content": content}, flat))
    return out


def _write_turn(item: Item, path: str, mine: bool) -> list[Json]:
    out: list[Json] = []
    message: list[Content] = []
    for j, part in enumerate(item.parts):
        ppath = f"{path}.parts[{j}]"
        flat, hints = own(part.provider_details, FMT)
        body = _item_body(part, ppath)
        if isinstance(part, Content) and body is None:
            if message and hints.get("msg", 0) != _message_index(message[0]):
                out.append(_write_message(message, path))
                message = []
            message.append(part)
            continue
        if message:
            out.append(_write_message(message, path))
            message = []
        if body is not None:
            out.append(body)
        elif isinstance(part, ToolCallPart):
            custom = hints.get("type") == "custom"
            call: Json = {"type": "custom_tool_call" if custom else "function_call"}
            call.update(call_id=part.id, name=part.name)
            call["input" if custom else "arguments"] = part.arguments
            out.append(merge(call, flat))
        elif isinstance(part, ReasoningPart):
            if mine or flat or hints:
                out.append(_write_reasoning(part, flat, hints))
        else:
            fail(f"a {part.kind} part cannot appear in an assistant turn", ppath)
    if message:
        out.append(_write_message(message, path))
    return out


def _message_index(part: Part) -> int:
    """Which message of its turn a text part came from (0 when read elsewhere)."""
    index = own(part.provider_details, FMT)[1].get("msg", 0)
    return index if isinstance(index, int) else 0


def _write_message(parts: list[Content], path: str) -> Json:
    flat, hints = own(parts[0].provider_details, FMT)
    plain = len(parts) == 1 and isinstance(parts[0], TextPart) and not flat
    plain = plain and not (set(hints) - _GROUP_HINTS) and hints.get("content") != "list"
    content: Any
    if plain and isinstance(parts[0], TextPart):
        content = parts[0].text
    else:
        content = [_write_part(p, path, "assistant") for p in parts]
    return merge({"role": "assistant", "content": content}, hints.get("message"))


def _write_part(part: Content, path: str, role: str) -> Json:
    body = opaque_body(part, FMT, path)
    if body is not None:
        return body
    part = foreign_as_text(part, FMT)
    flat, hints = own(part.provider_details, FMT)
    block: Json
    if isinstance(part, TextPart):
        kind = hints.get("type") or ("output_text" if role == "assistant" else "input_text")
        block = {"type": kind, ("refusal" if kind == "refusal" else "text"): part.text}
    elif isinstance(part, ImagePart):
        block = {"type": "input_image"}
        url = part.url
        if url is None and part.data is not None:
            url = data_url(part.media_type or "image/png", part.data)
        if url is not None:
            block["image_url"] = url
        if part.detail is not None:
            block["detail"] = part.detail
    else:
        block = {"type": "input_file"}
        if part.data is not None:
            media = part.media_type
            block["file_data"] = part.data if media is None else data_url(media, part.data)
        if part.url is not None:
            block["file_url"] = part.url
        if part.title is not None:
            block["filename"] = part.title
    return merge(block, flat)


def _write_reasoning(part: ReasoningPart, flat: Json, hints: Json) -> Json:
    block: Json = {"type": "reasoning"}
    if hints.get("summary") != "absent":
        block["summary"] = _summary(part.text, hints)
    if part.encrypted_content is not None:
        block["encrypted_content"] = part.encrypted_content
    return merge(block, flat)


def _summary(text: str, hints: Json) -> list[Json]:
    raw = hints.get("summary_raw")
    if isinstance(raw, list) and "\n\n".join(p.get("text", "") for p in raw) == text:
        return raw
    lengths = hints.get("split")
    if isinstance(lengths, list) and sum(lengths) + 2 * max(len(lengths) - 1, 0) == len(text):
        pieces, pos = [], 0
        for n in lengths:
            pieces.append(text[pos : pos + n])
            pos += n + 2
        return [{"type": "summary_text", "text": p} for p in pieces]
    return [{"type": "summary_text", "text": text}] if text else []
