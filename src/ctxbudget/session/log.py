"""The session as an append-only log: items appended, compactions recorded, nothing deleted.

The context the model sees is a :class:`~ctxbudget.session.view.View` replayed from this log. A
compaction is a :class:`CompactionRecord` of :class:`Edit` s (which items leave the view,
which new items take their place); the originals stay in the log, so every compaction is
restorable and :meth:`SessionLog.recall` returns any item ever appended.

A log may have a write-through *sink* (a session store): every event is handed to it
before the append returns, so an acknowledged append is durable; :meth:`SessionLog.batch`
hands an exchange's events over in one call, so a store writes them in one transaction.
``Prepared`` and ``Observed`` mark the manager's calls, so a resumed session can re-drive
them and reach the same state (and the same next request bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from ctxbudget.billing.usage import Usage
from ctxbudget.errors import StorageError, UsageError
from ctxbudget.session.items import Item, ToolSpec

__all__ = [
    "Appended",
    "CompactionRecord",
    "Edit",
    "EditKind",
    "Event",
    "Marked",
    "Observed",
    "Prepared",
    "SessionLog",
    "Sink",
    "Snapshot",
    "ToolsSet",
]

EditKind: TypeAlias = Literal[
    "hide", "placeholder", "truncate", "dedup", "summarize", "reset", "reinject", "retract"
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Edit:
    """Take some items out of the view and put new ones (possibly none) where the first stood."""

    kind: EditKind
    """What the edit does, for reports."""
    remove: tuple[str, ...]
    """Ids of view items taken out (their originals stay recallable from the log)."""
    insert: tuple[Item, ...] = ()
    """New items placed where the first removed item stood (placeholders, summaries...)."""
    note: str = ""
    """Why, in a few words (e.g. ``"duplicate of m12"``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompactionRecord:
    """One compaction step of one strategy: its edits and what they freed."""

    strategy: str
    """Name of the strategy that proposed the edits."""
    edits: tuple[Edit, ...]
    """The edits, applied in order."""
    tokens_before: int
    """Input tokens of the view before (tokens)."""
    tokens_after: int
    """Input tokens of the view after (tokens)."""
    exact: bool
    """Whether both counts are exact."""
    reason: str = ""
    """Why compaction ran (e.g. ``"over high watermark: 91,200 > 90,000"``)."""

    @property
    def freed(self) -> int:
        """Tokens the record freed (tokens)."""
        return self.tokens_before - self.tokens_after


@dataclass(frozen=True, slots=True)
class Appended:
    """An item entered the session."""

    seq: int
    item: Item


@dataclass(frozen=True, slots=True)
class Compacted:
    """A compaction was applied to the view."""

    seq: int
    record: CompactionRecord


@dataclass(frozen=True, slots=True)
class ToolsSet:
    """The tool schemas offered to the model changed."""

    seq: int
    tools: tuple[ToolSpec, ...]


def _no_options() -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request was prepared: what a resumed session re-drives to restore the manager."""

    seq: int
    provider: str
    """The ``provider`` argument of ``prepare``."""
    now: float
    """The manager's clock when it prepared (seconds; dates cache entries)."""
    input_limit: int | None = None
    """The ``input_limit`` argument, if any (tokens)."""
    options: Mapping[str, Any] = field(default_factory=_no_options)
    """Extra request options passed to ``prepare`` (JSON values)."""


@dataclass(frozen=True, slots=True)
class Observed:
    """The provider's billed usage for the last prepared request was reported."""

    seq: int
    usage: Usage


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The manager's derived state here, so a resume need not re-drive earlier prepares.

    Written by :mod:`ctxbudget.engine.snapshot`; ``state`` is plain JSON in the format of
    ``version`` (an unknown version is ignored: the session resumes by full replay)."""

    seq: int
    version: int
    """Format of ``state``."""
    state: Mapping[str, Any]
    """The state (JSON values)."""


@dataclass(frozen=True, slots=True)
class Marked:
    """A note an integration keeps in the session's log (the proxy's position in its
    client's message list); it changes nothing the model sees and is replayed as is."""

    seq: int
    name: str
    """Who keeps it (``proxy``...); the latest mark of a name is :meth:`SessionLog.mark_of`."""
    data: Mapping[str, Any]
    """The note (JSON values)."""


Event: TypeAlias = Appended | Compacted | ToolsSet | Prepared | Observed | Snapshot | Marked

Sink: TypeAlias = Callable[[Sequence[Event]], None]
"""Receives new events (consecutive ``seq``) and makes them durable, or raises."""


class SessionLog:
    """Append-only event log of one session; the single source of truth."""

    def __init__(self, sink: Sink | None = None) -> None:
        self._events: list[Event] = []
        self._items: dict[str, Item] = {}
        self._sink = sink
        self._batch: list[Event] | None = None
        self._broken = ""

    @classmethod
    def from_events(cls, events: Sequence[Event]) -> SessionLog:
        """A log holding stored events as they are (positions must be 0, 1, 2...)."""
        log = cls()
        for position, event in enumerate(events):
            if event.seq != position:
                raise StorageError(f"event at position {position} says seq {event.seq}")
            inserted: tuple[Item, ...] = ()
            if isinstance(event, Appended):
                inserted = (event.item,)
            elif isinstance(event, Compacted):
                inserted = tuple(i for e in event.record.edits for i in e.insert)
            for item in inserted:
                log._check_new(item)
            log._record(event, inserted)
        return log

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    @property
    def events(self) -> tuple[Event, ...]:
        """Every event, in order."""
        return tuple(self._events)

    def attach(self, sink: Sink | None) -> None:
        """Write every later event through ``sink`` before the append returns (None: stop)."""
        if self._batch is not None:
            raise UsageError("cannot change the sink inside a batch()")
        self._sink = sink

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hand the events appended inside the block to the sink in one call, at the end.

        Use it around an exchange (an assistant turn and all its tool results) so a store
        writes it in one transaction: no other writer's events can land in the middle. If
        the block raises, nothing is written and the log refuses further appends (the
        caller's state and the store's differ: reopen the session).
        """
        if self._batch is not None:
            yield  # nested: the outer batch writes
            return
        self._batch = []
        try:
            yield
        except BaseException:
            self._broken = "a batch() block raised before its events were written"
            raise
        finally:
            pending, self._batch = self._batch, None
        if pending and self._sink is not None:
            self._write(self._sink, pending)

    def append(self, item: Item) -> Appended:
        """Record a new item; ids are unique for the whole session."""
        self._check_new(item)
        event = Appended(len(self._events), item)
        self._record(event, (item,))
        return event

    def compact(self, record: CompactionRecord) -> Compacted:
        """Record a compaction; the items it inserts become recallable too."""
        inserted = tuple(item for edit in record.edits for item in edit.insert)
        for item in inserted:
            self._check_new(item)
        event = Compacted(len(self._events), record)
        self._record(event, inserted)
        return event

    def set_tools(self, tools: tuple[ToolSpec, ...]) -> ToolsSet:
        """Record the tool schemas now offered."""
        event = ToolsSet(len(self._events), tools)
        self._record(event, ())
        return event

    def prepared(
        self,
        provider: str,
        *,
        now: float,
        input_limit: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Prepared:
        """Record that a request was prepared (the manager calls this at the start)."""
        event = Prepared(len(self._events), provider, now, input_limit, dict(options or {}))
        self._record(event, ())
        return event

    def observed(self, usage: Usage) -> Observed:
        """Record the billed usage of the last prepared request."""
        event = Observed(len(self._events), usage)
        self._record(event, ())
        return event

    def snapshot(self, version: int, state: Mapping[str, Any]) -> Snapshot:
        """Record the manager's derived state (see :class:`Snapshot`)."""
        event = Snapshot(len(self._events), version, state)
        self._record(event, ())
        return event

    def mark(self, name: str, data: Mapping[str, Any]) -> Marked:
        """Record an integration's note (see :class:`Marked`)."""
        event = Marked(len(self._events), name, dict(data))
        self._record(event, ())
        return event

    def mark_of(self, name: str) -> Mapping[str, Any] | None:
        """The data of the latest mark named ``name``, None if there is none."""
        for event in reversed(self._events):
            if isinstance(event, Marked) and event.name == name:
                return event.data
        return None

    def recall(self, item_id: str) -> Item:
        """Any item ever appended or inserted, by id, exactly as it was."""
        item = self._items.get(item_id)
        if item is None:
            raise UsageError(f"no item {item_id!r} in this session's log")
        return item

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def records(self) -> tuple[CompactionRecord, ...]:
        """Every compaction record, in order."""
        return tuple(e.record for e in self._events if isinstance(e, Compacted))

    def _check_new(self, item: Item) -> None:
        if item.id in self._items:
            raise UsageError(
                f"item id {item.id!r} is already in this session; every item needs a unique id"
            )

    def _record(self, event: Event, items: tuple[Item, ...]) -> None:
        if self._broken:
            raise StorageError(
                f"this session's log no longer matches its store ({self._broken}); "
                "reopen the session from the store and retry"
            )
        if self._batch is not None:
            self._batch.append(event)
        elif self._sink is not None:
            self._write(self._sink, [event])
        self._events.append(event)
        for item in items:
            self._items[item.id] = item

    def _write(self, sink: Sink, events: list[Event]) -> None:
        try:
            sink(events)
        except BaseException as exc:
            self._broken = f"writing events {events[0].seq}..{events[-1].seq} failed: {exc}"
            raise
