"""Whether new items could ever fit the window: the door's last check, before the log.

An item that no compaction may shorten and that is alone past the room the fixed content
leaves would make every later request fail, so it never enters: fixed or pinned content
(no strategy touches it), and a message holding parts no strategy can cut (reasoning with
its signature, images, documents) that alone is past that room. Texts, tool output and
call arguments are cut, cleared or summarized to fit, so they are never refused here.
Pure: the counts are passed in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence

from ctxbudget.errors import ContextOverflow
from ctxbudget.session.items import (
    DocumentPart,
    ImagePart,
    Item,
    Part,
    ReasoningPart,
    TextPart,
    ToolResultPart,
    item_to_dict,
)

__all__ = ["SLACK", "check_room"]

SLACK = 16
"""Room a lone message needs beside it: request framing and the note a compacted Anthropic
conversation starts with (tokens)."""


def check_room(
    items: Sequence[Item],
    *,
    usable: int,
    base: Callable[[], int],
    count: Callable[[Sequence[Item]], int],
    fixed: Callable[[Item], bool],
) -> None:
    """Raise ContextOverflow for ``items`` that could never fit ``usable`` tokens beside
    what is fixed or pinned already (``base()``); ``fixed(item)``: no strategy touches it."""
    kept = [i for i in items if fixed(i)]
    rigid = [
        _rigid(i)
        for i in items
        if not fixed(i)
        and any(isinstance(p, _UNCUT) for p in i.parts)
        and _size_bound(i) > usable // 2
    ]
    if not kept and not rigid:
        return
    held = base()
    adding = count(kept) if kept else 0
    if held + adding > usable:
        raise ContextOverflow(
            f"{', '.join(i.role for i in kept)} content of {adding:,} tokens cannot enter: "
            f"with what is fixed or pinned already it needs {held + adding:,} tokens and at "
            f"most {usable:,} fit, and nothing may shorten it, so every later request "
            "would fail. Shorten it, append it unpinned, or use a model with a larger window.",
            component=kept[0].component.value,
            size=held + adding,
            limit=usable,
        )
    for item in rigid:
        size = count([item])
        if held + size + SLACK > usable:
            raise ContextOverflow(
                f"a {item.role} message whose parts no compaction can shorten (reasoning, "
                f"images, documents: {size:,} tokens) cannot fit beside "
                f"the fixed content ({held:,} of {usable:,} tokens), so every later request "
                "would fail. Split or shorten it, or use a model with a larger window.",
                component=item.component.value,
                size=held + size,
                limit=usable,
            )


_UNCUT = (ReasoningPart, ImagePart, DocumentPart)
"""Parts no strategy cuts (a thinking block keeps its signature)."""


def _size_bound(item: Item) -> int:
    """At least the item's token count (a token holds at least one character of JSON)."""
    return len(json.dumps(item_to_dict(item)["parts"], ensure_ascii=False))


def _rigid(item: Item) -> Item:
    """``item`` with what compaction can shorten (texts, tool output) emptied."""
    parts: list[Part] = []
    for part in item.parts:
        if isinstance(part, TextPart):
            parts.append(dataclasses.replace(part, text=""))
        elif isinstance(part, ToolResultPart):
            parts.append(dataclasses.replace(part, content=""))
        else:
            parts.append(part)
    return item.with_(parts=tuple(parts))
