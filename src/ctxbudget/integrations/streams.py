"""Streams handed back to the caller: every event passes through, the reply is recorded.

The proxy yields the SDK's own events unchanged (apart from the usage-only chunk the
wrapper asked OpenAI for, hidden when the caller did not ask for it) and, when the stream
ends, hands the collected reply and usage to the wrapper. Everything else (``close``,
``response``, context-manager use) is the SDK stream's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ctxbudget.billing.usage import Usage
from ctxbudget.integrations.apis import Collector

__all__ = ["AsyncManagedStream", "ManagedStream"]

Done = Callable[[list[dict[str, Any]], Usage | None], None]


class _Base:
    def __init__(self, stream: Any, collector: Collector, done: Done, hide_usage: bool) -> None:
        self._stream = stream
        self._collector = collector
        self._done = done
        self._hide = hide_usage
        self._finished = False

    def _take(self, event: Any) -> bool:
        """Collect one event; True when the caller should see it."""
        self._collector.feed(event)
        return not (self._hide and self._collector.adapter.hide(event))

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            reply, usage = self._collector.result()
            self._done(reply, usage)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class ManagedStream(_Base):
    """A synchronous SDK stream whose reply and usage are recorded when it ends."""

    def __iter__(self) -> Iterator[Any]:
        for event in self._stream:
            if self._take(event):
                yield event
        self._finish()

    def __enter__(self) -> ManagedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()


class AsyncManagedStream(_Base):
    """An asynchronous SDK stream whose reply and usage are recorded when it ends."""

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for event in self._stream:
            if self._take(event):
                yield event
        self._finish()

    async def __aenter__(self) -> AsyncManagedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        close = getattr(self._stream, "close", None)
        if callable(close):
            await close()
