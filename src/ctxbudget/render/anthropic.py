"""View → Anthropic Messages request body.

System items go to the top-level ``system``; consecutive tool results become one user
message of ``tool_result`` blocks, and two turns of one role in a row (a compaction can
leave them) are merged as the API merges them, so roles alternate (the converter's
rules). If compaction left the conversation starting with an assistant turn, a short user
note is put first, because the Messages API requires the first message to come from the
user.

Each item's blocks are written once (cached by identity). Told how many leading items are
the very items of the previous call (``reuse``), the renderer keeps that part of its message
list and writes only the rest; a tool-results message that gains a result is replaced by a
new dict, never changed in place, so earlier bodies stay as they were sent. ``stable`` says
how many leading messages of the new body are the previous body's own objects. Bodies share
message dicts with the cache and with each other: treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ctxbudget.convert._wire import is_from, is_plain_text, merge, own
from ctxbudget.convert.anthropic import (
    FMT,
    _write_blocks,
    _write_system,
    join_turn,
    to_anthropic_tools,
)
from ctxbudget.session.items import Item, ToolSpec

__all__ = ["LEADING_USER_NOTE", "AnthropicRenderer"]

LEADING_USER_NOTE = "(Earlier conversation was compacted; it continues below.)"
"""The user message put first when a compacted conversation starts with the assistant."""

_SYSTEM = ("system", "developer")


class AnthropicRenderer:
    """Renders views of one session to Anthropic Messages bodies."""

    def __init__(self) -> None:
        self._fragments: dict[str, tuple[Item, list[Any], Any]] = {}
        """Item id → (item, its blocks, the message it becomes on its own or None)."""
        self._tools: tuple[tuple[ToolSpec, ...], list[dict[str, Any]]] | None = None
        self._note = {"role": "user", "content": LEADING_USER_NOTE}
        self._done: list[Item] = []
        """The items of the last body, in order."""
        self._list: list[dict[str, Any]] = []
        """Its messages, without the leading note."""
        self._positions: list[int] = []
        """``_positions[i]``: index in ``_list`` of the last message once item ``i`` is
        written (-1 before the first message)."""
        self._lasts: list[tuple[dict[str, Any] | None, bool]] = []
        """After each item: the last message then (a merged message is replaced later) and
        whether it held the results of tool items (a next result joins it)."""
        self._system_items: list[tuple[int, Item]] = []
        self._system: Any = None
        self.stable = 0
        """Leading messages of the last body that are the previous body's own objects."""
        self.offset = 0
        """1 when the last body starts with the leading user note."""

    def position(self, index: int) -> int | None:
        """Index in the last body's ``messages`` where item ``index`` ends (-1: before the
        first message), the leading note counted; None past the last body's items."""
        if not 0 <= index < len(self._positions):
            return None
        p = self._positions[index]
        return p + self.offset if p >= 0 else p

    def render(
        self,
        items: Sequence[Item],
        tools: Sequence[ToolSpec] = (),
        *,
        model: str,
        max_tokens: int,
        options: Mapping[str, Any] | None = None,
        positions: list[int] | None = None,
        reuse: int = 0,
    ) -> dict[str, Any]:
        """The request body: ``model``, ``max_tokens``, ``system``, ``messages``, ``tools``.

        ``positions``, when given, receives the index in ``messages`` where each item ends
        (as :func:`~ctxbudget.convert.anthropic.to_anthropic`, the leading note counted;
        O(n): :meth:`position` answers for one item). ``reuse``: how many leading ``items``
        are the very items of the previous call, in the same places (0: none).
        """
        stable, system_changed = self._rewind(items, reuse)
        messages, pos, lasts = self._list, self._positions, self._lasts
        is_open = lasts[-1][1] if lasts else False
        start = len(self._done)
        for index in range(start, len(items)):
            item = items[index]
            if item.role in _SYSTEM:
                self._system_items.append((index, item))
                system_changed = True
            else:
                joined, is_open = self._write(item, index, is_open)
                if joined:
                    stable = min(stable, len(messages) - 1)
            self._done.append(item)
            pos.append(len(messages) - 1)
            lasts.append((messages[-1] if messages else None, is_open))
        if system_changed:
            self._system = _write_system(self._system_items)
        self.offset = int(bool(messages) and messages[0]["role"] != "user")
        out = [self._note, *messages] if self.offset else list(messages)
        self.stable = stable + self.offset if stable else 0
        if positions is not None:
            positions[:] = [p + self.offset if p >= 0 else p for p in pos]
        body: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
        if self._system is not None:
            body["system"] = self._system
        body["messages"] = out
        if tools:
            key = tuple(tools)
            if self._tools is None or self._tools[0] != key:
                self._tools = (key, to_anthropic_tools(list(key)))
            body["tools"] = self._tools[1]
        if options:
            body.update(options)
        if len(self._fragments) > 2 * len(items) + 64:
            live = {item.id for item in items}
            self._fragments = {k: v for k, v in self._fragments.items() if k in live}
        return body

    def _write(self, item: Item, index: int, is_open: bool) -> tuple[bool, bool]:
        """Add a non-system item to the message list: (whether it joined the last message,
        which is then a new dict; whether the last message now takes further results)."""
        messages = self._list
        blocks, message = self._fragment(item, index)
        if item.role == "tool" or (is_open and item.role == "user"):
            if is_open:
                last = messages[-1]
                messages[-1] = {**last, "content": [*last["content"], *blocks]}
            elif messages and messages[-1]["role"] == "user":
                messages[-1] = join_turn(messages[-1], blocks)
            else:
                messages.append({"role": "user", "content": list(blocks)})
                return False, item.role == "tool"
            return True, item.role == "tool"
        if message is not None and messages and messages[-1]["role"] == item.role:
            messages[-1] = join_turn(messages[-1], blocks)
            return True, False
        if message is not None:
            messages.append(message)
        return False, False

    def _rewind(self, items: Sequence[Item], reuse: int) -> tuple[int, bool]:
        """Drop what the last body wrote past the first ``reuse`` items; how many leading
        messages are still the last body's own, and whether the system items changed."""
        done = self._done
        keep = min(reuse, len(done), len(items))
        if keep and items[keep - 1] is not done[keep - 1]:
            keep = 0  # not the items it was told: start over
        end = self._positions[keep - 1] + 1 if keep else 0
        messages = self._list
        stable = end
        if keep:
            last, _ = self._lasts[keep - 1]
            if last is not None and messages[end - 1] is not last:
                messages[end - 1] = last  # a result joined it later: undo that
                stable = end - 1
        del done[keep:], self._positions[keep:], self._lasts[keep:], messages[end:]
        system, changed = self._system_items, not keep
        while system and system[-1][0] >= keep:
            system.pop()
            changed = True
        return stable, changed

    def _fragment(self, item: Item, index: int) -> tuple[list[Any], Any]:
        """(blocks, the message a non-tool item becomes or None) of one item, cached."""
        entry = self._fragments.get(item.id)
        if entry is not None and entry[0] is item:
            return entry[1], entry[2]
        mine = is_from(item.provider_details, FMT)
        blocks = _write_blocks(item, f"items[{index}]", mine)
        message = None
        if blocks or mine:
            flat, hints = own(item.provider_details, FMT)
            plain = is_plain_text(item.parts, FMT) and hints.get("content") != "list"
            content: Any = blocks[0]["text"] if plain and blocks else blocks
            message = merge({"role": item.role, "content": content}, flat)
        self._fragments[item.id] = (item, blocks, message)
        return blocks, message
