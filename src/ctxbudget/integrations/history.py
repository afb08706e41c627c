"""Feed a caller's growing message list into a manager, each message once.

Agent loops resend the whole conversation on every call. The wrapper keeps track of how
much of that list the manager already has, appends only what is new, and skips the
assistant reply the caller echoes back (the wrapper recorded it when it arrived). A list
whose last messages were dropped or changed (a refused request fixed, a reply discarded to
regenerate it) has what the manager holds for them retracted (a record in the log), so the
request carries exactly the caller's list; a change reaching back into what compaction
already merged cannot be followed and raises a clear error.

Turns the caller never sees (the wrapper's recall rounds: the model's recall call and its
answer) go into the manager's log after the caller's messages, with
:meth:`HistorySync.record_hidden`; the caller's list is followed as before, since only the
final reply comes back to it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctxbudget.billing.usage import as_plain
from ctxbudget.convert.request import Format
from ctxbudget.errors import UsageError

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = ["HistorySync", "system_text"]


@dataclass
class _Span:
    """What one append of the sync put into the manager."""

    start: int
    """Index in the caller's list of the first message it covers."""
    end: int
    """Index past the last (== ``start`` for a reply until the caller echoes it)."""
    items: int
    """How many items it appended."""


class HistorySync:
    """Tracks which of the caller's messages the manager already holds."""

    def __init__(self, manager: ContextManager, fmt: Format) -> None:
        self.manager = manager
        self.format: Format = fmt
        self._keys: list[str] = []
        """A key of each caller message the manager holds, in order."""
        self._spans: list[_Span] = []
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
        """Append what is new in ``messages`` (plus a first system prompt, changed tools).

        A list that drops or changes its last messages (the provider refused the request
        and the caller fixed it, or the caller discarded the reply to regenerate it) gets
        what the manager holds for them retracted first, so the request carries exactly
        the caller's list."""
        plain = [as_plain(m) for m in messages]
        if not all(isinstance(m, Mapping) for m in plain):
            raise UsageError("messages must be a list of message objects (dicts)")
        self._sync_tools(tools)
        self._sync_system(system)
        held = len(self._keys)
        same = held == 0 or (len(plain) >= held and _key(plain[held - 1]) == self._keys[-1])
        kept = held if same else _common(self._keys, plain)
        if kept == held and self._echo:
            kept = self._take_echo(plain, held)
        if self._stale(kept):
            self._retract(kept)
        self._echo = False
        new = plain[len(self._keys) :]
        if new:
            items = self.manager.extend(new, format=self.format)
            self._spans.append(_Span(len(self._keys), len(plain), len(items)))
            self._keys.extend(_key(m) for m in new)

    def record_reply(self, reply: Sequence[Mapping[str, Any]]) -> None:
        """Append the model's reply; the caller's copy of it is skipped on the next sync."""
        if reply:
            self.record_hidden(reply)
            self._echo = True

    def record_hidden(
        self, messages: Sequence[Mapping[str, Any]], fmt: Format | None = None
    ) -> None:
        """Append messages the caller's list will never hold (nothing is skipped for them
        on the next sync): they stay in the log, after the caller's messages. ``fmt``:
        their wire format when it is not the caller's."""
        if messages:
            items = self.manager.extend(messages, format=fmt or self.format)
            self._spans.append(_Span(len(self._keys), len(self._keys), len(items)))

    def _take_echo(self, plain: list[Any], held: int) -> int:
        """How many caller messages are held once the reply the caller copied back (if it
        did) is counted as the recorded one; a reply it dropped is not counted."""
        new = plain[held:]
        if self.format == "openai_responses":
            echoed = next((n for n, m in enumerate(new) if not _is_output_item(m)), len(new))
        else:
            echoed = int(bool(new) and new[0].get("role") == "assistant")
        if not echoed:
            return held  # the caller dropped the reply: it is retracted
        reply = self._spans[-1]
        reply.end = held + echoed
        for span in reversed(self._spans[:-1]):  # recall rounds before it
            if span.start == held and span.end == held:
                span.end = reply.end
        self._keys.extend(_key(m) for m in new[:echoed])
        return len(self._keys)

    def _stale(self, kept: int) -> bool:
        """Whether the last append holds something past the first ``kept`` caller messages
        (or a reply the caller did not copy back)."""
        last = self._spans[-1] if self._spans else None
        return last is not None and (last.end > kept or last.start >= kept)

    def _retract(self, kept: int) -> None:
        """Take back what the manager holds for the caller's messages from ``kept`` on."""
        count = 0
        while self._stale(kept):
            span = self._spans.pop()
            count += span.items
            kept = min(kept, span.start)
        try:
            self.manager.retract(count, reason="the caller's list dropped or changed them")
        except UsageError as exc:
            raise UsageError(
                "the message list was rewritten, not extended, and what it changed can no "
                f"longer be taken back ({exc}). Keep appending to the same list, or start a "
                "new ContextManager for a new conversation."
            ) from exc
        del self._keys[kept:]

    def _sync_system(self, system: Any) -> None:
        if system is None:
            return
        text = system_text(as_plain(system))
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


def _common(keys: Sequence[str], messages: Sequence[Mapping[str, Any]]) -> int:
    """How many leading ``messages`` have the ``keys``."""
    for n, (key, message) in enumerate(zip(keys, messages, strict=False)):
        if _key(message) != key:
            return n
    return min(len(keys), len(messages))


def _key(message: Mapping[str, Any]) -> str:
    data = json.dumps(message, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()


def system_text(system: Any) -> str:
    """The text of a system prompt given as a string or a list of text blocks."""
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
