"""View → OpenAI Responses request body.

System items become ``instructions`` only when they were read from ``instructions``;
otherwise they stay system/developer input messages, in view order, so a session that
moves between wire formats keeps its prefix. Tool schemas are rendered once per change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ctxbudget.convert.openai_responses import to_openai_responses, to_openai_responses_tools
from ctxbudget.session.items import Item, ToolSpec

__all__ = ["OpenAIResponsesRenderer"]


class OpenAIResponsesRenderer:
    """Renders views to Responses bodies (``model``, ``instructions``, ``input``, ``tools``)."""

    def __init__(self) -> None:
        self._tools: tuple[tuple[ToolSpec, ...], list[dict[str, Any]]] | None = None

    def render(
        self,
        items: Sequence[Item],
        tools: Sequence[ToolSpec] = (),
        *,
        model: str,
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The request body; ``input`` is always a list so its prefix stays stable."""
        instructions, raw_input = to_openai_responses(list(items))
        if isinstance(raw_input, str):
            raw_input = [{"role": "user", "content": raw_input}]
        body: dict[str, Any] = {"model": model}
        if instructions is not None:
            body["instructions"] = instructions
        body["input"] = raw_input
        if tools:
            key = tuple(tools)
            if self._tools is None or self._tools[0] != key:
                self._tools = (key, to_openai_responses_tools(key))
            body["tools"] = self._tools[1]
        if options:
            body.update(options)
        return body
