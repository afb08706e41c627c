"""What one proxied model call carries from its arrival to its end (plain data)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ctxbudget.integrations.apis import Collector
from ctxbudget.integrations.spending import CallSpend
from ctxbudget.proxy.config import ProxyKey
from ctxbudget.proxy.sessions import ProxySession
from ctxbudget.proxy.wire import Wire

__all__ = ["Call", "Parsed", "Reply"]


@dataclass(frozen=True, slots=True)
class Parsed:
    """The client's request, split the way the wrappers split a call."""

    messages: list[Any]
    system: Any
    tools: Any
    options: dict[str, Any]
    """Every other field, ``model`` and unknown ones included."""
    meta: Mapping[str, Any]
    """What a new stored session records about its client."""

    @property
    def model(self) -> str:
        """The model the client asked for."""
        return str(self.options.get("model") or "")

    @property
    def stream(self) -> bool:
        """Whether the client asked for a stream."""
        return bool(self.options.get("stream"))


@dataclass(slots=True)
class Call:
    """What one model call holds until it is over (released exactly once)."""

    wire: Wire
    thread: str
    """The client thread (the lock's key; its current segment is ``session``)."""
    managed: bool
    slot: str
    """The in-flight slot taken from the gate."""
    key: ProxyKey | None
    raw: bytes
    """The client's body, as received."""
    parsed: Parsed
    session: ProxySession | None = None
    spend: CallSpend | None = None
    started: float = field(default_factory=time.perf_counter)
    released: bool = False
    retried: bool = False
    """Sent again after the upstream said the request was too long."""
    recall: bool = False
    """The manager's recall tool is offered and its calls answered by the proxy."""
    pending: asyncio.Future[Any] | None = None
    """The bookkeeping running beside an observed call (sync, prepare, reservation)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: a stream read along, or a whole JSON response."""

    collector: Collector | None = None
    final: Any = None
    recorded: bool = False
    """Already recorded and settled round by round (hidden recall rounds)."""
