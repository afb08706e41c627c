"""Pieces every importer shares: calls per assistant item, usage, and text-only observations."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ctxbudget.billing.usage import Usage, usage_from_openai_chat
from ctxbudget.session.items import Component, Item
from ctxbudget.traces._read import Where, converting
from ctxbudget.traces.session import RecordedCall

__all__ = [
    "API_KEYS",
    "CallInfo",
    "api_message",
    "command_name",
    "mark_observations",
    "openai_usage",
    "recorded_calls",
]

API_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")
"""The OpenAI chat fields a provider receives; harness bookkeeping (``extra``...) is dropped."""


def api_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """Only the API fields of a logged chat message (``null`` ``tool_calls``, ``name``...
    dropped; a ``null`` content is kept)."""
    return {
        k: message[k]
        for k in API_KEYS
        if k in message and (k == "content" or message[k] is not None)
    }


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What a log recorded about one model call, before its position is known."""

    usage: Usage | None = None
    cost: Decimal | None = None
    model: str | None = None


def recorded_calls(
    items: Sequence[Item], info: Mapping[int, CallInfo] | Sequence[CallInfo | None] = ()
) -> tuple[RecordedCall, ...]:
    """One :class:`RecordedCall` per assistant item, in order.

    ``info`` gives the recorded figures by item position (a mapping), or in the order of
    the assistant items (a sequence); calls without figures get ``usage=None``.
    """
    positions = [i for i, item in enumerate(items) if item.role == "assistant"]
    if isinstance(info, Mapping):
        found = [info.get(i) for i in positions]
    else:
        found = [info[n] if n < len(info) else None for n in range(len(positions))]
    return tuple(
        RecordedCall(
            position=i,
            usage=f.usage if f else None,
            cost=f.cost if f else None,
            model=f.model if f else None,
        )
        for i, f in zip(positions, found, strict=True)
    )


def openai_usage(usage: Mapping[str, Any], where: Where, what: str) -> Usage:
    """An OpenAI-style chat ``usage`` (``prompt_tokens`` include cached tokens), read by
    the library's one OpenAI mapper; a record it rejects is a :class:`TraceError` here."""
    with converting(where, what):
        return usage_from_openai_chat(usage)


_CD_PREFIX = re.compile(r"\s*cd\s+(?:\"[^\"]*\"|'[^']*'|\S+)\s*(?:&&|;)\s*")
_SKIP_WORD = re.compile(r"\s*(?:sudo\s+|[A-Za-z_][A-Za-z0-9_]*=\S*\s+)")
_WORD = re.compile(r"[^\s;&|()<>]+")


def command_name(command: str, default: str = "bash") -> str:
    """The program a shell command runs: its first word, after a leading ``cd DIR &&``,
    ``sudo`` or ``VAR=value`` (comment lines skipped); ``default`` for an empty command."""
    for line in command.strip().splitlines():
        rest = line.strip()
        if not rest or rest.startswith("#"):
            continue
        while True:
            stripped = _CD_PREFIX.match(rest) or _SKIP_WORD.match(rest)
            if stripped is None or stripped.end() >= len(rest):
                break
            rest = rest[stripped.end() :]
        word = _WORD.match(rest)
        if word is not None:
            return word.group(0)
    return default


def mark_observations(
    items: Sequence[Item], tool_of: Callable[[Item, Item], str | None]
) -> tuple[list[Item], dict[str, str]]:
    """For text-only agents: mark environment output sent back as a user message.

    A session with tool calls anywhere is not text-only: it is returned unchanged. Else
    every user item after the first assistant item is offered to ``tool_of(assistant,
    user)`` with the assistant item before it; a tool name marks the user item as an
    observation (component ``TOOL_RESULTS``), ``None`` leaves it in the history (harness
    messages such as format-error reminders).
    """
    if any(item.role == "tool" or item.tool_calls for item in items):
        return list(items), {}
    out: list[Item] = []
    observations: dict[str, str] = {}
    last_assistant: Item | None = None
    for item in items:
        if item.role == "assistant":
            last_assistant = item
        elif item.role == "user" and last_assistant is not None:
            tool = tool_of(last_assistant, item)
            if tool is not None:
                observations[item.id] = tool
                out.append(item.with_(component=Component.TOOL_RESULTS))
                continue
        out.append(item)
    return out, observations
