"""Anthropic Messages (``system`` + ``messages``) and tools ⇄ items.

Tool-use ``input`` objects become the JSON text of :class:`ToolCallPart` so every provider's
calls look alike; thinking keeps its signature and redacted thinking its data, because
Anthropic rejects them altered. Writing items read from OpenAI formats: system items go to
the top-level ``system``, consecutive tool results become one user message of
``tool_result`` blocks (so each ``tool_use`` is answered in the very next message), and
reasoning without an Anthropic signature is left out (Anthropic cannot verify it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ctxbudget.convert._tools import from_anthropic_tools, to_anthropic_tools
from ctxbudget.convert._wire import (
    Json,
    as_array,
    as_object,
    describe,
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
)
from ctxbudget.session.exchanges import assign_exchanges
from ctxbudget.session.items import (
    Component,
    DocumentPart,
    ImagePart,
    Item,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

__all__ = ["from_anthropic", "from_anthropic_tools", "to_anthropic", "to_anthropic_tools"]

FMT = "anthropic"

System = str | list[Json]
"""Anthropic's top-level ``system``: a string or a list of text blocks."""

Nested = TextPart | ImagePart | DocumentPart


def from_anthropic(
    messages: Sequence[Mapping[str, Any]],
    *,
    system: str | Sequence[Mapping[str, Any]] | None = None,
    id_prefix: str = "m",
    start: int = 0,
) -> list[Item]:
    """Items for an Anthropic conversation: the ``system`` item first (if given), then one
    item per message; exchanges assigned."""
    items: list[Item] = []
    if system is not None:
        parts, hint = _read_content(system, "system")
        items.append(
            Item(
                id=item_id(id_prefix, start, 0),
                role="system",
                component=Component.SYSTEM,
                parts=tuple(parts),
                provider_details=item_details(FMT, {}, "system", content=hint),
            )
        )
    for i, raw in enumerate(as_array(messages, "messages")):
        path = f"messages[{i}]"
        msg = as_object(raw, path)
        role = msg.pop("role", None)
        if role not in ("user", "assistant"):
            fail(f"unknown role {role!r}; expected 'user' or 'assistant'", f"{path}.role")
        if "content" not in msg:
            fail("missing required field 'content'", path)
        parts, hint = _read_content(msg.pop("content"), f"{path}.content")
        results_only = bool(parts) and all(isinstance(p, ToolResultPart) for p in parts)
        items.append(
            Item(
                id=item_id(id_prefix, start, len(items)),
                role=role,
                component=Component.TOOL_RESULTS
                if role == "user" and results_only
                else Component.HISTORY,
                parts=tuple(parts),
                provider_details=item_details(FMT, msg, path, content=hint),
            )
        )
    return assign_exchanges(items)


def _read_content(content: Any, path: str) -> tuple[list[Part], str | None]:
    """Parts of a string or block list, and the ``"list"`` hint when a string would not do."""
    if isinstance(content, str):
        return [TextPart(text=content)], None
    blocks = as_array(content, path)
    parts = [_read_block(raw, f"{path}[{j}]") for j, raw in enumerate(blocks)]
    return parts, "list" if not parts or is_plain_text(parts, FMT) else None


def _read_block(raw: Any, path: str) -> Part:
    block = as_object(raw, path)
    kind = block.pop("type", None)
    if kind == "text":
        return TextPart(
            text=pop_str(block, "text", path), provider_details=details(FMT, block, path)
        )
    if kind == "image":
        src = _read_source(block, path)
        return ImagePart(
            data=src.data,
            url=src.url,
            media_type=src.media_type,
            provider_details=details(FMT, block, path, **src.hints),
        )
    if kind == "document":
        src = _read_source(block, path)
        title = pop_opt_str(block, "title", path)
        return DocumentPart(
            data=src.data,
            url=src.url,
            media_type=src.media_type,
            title=title,
            provider_details=details(FMT, block, path, **src.hints),
        )
    if kind == "tool_use":
        call_id, name = pop_str(block, "id", path), pop_str(block, "name", path)
        if not isinstance(block.get("input"), Mapping):
            fail(f"expected an object, got {describe(block.get('input'))}", f"{path}.input")
        arguments = json.dumps(block.pop("input"), ensure_ascii=False)
        return ToolCallPart(
            id=call_id, name=name, arguments=arguments, provider_details=details(FMT, block, path)
        )
    if kind == "tool_result":
        return _read_result(block, path)
    if kind == "thinking":
        text = pop_str(block, "thinking", path)
        signature = pop_opt_str(block, "signature", path)
        hint = "thinking" if signature is None else None
        return ReasoningPart(
            text=text, signature=signature, provider_details=details(FMT, block, path, block=hint)
        )
    if kind == "redacted_thinking":
        data = pop_str(block, "data", path)
        return ReasoningPart(redacted_data=data, provider_details=details(FMT, block, path))
    return opaque(FMT, raw, path)


