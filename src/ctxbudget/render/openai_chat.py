"""View → OpenAI Chat Completions request body; each item is rendered once.

Rendered message dicts are cached per item (by identity), so preparing a long session
costs one list build, not a conversion of every message. The returned body shares those
dicts: treat it as read-only (copy before changing it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ctxbudget.convert.openai_chat import to_openai_chat, to_openai_chat_tools
from ctxbudget.session.items import Item, ToolSpec

__all__ = ["OpenAIChatRenderer"]


class OpenAIChatRenderer:
    """Renders views of one session; keeps a per-item cache of rendered messages."""

    def __init__(self) -> None:
        self._messages: dict[str, tuple[Item, tuple[dict[str, Any], ...]]] = {}
        self._tools: tuple[tuple[ToolSpec, ...], list[dict[str, Any]]] | None = None

    def messages_of(self, item: Item) -> tuple[dict[str, Any], ...]:
        """The wire messages of one item (usually one; a multi-result item gives several)."""
        entry = self._messages.get(item.id)
        if entry is not None and entry[0] is item:
            return entry[1]
        rendered = tuple(to_openai_chat([item]))
        self._messages[item.id] = (item, rendered)
        return rendered

    def render(
        self,
        items: Sequence[Item],
        tools: Sequence[ToolSpec] = (),
        *,
        model: str,
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The request body: ``model``, ``messages``, ``tools`` (if any), then ``options``."""
        messages: list[dict[str, Any]] = []
        for item in items:
            messages.extend(self.messages_of(item))
        body: dict[str, Any] = {"model": model, "messages": messages}
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
