"""Durable sessions: one small interface, three backends (SQLite, PostgreSQL, Redis).

Beside ``telemetry``: may import ``compaction`` and the core below; never the engine.

::

    store = open_store("sqlite:///.ctxbudget/ctxbudget.db")   # or postgresql://, redis://
    mgr = ContextManager.open("run-42", store, model="gpt-4o")  # resume, or create empty
    with mgr.log.batch():                                      # one exchange, one transaction
        mgr.extend([assistant_with_tool_calls, *tool_results])

A session is its append-only event log (``ctxbudget.session.log``); every event is written through
to the store before the append returns, and a resumed session replays to the same state.
"""

from ctxbudget.store.base import LogConflict, SessionInfo, SessionStore
from ctxbudget.store.events import StoredEvent, decode_event, encode_event
from ctxbudget.store.sink import StoreSink
from ctxbudget.store.url import DEFAULT_STORE, STORE_ENV, open_store, store_url

__all__ = [
    "DEFAULT_STORE",
    "STORE_ENV",
    "LogConflict",
    "SessionInfo",
    "SessionStore",
    "StoreSink",
    "StoredEvent",
    "decode_event",
    "encode_event",
    "open_store",
    "store_url",
]