def _read_result(block: Json, path: str) -> ToolResultPart:
    call_id = pop_str(block, "tool_use_id", path)
    content: str | tuple[Nested, ...] = ""
    hint = None
    if "content" not in block:
        hint = "absent"
    elif isinstance(block["content"], str):
        content = block.pop("content")
    else:
        nested = []
        for j, raw in enumerate(as_array(block.pop("content"), f"{path}.content")):
            part = _read_block(raw, f"{path}.content[{j}]")
            if not isinstance(part, Nested):
                fail(
                    f"expected a text, image or document block, got {part.kind}",
                    f"{path}.content[{j}]",
                )
            nested.append(part)
        content = tuple(nested)
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        fail(f"expected a boolean, got {describe(is_error)}", f"{path}.is_error")
    if is_error is not None:
        del block["is_error"]
    return ToolResultPart(
        call_id=call_id,
        content=content,
        is_error=is_error,
        provider_details=details(FMT, block, path, content=hint),
    )


class _Source(NamedTuple):
    data: str | None
    url: str | None
    media_type: str | None
    hints: Json


def _read_source(block: Json, path: str) -> _Source:
    """What a block's ``source`` holds, and the hints to rebuild it exactly."""
    spath = f"{path}.source"
    source = as_object(block.pop("source", None), spath)
    kind = source.get("type")
    data: str | None = None
    url: str | None = None
    media_type: str | None = None
    if kind in ("base64", "text"):
        media_type = pop_str(source, "media_type", spath)
        data = pop_str(source, "data", spath)
        default = "text" if media_type == "text/plain" else "base64"
    elif kind == "url":
        url = pop_str(source, "url", spath)
        default = "base64" if split_data_url(url) else "url"
    else:
        return _Source(None, None, None, {"source": source})
    del source["type"]
    hints = {"source_type": None if kind == default else kind, "source_extra": source or None}
    return _Source(data, url, media_type, hints)


def to_anthropic(
    items: Sequence[Item], positions: list[int] | None = None, *, alternate: bool = True
) -> tuple[System | None, list[Json]]:
    """``(system, messages)`` for items; the inverse of :func:`from_anthropic`.

    ``alternate``: two turns of one role in a row are merged (:func:`join_turn`), as the
    API does and strict gateways require; False keeps them apart (an exact inverse).

    ``positions``, when given, receives for each item the index of the last message once
    that item is written (−1 before the first): where an item lands, without a second render.
    """
    system_items = [(i, it) for i, it in enumerate(items) if it.role in ("system", "developer")]
    messages: list[Json] = []
    open_results = False  # the last message holds tool results of tool-role items
    for i, item in enumerate(items):
        if item.role not in ("system", "developer"):
            open_results = _write_message(item, f"items[{i}]", messages, open_results, alternate)
        if positions is not None:
            positions.append(len(messages) - 1)
    return _write_system(system_items), messages


def _write_message(
    item: Item, path: str, messages: list[Json], open_results: bool, alternate: bool
) -> bool:
    """Append ``item`` to ``messages`` (tool results join the open user message); whether
    the last message now holds tool results."""
    mine = is_from(item.provider_details, FMT)
    blocks = _write_blocks(item, path, mine)
    if item.role == "tool" or (open_results and item.role == "user"):
        if open_results:
            messages[-1]["content"].extend(blocks)
        elif alternate and messages and messages[-1]["role"] == "user":
            messages[-1] = join_turn(messages[-1], blocks)
        else:
            messages.append({"role": "user", "content": blocks})
        return item.role == "tool"
    if not blocks and not mine:
        return False
    if alternate and messages and messages[-1]["role"] == item.role:
        messages[-1] = join_turn(messages[-1], blocks)
        return False
    flat, hints = own(item.provider_details, FMT)
    plain = is_plain_text(item.parts, FMT) and hints.get("content") != "list"
    content: Any = blocks[0]["text"] if plain and blocks else blocks
    messages.append(merge({"role": item.role, "content": content}, flat))
    return False


