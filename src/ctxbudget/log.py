"""The session as an append-only log: items appended, compactions recorded, nothing deleted.

The context the model sees is a :class:`~ctxbudget.view.View` replayed from this log. A
compaction is a :class:`CompactionRecord` of :class:`Edit` s (which items leave the view,
which new items take their place); the originals stay in the log, so every compaction is
restorable and :meth:`SessionLog.recall` returns any item ever appended.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ctxbudget.errors import UsageError
from ctxbudget.items import Item, ToolSpec

__all__ = [
    "Appended",
    "CompactionRecord",
    "Edit",
    "EditKind",
    "Event",
    "SessionLog",
    "ToolsSet",
]

EditKind: TypeAlias = Literal[
    "hide", "placeholder", "truncate", "dedup", "summarize", "reset", "reinject"
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


Event: TypeAlias = Appended | Compacted | ToolsSet


class SessionLog:
    """Append-only event log of one session; the single source of truth."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._items: dict[str, Item] = {}

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    @property
    def events(self) -> tuple[Event, ...]:
        """Every event, in order."""
        return tuple(self._events)

    def append(self, item: Item) -> Appended:
        """Record a new item; ids are unique for the whole session."""
        self._remember(item)
        event = Appended(len(self._events), item)
        self._events.append(event)
        return event

    def compact(self, record: CompactionRecord) -> Compacted:
        """Record a compaction; the items it inserts become recallable too."""
        for edit in record.edits:
            for item in edit.insert:
                self._remember(item)
        event = Compacted(len(self._events), record)
        self._events.append(event)
        return event

    def set_tools(self, tools: tuple[ToolSpec, ...]) -> ToolsSet:
        """Record the tool schemas now offered."""
        event = ToolsSet(len(self._events), tools)
        self._events.append(event)
        return event

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

    def _remember(self, item: Item) -> None:
        if item.id in self._items:
            raise UsageError(
                f"item id {item.id!r} is already in this session; every item needs a unique id"
            )
        self._items[item.id] = item
