"""View → OpenAI Chat Completions request body; each item is rendered once.

Rendered message dicts are cached per item (by identity), so preparing a long session
costs one list build, not a conversion of every message. Consecutive calls share more:
told how many leading items are the very items of the previous call (``reuse``, what
:meth:`~ctxbudget.session.view.View.kept` says), the renderer keeps that part of its
message list and converts only the rest, and ``stable`` then says how many leading
messages of the new body are the previous body's own objects.

The returned body shares those dicts with the cache and with earlier bodies: treat it as
read-only (copy before changing it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ctxbudget.convert.openai_chat import to_openai_chat, to_openai_chat_tools
from ctxbudget.errors import ConversionError
from ctxbudget.session.items import Item, ToolSpec

__all__ = ["OpenAIChatRenderer"]


class OpenAIChatRenderer:
    """Renders views of one session; keeps a per-item cache of rendered messages."""

    def __init__(self) -> None:
        self._messages: dict[str, tuple[Item, tuple[dict[str, Any], ...]]] = {}
        self._tools: tuple[tuple[ToolSpec, ...], list[dict[str, Any]]] | None = None
        self._done: list[Item] = []
        """The items of the last body, in order."""
        self._ends: list[int] = []
        """``_ends[i]``: how many messages the last body has up to item ``i`` included."""
        self._list: list[dict[str, Any]] = []
        """The messages of the last body (each body gets a copy of this list)."""
        self.stable = 0
        """Leading messages of the last body that are the previous body's own objects."""

    def messages_of(self, item: Item) -> tuple[dict[str, Any], ...]:
        """The wire messages of one item (usually one; a multi-result item gives several)."""
        entry = self._messages.get(item.id)
        if entry is not None and entry[0] is item:
            return entry[1]
        try:
            rendered = tuple(to_openai_chat([item]))
        except ConversionError as exc:  # name the item, not its place in a one-item list
            message = str(exc).removeprefix(f"{exc.path}: ")
            where = exc.path.replace("items[0]", f"item {item.id}", 1)
            raise ConversionError(message, path=where) from exc
        self._messages[item.id] = (item, rendered)
        return rendered

    def start_of(self, index: int) -> int:
        """Index in the last body's ``messages`` of the first message of item ``index``."""
        return self._ends[index - 1] if index > 0 else 0

    def render(
        self,
        items: Sequence[Item],
        tools: Sequence[ToolSpec] = (),
        *,
        model: str,
        options: Mapping[str, Any] | None = None,
        reuse: int = 0,
    ) -> dict[str, Any]:
        """The request body: ``model``, ``messages``, ``tools`` (if any), then ``options``.

        ``reuse``: how many leading ``items`` are the very items of the previous call, in
        the same places (0: none; every message still comes from the per-item cache).
        """
        done, ends, messages = self._done, self._ends, self._list
        keep = min(reuse, len(done), len(items))
        if keep and items[keep - 1] is not done[keep - 1]:
            keep = 0  # not the items it was told: start over
        end = ends[keep - 1] if keep else 0
        del done[keep:], ends[keep:], messages[end:]
        self.stable = end
        for item in items[keep:]:
            messages.extend(self.messages_of(item))
            done.append(item)
            ends.append(len(messages))
        body: dict[str, Any] = {"model": model, "messages": list(messages)}
        if tools:
            body["tools"] = self._render_tools(tuple(tools))
        if options:
            body.update(options)
        if len(self._messages) > 2 * len(items) + 64:
            self._prune(items)
        return body

    def _render_tools(self, tools: tuple[ToolSpec, ...]) -> list[dict[str, Any]]:
        if self._tools is None or self._tools[0] != tools:
            self._tools = (tools, to_openai_chat_tools(tools))
        return self._tools[1]

    def _prune(self, items: Sequence[Item]) -> None:
        """Forget items that left the view (compaction), keeping the cache small."""
        live = {item.id for item in items}
        self._messages = {k: v for k, v in self._messages.items() if k in live}
