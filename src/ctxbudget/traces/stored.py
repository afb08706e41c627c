"""Sessions from a ctxbudget store (the proxy's live traffic, a wrapped agent's log) as
imported sessions, so ``analyze`` and ``simulate`` read them like any agent log.

The items are what the client sent and the model answered, in order (items the caller
took back, a ``retract`` record, are left out; the manager's own compactions are not
applied: the session is the client's history). Every billed usage (an ``observed``
event) is one call, produced by the last assistant item appended before it.
"""

from __future__ import annotations

from dataclasses import replace

from ctxbudget.engine.compactor import RETRACT
from ctxbudget.errors import UsageError
from ctxbudget.session.items import Item, ToolSpec
from ctxbudget.session.log import Appended, Compacted, Observed, ToolsSet
from ctxbudget.store.base import SessionStore
from ctxbudget.store.events import decode_event
from ctxbudget.traces.session import RecordedCall, Session

__all__ = ["stored_session"]


def stored_session(store: SessionStore, session_id: str) -> Session:
    """Session ``session_id`` of ``store`` as an imported session."""
    info = store.info(session_id)
    if info is None:
        raise UsageError(
            f"no session {session_id!r} in {store.url}; `ctxbudget sessions list` shows them"
        )
    items: list[Item] = []
    tools: tuple[ToolSpec, ...] = ()
    calls: list[RecordedCall] = []
    model = info.meta.get("model")
    for stored in store.load(session_id):
        event = decode_event(stored)
        if isinstance(event, Appended):
            items.append(event.item)
        elif isinstance(event, ToolsSet):
            tools = event.tools
        elif isinstance(event, Compacted) and event.record.strategy == RETRACT:
            gone = {i for edit in event.record.edits for i in edit.remove}
            kept = [i for i in items if i.id not in gone]
            moved = {item.id: n for n, item in enumerate(kept)}
            calls = [
                replace(c, position=moved[items[c.position].id])
                for c in calls
                if items[c.position].id in moved
            ]
            items = kept
        elif isinstance(event, Observed):
            position = _last_reply(items)
            if position is not None and (not calls or calls[-1].position != position):
                calls.append(RecordedCall(position=position, usage=event.usage, model=model))
    return Session(
        name=session_id,
        source=f"{store.url} (session {session_id})",
        format="ctxbudget-store",
        items=tuple(items),
        tools=tools,
        calls=tuple(calls),
        model=str(model) if model else None,
    )


def _last_reply(items: list[Item]) -> int | None:
    for position in range(len(items) - 1, -1, -1):
        if items[position].role == "assistant":
            return position
    return None
