"""Where a proxied session stands in its client's message list, kept as a mark in its log.

Clients resend the whole conversation on every call. The proxy holds the first ``held``
messages; it recognises them by the key of the first and of the last one (two hashes, not
the whole list, so a 1,000-message request costs what a 10-message one does), skips the
reply it recorded when the client copies it back, and appends the rest. A list that no
longer starts with what is held (Claude Code's ``/compact``, a Codex compaction item, an
edited turn, another system prompt) is a *rewrite*: the proxy starts a new segment of the
session instead of failing. The state is a :class:`~ctxbudget.session.log.Marked` event,
so any proxy worker resuming the session from a shared store continues where it stood.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ctxbudget.convert.request import Format
from ctxbudget.proxy.identity import message_key

__all__ = ["MARK", "Plan", "SyncState", "echoed", "plan"]

MARK = "proxy"
"""Name of the proxy's marks in a session log."""


@dataclass(slots=True)
class SyncState:
    """The proxy's position in one client thread."""

    held: int = 0
    """How many of the client's messages the log holds."""
    first: str = ""
    """Key of the first of them."""
    last: str = ""
    """Key of the last of them."""
    system: str = ""
    """Key of the system prompt they came with."""
    tools: str = ""
    """Key of the tool list last set."""
    reply_items: int = 0
    """Items the last recorded reply took (the client copies it back next; retracted when
    it does not)."""
    input_limit: int | None = None
    """The input limit the upstream's "too long" error taught (tokens); later requests
    keep under it."""

    def to_json(self) -> dict[str, Any]:
        """The mark's data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SyncState:
        """The state a mark holds (a fresh one for None)."""
        if not data:
            return cls()
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one request's list."""

    rewrite: bool
    """The list does not extend what is held: start a new segment."""
    system_key: str
    """Key of the system prompt the list came with."""
    start: int = 0
    """Index of the first message to append."""
    drop_reply: bool = False
    """The client did not copy the recorded reply back: retract it first."""


def plan(state: SyncState, messages: Sequence[Any], system_key: str, fmt: Format) -> Plan:
    """How ``messages`` relate to what ``state`` says is held."""
    held = state.held
    if held == 0 and not state.reply_items:
        return Plan(rewrite=False, system_key=system_key, start=0)
    if (
        system_key != state.system
        or len(messages) < held
        or message_key(messages[0]) != state.first
        or message_key(messages[held - 1]) != state.last
    ):
        return Plan(rewrite=True, system_key=system_key)
    if not state.reply_items:
        return Plan(rewrite=False, system_key=system_key, start=held)
    copied = echoed(messages[held:], fmt)
    return Plan(rewrite=False, system_key=system_key, start=held + copied, drop_reply=copied == 0)


def echoed(new: Sequence[Any], fmt: Format) -> int:
    """How many of the new messages are the model's reply copied back by the client."""
    count = 0
    for message in new:
        if not isinstance(message, Mapping) or not _is_reply(message, fmt):
            break
        count += 1
    return count


def _is_reply(message: Mapping[str, Any], fmt: Format) -> bool:
    if message.get("role") == "assistant":
        return True
    if fmt != "openai_responses":
        return False
    kind = str(message.get("type") or "message")
    return kind != "message" and not kind.endswith("_output")
