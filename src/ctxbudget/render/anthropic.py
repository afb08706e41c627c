"""View → Anthropic Messages request body.

System items go to the top-level ``system``; consecutive tool results become one user
message of ``tool_result`` blocks (the converter's rules). If compaction left the
conversation starting with an assistant turn, a short user note is put first, because
the Messages API requires the first message to come from the user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ctxbudget.convert.anthropic import to_anthropic, to_anthropic_tools
from ctxbudget.session.items import Item, ToolSpec

__all__ = ["LEADING_USER_NOTE", "AnthropicRenderer"]

LEADING_USER_NOTE = "(Earlier conversation was compacted; it continues below.)"
"""The user message put first when a compacted conversation starts with the assistant."""


class AnthropicRenderer:
    """Renders views to Anthropic Messages bodies."""

    def render(
        self,
        items: Sequence[Item],
        tools: Sequence[ToolSpec] = (),
        *,
        model: str,
        max_tokens: int,
        options: Mapping[str, Any] | None = None,
        positions: list[int] | None = None,
    ) -> dict[str, Any]:
        """The request body: ``model``, ``max_tokens``, ``system``, ``messages``, ``tools``.

        ``positions``, when given, receives the index in ``messages`` where each item ends
        (as :func:`~ctxbudget.convert.anthropic.to_anthropic`, the leading note counted).
        """
        system, messages = to_anthropic(list(items), positions)
        if messages and messages[0]["role"] != "user":
            messages.insert(0, {"role": "user", "content": LEADING_USER_NOTE})
            if positions is not None:
                positions[:] = [p + 1 if p >= 0 else p for p in positions]
        body: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
        if system is not None:
            body["system"] = system
        body["messages"] = messages
        if tools:
            body["tools"] = to_anthropic_tools(list(tools))
        if options:
            body.update(options)
        return body
