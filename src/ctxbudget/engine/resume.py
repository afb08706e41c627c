"""Resume a stored session in a new process: the same log, the same state, the same bytes.

:func:`open_session` builds a manager (the class is passed in, so this layer never imports
the manager back) and re-drives the stored events through
its public API: items are appended, tool schemas set, requests prepared again at their
recorded clock time, billed usage observed again. So everything the manager derives from
its history (id counter, cache breakpoints and warmth, the clearing rent, calibration) is
rebuilt by the same code that built it the first time, and the next ``prepare()`` returns
the bytes the original process would have sent; a provider cache still hits. A model
summarizer is not called during the replay: it is answered with the summaries the log
already holds. Every replayed event is checked against the stored one; a difference (other
settings than the session was recorded with) is a ``StorageError``, never a silent fork.
Then the manager's log writes through to the store: each later append is durable before
it returns.

A log with a :class:`~ctxbudget.session.log.Snapshot` (the manager writes one every few
prepares, :mod:`~ctxbudget.engine.snapshot`) is loaded up to its latest one without
re-driving it, the state restored from the snapshot, and only the events after it are
re-driven: resuming no longer grows with the number of prepares. An older log without
snapshots, or one of an unknown snapshot version, is replayed in full.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, Protocol, TypeVar

from ctxbudget.billing.usage import Usage
from ctxbudget.budget.models import ModelSpec
from ctxbudget.cache.fingerprint import CacheBustWarning
from ctxbudget.compaction.strategies.base import Proposal
from ctxbudget.compaction.strategies.summarize import is_summary, summary_body
from ctxbudget.compaction.summarizers import Summarizer, SummaryRequest
from ctxbudget.engine.snapshot import restore
from ctxbudget.errors import ConfigError, ContextOverflow, StorageError, UsageError
from ctxbudget.session.items import Item, ToolSpec
from ctxbudget.session.log import (
    Appended,
    Compacted,
    Event,
    Marked,
    Observed,
    Prepared,
    SessionLog,
    Snapshot,
    ToolsSet,
)
from ctxbudget.store.base import SessionStore, check_session_id
from ctxbudget.store.events import decode_event
from ctxbudget.store.sink import StoreSink
from ctxbudget.store.url import open_store


class Replayable(Protocol):
    """What a replay drives: the manager's public API (``ContextManager`` has it)."""

    @property
    def log(self) -> SessionLog: ...

    def extend(self, messages: Sequence[Item], /) -> Sequence[Item]: ...

    def set_tools(self, tools: Sequence[ToolSpec], /) -> object: ...

    def apply(self, strategy: str, proposal: Proposal, reason: str, /) -> object: ...

    def prepare(
        self, provider: Any, *, input_limit: int | None = ..., **options: Any
    ) -> object: ...

    def observe_usage(self, usage: Usage, /) -> object: ...


M = TypeVar("M", bound=Replayable)

__all__ = ["open_session", "replay"]


class _ReplayClock:
    """The recorded clock readings while replaying, the real clock afterwards."""

    def __init__(self, real: Callable[[], float]) -> None:
        self.real = real
        self.queue: deque[float] = deque()

    def __call__(self) -> float:
        return self.queue.popleft() if self.queue else self.real()


class _ReplaySummarizer:
    """Answers summary requests from the stored summaries while replaying; then the real one."""

    def __init__(self, real: Summarizer) -> None:
        self.real = real
        self.recorded: dict[frozenset[str], str] | None = {}

    def remember(self, event: Event) -> None:
        if not isinstance(event, Compacted) or self.recorded is None:
            return
        for edit in event.record.edits:
            for item in edit.insert:
                if is_summary(item):
                    self.recorded[frozenset(edit.remove)] = summary_body(item)

    def __call__(self, request: SummaryRequest) -> Any:
        if self.recorded is None:
            return self.real(request)
        text = self.recorded.get(frozenset(request.covers))
        if text is None:
            raise LookupError("no stored summary covers these items (replay)")
        return text


