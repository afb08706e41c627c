"""Count a rendered request body independently of the ledger: the fit check of ``prepare``.

The body is read back from its wire form and counted with the model's counter. OpenAI chat
and Anthropic bodies are counted one message at a time, each message dict once (cached by
identity: the renderers reuse the dicts of unchanged items). When the caller says how many
leading messages are the previous body's own objects (``stable``), a running sum covers
them and only the others are read, so verifying a long session costs its new messages.
Responses bodies are read whole (their input entries group into items across entries).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ctxbudget.convert.anthropic import from_anthropic, from_anthropic_tools
from ctxbudget.convert.openai_chat import from_openai_chat, from_openai_chat_tools
from ctxbudget.convert.request import Format, read_request
from ctxbudget.session.items import Item, ToolSpec
from ctxbudget.tokens.count import TokenCount
from ctxbudget.tokens.counter import TokenCounter
from ctxbudget.tokens.framing import Tally

__all__ = ["RenderedCounter"]

_READERS: dict[str, tuple[Callable[[Any], list[Item]], Callable[[Any], list[ToolSpec]]]] = {
    "openai_chat": (from_openai_chat, from_openai_chat_tools),
    "anthropic": (from_anthropic, from_anthropic_tools),
}
"""Formats counted message by message: the message reader and the tools reader."""


class _Sums:
    """What one format's last counted body added up to, message by message."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        """The counter's factor the sums were made with."""
        self.messages: list[Any] = []
        """The messages of the last body counted, in order."""
        self.tokens: list[int] = []
        """``tokens[i]``: tokens of messages ``0..i``."""
        self.estimates: list[int] = []
        """``estimates[i]``: how many of messages ``0..i`` were counted as estimates."""
        self.memo: dict[int, tuple[Any, tuple[Tally, ...]]] = {}
        """Each message's tallies (before the factor: they survive a recalibration), by
        identity."""
        self.tools: tuple[Any, TokenCount] | None = None
        self.system: tuple[Any, TokenCount] | None = None


class RenderedCounter:
    """Counts rendered bodies with one session's counter."""

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        self._sums: dict[Format, _Sums] = {}

    def count(self, body: dict[str, Any], fmt: Format, stable: int = 0) -> TokenCount:
        """Input tokens of ``body`` as the provider will bill them.

        ``stable``: how many leading messages are the very objects of the last body of
        ``fmt`` counted here (0: read them all; each one's count still comes from a cache).
        """
        readers = _READERS.get(fmt)
        if readers is None:
            request = read_request(body, format=fmt)
            return self.counter.count_request(request.items, request.tools)
        read_messages, read_tools = readers
        factor = self.counter.factor
        sums = self._sums.get(fmt)
        if sums is None:
            sums = self._sums[fmt] = _Sums(factor)
        messages = body["messages"]
        seen, tokens, estimates = sums.messages, sums.tokens, sums.estimates
        keep = min(stable, len(seen), len(messages))
        if keep and messages[keep - 1] is not seen[keep - 1]:
            keep = 0  # not the body it was told: count it all
        if sums.factor != factor:  # recalibrated: the sums again, from the tallies kept
            sums.factor, sums.system, sums.tools, keep = factor, None, None, 0
        del seen[keep:], tokens[keep:], estimates[keep:]
        total = tokens[-1] if tokens else 0
        inexact = estimates[-1] if estimates else 0
        memo = sums.memo
        for message in messages[keep:]:
            entry = memo.get(id(message))
            if entry is None or entry[0] is not message:
                tallies = tuple(self.counter.tally(i) for i in read_messages([message]))
                entry = (message, tallies)
                memo[id(message)] = entry
            total += sum(tally.total(factor).tokens for tally in entry[1])
            inexact += not all(tally.exact for tally in entry[1])
            seen.append(message)
            tokens.append(total)
            estimates.append(inexact)
        if len(memo) > 2 * len(messages) + 64:
            sums.memo = {id(m): memo[id(m)] for m in messages if id(m) in memo}
        overhead = self.counter.request_overhead()
        result = TokenCount(total + overhead.tokens, overhead.exact and not inexact)
        system = body.get("system") if fmt == "anthropic" else None
        if system is not None and not (isinstance(system, list | tuple) and not system):
            if sums.system is None or sums.system[0] is not system:
                sums.system = (system, self.counter.count_items(from_anthropic([], system=system)))
            result += sums.system[1]
        tools = body.get("tools")
        if tools:
            if sums.tools is None or sums.tools[0] is not tools:
                sums.tools = (tools, self.counter.count_tools(read_tools(tools)))
            result += sums.tools[1]
        return result
