"""Feed a caller's growing message list into a manager, each message once.

Agent loops resend the whole conversation on every call. The wrapper keeps track of how
much of that list the manager already has, appends only what is new, and skips the
assistant reply the caller echoes back (the wrapper recorded it when it arrived). A list
that was rewritten instead of extended cannot be followed and raises a clear error.

Turns the caller never sees (the wrapper's recall rounds: the model's recall call and its
answer) go into the manager's log after the caller's messages, with
:meth:`HistorySync.record_hidden`; the caller's list is followed as before, since only the
final reply comes back to it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctxbudget.billing.usage import as_plain
from ctxbudget.convert.request import Format
from ctxbudget.errors import UsageError

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = ["HistorySync"]


class HistorySync:
    """Tracks which of the caller's messages the manager already holds."""

    def __init__(self, manager: ContextManager, fmt: Format) -> None:
        self.manager = manager
        self.format: Format = fmt
        self._seen = 0
        self._last = ""
        self._echo = False
        self._system: str | None = None
        self._tools: str | None = None

    def sync(
        self,
        messages: Sequence[Any],
        *,
        system: Any = None,
        tools: Sequence[Any] | None = None,
    ) -> None:
        """Append what is new in ``messages`` (plus a first system prompt, changed tools)."""
        plain = [as_plain(m) for m in messages]
        if not all(isinstance(m, Mapping) for m in plain):
            raise UsageError("messages must be a list of message objects (dicts)")
        self._sync_tools(tools)
        self._sync_system(system)
        if len(plain) < self._seen or (self._seen and _key(plain[self._seen - 1]) != self._last):
            raise UsageError(
                "the message list was rewritten, not extended: ctxbudget follows an append-only "
                "history (it compacts the context itself). Keep appending to the same list, "
                "or start a new ContextManager for a new conversation."
            )
        new = plain[self._seen :]
        if self._echo and self.format == "openai_responses":
            new = [m for m in new if not _is_output_item(m)]  # the recorded reply, echoed
        elif self._echo and new and new[0].get("role") == "assistant":
            new = new[1:]  # the reply the wrapper already recorded, echoed back
        self._echo = False
        if new:
            self.manager.extend(new, format=self.format)
        self._seen = len(plain)
        if plain:
            self._last = _key(plain[-1])

    def record_reply(self, reply: Sequence[Mapping[str, Any]]) -> None:
        """Append the model's reply; the caller's copy of it is skipped on the next sync."""
        if reply:
            self.manager.extend(reply, format=self.format)
            self._echo = True

    def record_hidden(
        self, messages: Sequence[Mapping[str, Any]], fmt: Format | None = None
    ) -> None:
        """Append messages the caller's list will never hold (nothing is skipped for them
        on the next sync): they stay in the log, after the caller's messages. ``fmt``:
        their wire format when it is not the caller's."""
        if messages:
            self.manager.extend(messages, format=fmt or self.format)

    def _sync_system(self, system: Any) -> None:
        if system is None:
            return
        text = _system_text(as_plain(system))
        if self._system is None:
            self._system = text
            self.manager.set_system(text)
        elif text != self._system:
            raise UsageError(
                "the system prompt changed mid-session, which would rewrite the whole cached "
                "prefix; keep it fixed (put changing instructions in a user message) or start "
                "a new ContextManager"
            )

    def _sync_tools(self, tools: Sequence[Any] | None) -> None:
        if tools is None:
            return
        plain = [as_plain(t) for t in tools]
        key = json.dumps(plain, sort_keys=True, default=str)
        if key != self._tools:
            self._tools = key
            self.manager.set_tools(plain)


def _key(message: Mapping[str, Any]) -> str:
    data = json.dumps(message, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, Sequence):
        return "\n\n".join(
            str(b.get("text", "")) for b in system if isinstance(b, Mapping) and b.get("text")
        )
    raise UsageError(
        f"system must be a string or a list of text blocks, got {type(system).__name__}"
    )


def _is_output_item(item: Mapping[str, Any]) -> bool:
    """Responses output items the caller copies back (the recorded reply)."""
    return item.get("type") in ("reasoning", "function_call") or (
        item.get("type") == "message" and item.get("role") == "assistant"
    )