def open_session(
    factory: Callable[..., M],
    session_id: str,
    store: SessionStore | str | None = None,
    model: str | ModelSpec | None = None,
    *,
    from_snapshot: bool = True,
    **settings: Any,
) -> M:
    """The session ``session_id`` of ``store``, resumed (or created empty), writing through.

    ``store``: a :class:`SessionStore` or a URL (None: ``$CTXBUDGET_STORE`` or the project's
    SQLite file). ``model`` defaults to the one the session was recorded with; other
    ``settings`` are ``ContextManager`` keyword arguments and must be those the session was
    recorded with (a different policy replays differently, which is refused). ``factory``
    builds the manager: ``factory(model, clock=..., summarizer=..., **settings)``.
    ``from_snapshot``: start from the latest snapshot in the log (False: replay every event,
    the way sessions were resumed before snapshots; for comparison).
    """
    check_session_id(session_id)
    if not isinstance(store, SessionStore):
        store = open_store(store)
    info = store.info(session_id)
    recorded = info.meta.get("model") if info is not None else None
    chosen = model if model is not None else recorded
    if chosen is None:
        raise ConfigError(
            f"session {session_id!r} is new: pass the model, e.g. "
            f"ContextManager.open({session_id!r}, store, model='gpt-4o')"
        )
    if info is None:
        name = chosen.name if isinstance(chosen, ModelSpec) else chosen
        store.create(session_id, {"model": name})
    clock = _ReplayClock(settings.pop("clock", None) or time.monotonic)
    real = settings.pop("summarizer", None)
    summarizer = _ReplaySummarizer(real) if real is not None else None
    settings.setdefault("session_id", session_id)
    manager = factory(chosen, clock=clock, summarizer=summarizer, **settings)
    events = [decode_event(e) for e in store.load(session_id)]
    if summarizer is not None:
        for event in events:
            summarizer.remember(event)
    start = restore(manager, events) if from_snapshot else 0
    snapshots = getattr(manager, "_snapshots", None)
    if snapshots is not None:
        snapshots.enabled = False  # the stored log holds the snapshots it has
    try:
        replay(manager, events[start:], clock=clock, summarizer=summarizer, session_id=session_id)
    finally:
        if snapshots is not None:
            snapshots.enabled = True
    if summarizer is not None:
        summarizer.recorded = None
    sink = StoreSink(store, session_id)
    extra = manager.log.events[len(events) :]
    if extra:
        # the writer died between an event and the ones the manager derives from it (a
        # door truncation after an append, compactions of a prepare): write them now
        sink(extra)
    manager.log.attach(sink)
    return manager


def replay(
    manager: Replayable,
    events: Sequence[Event],
    *,
    clock: _ReplayClock | None = None,
    summarizer: _ReplaySummarizer | None = None,
    session_id: str = "",
) -> None:
    """Re-drive ``events`` through ``manager`` and check it logs exactly them."""
    if summarizer is not None:
        for event in events:
            summarizer.remember(event)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheBustWarning)  # busts were reported the first time
        for event in events:
            if event.seq < len(manager.log):
                _check(manager, event, session_id)  # the manager derived it itself
                continue
            _drive(manager, event, clock)
            _check(manager, event, session_id)


def _drive(manager: Replayable, event: Event, clock: _ReplayClock | None) -> None:
    if isinstance(event, Appended):
        manager.extend([event.item])
    elif isinstance(event, ToolsSet):
        manager.set_tools(list(event.tools))
    elif isinstance(event, Compacted):
        record = event.record
        manager.apply(record.strategy, Proposal(edits=record.edits), record.reason)
    elif isinstance(event, Prepared):
        if clock is not None:
            clock.queue.append(event.now)
        with suppress(ContextOverflow, UsageError):  # raised the first time too: checked below
            manager.prepare(
                event.provider,
                input_limit=event.input_limit,
                **dict(event.options),
            )
        if clock is not None:
            clock.queue.clear()
    elif isinstance(event, Observed):
        manager.observe_usage(event.usage)
    elif isinstance(event, Marked):
        manager.log.mark(event.name, event.data)
    elif isinstance(event, Snapshot):
        manager.log.snapshot(event.version, event.state)
        snapshots = getattr(manager, "_snapshots", None)
        if snapshots is not None:
            snapshots.written()


def _check(manager: Replayable, stored: Event, session_id: str) -> None:
    produced = manager.log.events[stored.seq] if stored.seq < len(manager.log) else None
    if produced == stored:
        return
    raise StorageError(
        f"session {session_id!r} does not replay to its stored log: event {stored.seq} is "
        f"{_describe(stored)} in the store but {_describe(produced)} when replayed. Open it "
        "with the settings it was recorded with (model, context_window, max_output_tokens, "
        "policy, strategies, cost_aware...)."
    )


def _describe(event: Event | None) -> str:
    if event is None:
        return "missing"
    if isinstance(event, Appended):
        return f"item {event.item.id!r}"
    if isinstance(event, Compacted):
        return (
            f"a {event.record.strategy!r} compaction ({event.record.tokens_after:,} tokens after)"
        )
    if isinstance(event, ToolsSet):
        return f"{len(event.tools)} tool schemas"
    if isinstance(event, Prepared):
        return f"a {event.provider} request prepared"
    if isinstance(event, Snapshot):
        return "a state snapshot"
    if isinstance(event, Marked):
        return f"a {event.name!r} mark"
    return "billed usage"
