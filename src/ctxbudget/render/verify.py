"""Count a rendered request body independently of the ledger: the fit check of ``prepare``.

The body is read back from its wire form and counted with the model's counter. For
OpenAI chat bodies each message dict is counted once (cached by identity, the renderer
reuses dicts of unchanged items), so verifying a long session stays cheap.
"""

from __future__ import annotations

from typing import Any

from ctxbudget.convert.openai_chat import from_openai_chat, from_openai_chat_tools
from ctxbudget.convert.request import Format, read_request
from ctxbudget.tokens.count import TokenCount
from ctxbudget.tokens.counter import TokenCounter

__all__ = ["RenderedCounter"]


class RenderedCounter:
    """Counts rendered bodies with one session's counter."""

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        self._by_message: dict[int, tuple[dict[str, Any], TokenCount]] = {}
        self._tools: tuple[list[Any], TokenCount] | None = None

    def count(self, body: dict[str, Any], fmt: Format) -> TokenCount:
        """Input tokens of ``body`` as the provider will bill them."""
        if fmt != "openai_chat":
            request = read_request(body, format=fmt)
            return self.counter.count_request(request.items, request.tools)
        overhead = self.counter.request_overhead()
        tokens, exact = overhead.tokens, overhead.exact
        seen: dict[int, tuple[dict[str, Any], TokenCount]] = {}
        for message in body["messages"]:
            key = id(message)
            entry = self._by_message.get(key)
            if entry is None or entry[0] is not message:
                (item,) = from_openai_chat([message])
                entry = (message, self.counter.count_item(item))
            seen[key] = entry
            tokens += entry[1].tokens
            exact = exact and entry[1].exact
        self._by_message = seen
        total = TokenCount(tokens, exact)
        tools = body.get("tools")
        if tools:
            if self._tools is None or self._tools[0] is not tools:
                self._tools = (tools, self.counter.count_tools(from_openai_chat_tools(tools)))
            total += self._tools[1]
        return total
