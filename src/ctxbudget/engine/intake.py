"""What enters the context: caller messages read into items, through the door.

Reading is a pure function of its input: which wire format a list of messages is in is
detected (or given), and item ids are numbered on so they stay unique in the session.
:class:`Intake` adds the session's side: the id counter and the
:class:`~ctxbudget.engine.door.Door`, so a batch that no provider would accept is refused
(or repaired) before any of it reaches the log. Tool schemas: ``convert.request``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ctxbudget.convert.anthropic import from_anthropic
from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.convert.openai_responses import from_openai_responses
from ctxbudget.convert.request import Format, has_anthropic_blocks
from ctxbudget.engine.door import Door, check_json
from ctxbudget.errors import ConversionError, UsageError
from ctxbudget.session.items import Item

__all__ = ["Intake"]


def _read(
    messages: Sequence[Mapping[str, Any] | Item], fmt: Format | None, start: int
) -> tuple[list[Item], list[int] | None]:
    """Items for ``messages`` (dicts in ``fmt``, detected when None; or Items as they are),
    numbered from ``start``, and for each the index of the message it came from (None:
    not known)."""
    if messages and all(isinstance(m, Item) for m in messages):
        return [m for m in messages if isinstance(m, Item)], list(range(len(messages)))
    if any(isinstance(m, Item) for m in messages):
        raise UsageError("pass either Item objects or message dicts to extend(), not both")
    dicts = [m for m in messages if not isinstance(m, Item)]
    if fmt == "openai_responses":
        return from_openai_responses(dicts, start=start), None
    if fmt == "anthropic" or (fmt is None and has_anthropic_blocks(dicts)):
        system = [i for i, m in enumerate(dicts) if m.get("role") == "system"]
        rest = [i for i, m in enumerate(dicts) if m.get("role") != "system"]
        items = from_openai_chat([dicts[i] for i in system], start=start) + from_anthropic(
            [dicts[i] for i in rest], start=start + len(system)
        )
        return items, system + rest
    if fmt in (None, "openai_chat"):
        return from_openai_chat(list(dicts), start=start), list(range(len(dicts)))
    raise UsageError(f"unknown format {fmt!r}; expected openai_chat, anthropic or openai_responses")


class Intake:
    """One session's reader: numbers items and lets in only what a provider accepts."""

    def __init__(self, *, repair: bool = False) -> None:
        self.door = Door(repair=repair)
        self.next = 0
        """Items read so far: the next item id's number."""

    def read(
        self, messages: Iterable[Mapping[str, Any] | Item], fmt: Format | None = None
    ) -> list[Item]:
        """The items ``messages`` become, admitted by the door (the whole batch or none)."""
        if isinstance(messages, Mapping | str | bytes):
            raise UsageError(
                "extend() takes a list of messages, got a single "
                f"{type(messages).__name__}; use append() for one message or wrap it in a list"
            )
        messages = [self._checked(m, i) for i, m in enumerate(messages)]
        dicts = not all(isinstance(m, Item) for m in messages)
        items, sources = _read(messages, fmt, self.next)
        self.next += len(items)

        def where(index: int) -> str:
            if sources is None:
                return f"input item (read as item {index})"
            return f"messages[{sources[index]}]"

        return self.door.admit(items, where, self._new_id, checked=dicts)

    def _checked(self, message: Mapping[str, Any] | Item, index: int) -> Mapping[str, Any] | Item:
        if isinstance(message, Item):
            return message
        if not isinstance(message, Mapping):
            raise ConversionError(
                f"expected a message object (a dict), got {type(message).__name__}",
                path=f"messages[{index}]",
            )
        checked: Mapping[str, Any] = check_json(
            message, f"messages[{index}]", repair=self.door.repair
        )
        _check_blocks(checked, f"messages[{index}]")
        return checked

    def _new_id(self) -> str:
        """An id for an item the door puts in (its own prefix: imported items bring ids
        of their own, ``m3``... included)."""
        self.next += 1
        return f"door{self.next - 1}"


def _check_blocks(message: Mapping[str, Any], path: str) -> None:
    """Every content block (and every block of a tool result's content) is an object with
    a string ``type``: both APIs refuse anything else, and no strategy could shorten it."""
    content = message.get("content")
    if not isinstance(content, list):
        return
    for n, block in enumerate(content):
        where = f"{path}.content[{n}]"
        if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
            raise ConversionError(
                'a content block must be an object with a "type" (e.g. {"type": "text", '
                '"text": ...}); no provider accepts this one',
                path=where,
            )
        nested = block.get("content")
        if block["type"] == "tool_result" and isinstance(nested, list):
            _check_blocks({"content": nested}, where)
