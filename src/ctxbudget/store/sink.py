"""Write-through: a log sink that hands each batch of events to a store before the append
returns."""

from __future__ import annotations

from collections.abc import Sequence

from ctxbudget.session.log import Event
from ctxbudget.store.base import SessionStore
from ctxbudget.store.events import encode_event

__all__ = ["StoreSink"]


class StoreSink:
    """A log sink writing each batch of events to a store before the append returns."""

    def __init__(self, store: SessionStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id

    def __call__(self, events: Sequence[Event]) -> None:
        self.store.append(self.session_id, [encode_event(e) for e in events])
