"""Which session a request belongs to, from what the client sends (pure).

In order: an explicit ``x-ctxbudget-session`` header; Claude Code's
``x-claude-code-session-id`` (a sub-agent's ``x-claude-code-agent-id`` makes it its own
session, linked to the parent); the ``session_id`` inside Anthropic's
``metadata.user_id`` (JSON, or Claude Code's older ``..._session_<uuid>`` form); Codex's
``session_id`` header or the Responses ``prompt_cache_key``; and only then a hash of the
system prompt and the first user turn.

Within one client session the side calls a client makes with another system prompt
(Claude Code's title and summary calls) are kept apart as their own *threads*: a thread
is the session id plus a short hash of the system prompt and the first message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Identity", "identify", "message_key", "thread_of"]

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,79}$")
_OLD_USER_ID = re.compile(r"_session_([0-9a-fA-F-]{8,})$")


@dataclass(frozen=True, slots=True)
class Identity:
    """A client session as the proxy names it."""

    session: str
    """The client's session id (made safe for a store key)."""
    source: str
    """Where it came from: ``header``, ``claude-code``, ``metadata``, ``codex``,
    ``prompt_cache_key`` or ``hash``."""
    parent: str | None = None
    """The parent session of a sub-agent."""


def identify(
    headers: Mapping[str, str], body: Mapping[str, Any], system: Any, first: Any
) -> Identity:
    """The session of a request (``headers`` with lower-case names; ``system`` and
    ``first``, its first message, as the API's adapter split them)."""
    explicit = headers.get("x-ctxbudget-session")
    if explicit:
        return Identity(_safe(explicit), "header")
    claude = headers.get("x-claude-code-session-id")
    if claude:
        agent = headers.get("x-claude-code-agent-id")
        if agent:
            parent = _safe(claude)
            return Identity(f"{parent}.agent-{_safe(agent)}", "claude-code", parent)
        return Identity(_safe(claude), "claude-code")
    from_metadata = _metadata_session(body.get("metadata"))
    if from_metadata:
        return Identity(_safe(from_metadata), "metadata")
    codex = headers.get("session_id") or headers.get("session-id")
    if codex:
        return Identity(_safe(codex), "codex")
    cache_key = body.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        return Identity(_safe(cache_key), "prompt_cache_key")
    return Identity(_digest(_plain(system), _plain(first))[:16], "hash")


def thread_of(system: Any, first: Any) -> str:
    """A short hash telling a client's threads apart (system prompt and first message)."""
    return _digest(_plain(system), _plain(first))[:8]


def message_key(message: Any) -> str:
    """A stable hash of one wire message (how the proxy recognises what it already has).

    Cache markers are left out: clients move ``cache_control`` to the newest message on
    every call, which does not make an earlier message another one."""
    return _digest(_plain(message))


def _metadata_session(metadata: Any) -> str | None:
    if not isinstance(metadata, Mapping):
        return None
    user_id = metadata.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    if user_id.startswith("{"):
        try:
            data = json.loads(user_id)
        except ValueError:
            return None
        session = data.get("session_id") if isinstance(data, dict) else None
        return session if isinstance(session, str) and session else None
    match = _OLD_USER_ID.search(user_id)
    return match.group(1) if match else None


def _safe(value: str) -> str:
    """The value itself when it is a usable key, else a hash of it (never raw input)."""
    value = value.strip()
    if _SAFE.match(value):
        return value
    return "h" + hashlib.sha256(value.encode()).hexdigest()[:24]


def _plain(value: Any) -> str:
    return json.dumps(_unmarked(value), sort_keys=True, ensure_ascii=False, default=str)


def _unmarked(value: Any) -> Any:
    """``value`` without its ``cache_control`` markers (copied only where there are some)."""
    if isinstance(value, Mapping):
        if "cache_control" in value:
            return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
        if any(isinstance(v, (Mapping, list)) for v in value.values()):
            return {k: _unmarked(v) for k, v in value.items()}
        return value
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    return value


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()