def join_turn(last: Json, blocks: Sequence[Json]) -> Json:
    """``last`` with ``blocks`` added, as a new dict: two turns of one role in a row merged
    as the Messages API merges them (strict gateways refuse them unmerged), blocks in
    order, tool results first (the API wants them at the start of a user turn)."""
    content = last["content"]
    old = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    joined = [*old, *blocks]
    results = [b for b in joined if b.get("type") == "tool_result"]
    rest = [b for b in joined if b.get("type") != "tool_result"]
    return {**last, "content": [*results, *rest]}


def _write_blocks(item: Item, path: str, mine: bool) -> list[Json]:
    """Blocks of an item. Empty texts of another format's assistant turns (OpenAI's
    ``"content": ""`` beside tool calls) are left out: Anthropic rejects empty text blocks."""
    blocks: list[Json] = []
    skip_empty = not mine and item.role == "assistant"
    for j, part in enumerate(item.parts):
        if skip_empty and isinstance(part, TextPart) and not part.text:
            continue
        block = _write_part(part, f"{path}.parts[{j}]")
        if block is not None:
            blocks.append(block)
    return blocks


def _write_system(system_items: list[tuple[int, Item]]) -> System | None:
    if not system_items:
        return None
    blocks: list[Json] = []
    for i, item in system_items:
        for j, part in enumerate(item.parts):
            block = _write_part(part, f"items[{i}].parts[{j}]")
            if block is None or block.get("type") != "text":
                fail("Anthropic's system prompt takes text only", f"items[{i}].parts[{j}]")
            blocks.append(block)
    (_, first), *more = system_items
    hints = own(first.provider_details, FMT)[1]
    if not more and is_plain_text(first.parts, FMT) and hints.get("content") != "list":
        return str(blocks[0]["text"])
    return blocks


def _write_part(part: Part, path: str) -> Json | None:
    """The block for a part; ``None`` for what Anthropic cannot take (foreign reasoning)."""
    body = opaque_body(part, FMT, path)
    if body is not None:
        return body
    part = foreign_as_text(part, FMT)
    flat, hints = own(part.provider_details, FMT)
    block: Json
    if isinstance(part, TextPart):
        block = {"type": "text", "text": part.text}
    elif isinstance(part, ImagePart | DocumentPart):
        block = {"type": part.kind, "source": _write_source(part, hints, path)}
        if isinstance(part, DocumentPart) and part.title is not None:
            block["title"] = part.title
    elif isinstance(part, ToolCallPart):
        block = {"type": "tool_use", "id": part.id, "name": part.name}
        block["input"] = _arguments(part, path)
    elif isinstance(part, ToolResultPart):
        block = {"type": "tool_result", "tool_use_id": part.call_id}
        if isinstance(part.content, tuple):
            block["content"] = [_write_nested(p, f"{path}.content") for p in part.content]
        elif part.content or hints.get("content") != "absent":
            block["content"] = part.content
        if part.is_error is not None:
            block["is_error"] = part.is_error
    elif part.redacted_data is not None:
        block = {"type": "redacted_thinking", "data": part.redacted_data}
    elif part.signature is not None or hints.get("block") == "thinking":
        block = {"type": "thinking", "thinking": part.text}
        if part.signature is not None:
            block["signature"] = part.signature
    else:
        return None
    return merge(block, flat)


def _write_nested(part: Nested, path: str) -> Json:
    block = _write_part(part, path)
    if block is None:  # pragma: no cover - text, image and document always render
        fail("cannot render this part inside a tool result", path)
    return block


def _arguments(part: ToolCallPart, path: str) -> Json:
    """The ``input`` object. Anthropic takes only objects: arguments that are not one (an
    OpenAI call cut off mid-JSON, a custom tool's free-form input such as Codex's
    ``apply_patch``) are sent as ``{"input": <the raw text>}``, never refused."""
    if not part.arguments.strip():
        return {}
    try:
        value = json.loads(part.arguments)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"input": part.arguments}


def _write_source(part: ImagePart | DocumentPart, hints: Json, path: str) -> Json:
    if isinstance(hints.get("source"), Mapping):
        return dict(hints["source"])
    source: Json
    if part.data is not None:
        if part.media_type is None:
            fail(f"an inline {part.kind} needs a media type for Anthropic", path)
        default = "text" if part.media_type == "text/plain" else "base64"
        source = {"type": default, "media_type": part.media_type, "data": part.data}
    elif part.url is not None:
        split = split_data_url(part.url)
        if split and hints.get("source_type") != "url":
            source = {"type": "base64", "media_type": split[0], "data": split[1]}
        else:
            source = {"type": "url", "url": part.url}
    else:
        fail(f"an {part.kind} needs data or a url", path)
    if hints.get("source_type"):
        source["type"] = hints["source_type"]
    source.update(hints.get("source_extra") or {})
    return source
