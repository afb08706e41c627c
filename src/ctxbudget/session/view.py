"""The view: the items the model sees now, replayed from the log's appends and compactions.

Appending is O(1). Applying an edit is O(n) in the view's length, which is fine because
compaction runs in batches (hysteresis), not on every turn. After every edit the view is
checked for orphaned tool calls and results, so a faulty edit can never reach a request.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ctxbudget.errors import UsageError
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import Item
from ctxbudget.session.log import Appended, Compacted, Edit, SessionLog

__all__ = ["Unit", "View", "units"]


class View:
    """Ordered items currently in context."""

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._items: list[Item] = list(items)
        self._index: dict[str, int] | None = None

    @classmethod
    def replay(cls, log: SessionLog) -> View:
        """Rebuild the view from a log: every append, then every compaction, in order."""
        view = cls()
        for event in log:
            if isinstance(event, Appended):
                view.append(event.item)
            elif isinstance(event, Compacted):
                view.apply(event.record.edits)
        return view

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._positions()

    @property
    def items(self) -> tuple[Item, ...]:
        """The items, in order."""
        return tuple(self._items)

    def position(self, item_id: str) -> int | None:
        """Index of ``item_id`` in the view (None: not in it)."""
        return self._positions().get(item_id)

    def tail(self, start: int) -> tuple[Item, ...]:
        """The items from index ``start`` on (cheap: no copy of the head)."""
        return tuple(self._items[start:])

    def append(self, item: Item) -> None:
        """Add an item at the end."""
        if self._index is not None:
            self._index[item.id] = len(self._items)
        self._items.append(item)

    def _positions(self) -> dict[str, int]:
        if self._index is None:
            self._index = {item.id: i for i, item in enumerate(self._items)}
        return self._index

    def apply(self, edits: Sequence[Edit]) -> None:
        """Apply edits in order; all or nothing, and never creating an orphan.

        Orphans already in the view (a log that ended mid-call) are not the edit's doing
        and do not block it.
        """
        items = self._apply_all(edits)
        before = find_orphans(self._items)
        after = find_orphans(items)
        calls = set(after.calls_without_result) - set(before.calls_without_result)
        results = set(after.results_without_call) - set(before.results_without_call)
        if calls or results:
            raise UsageError(
                f"compaction would orphan tool calls {sorted(calls)} / results "
                f"{sorted(results)}; edit rejected"
            )
        self._items = items
        self._index = None

    def _apply_all(self, edits: Sequence[Edit]) -> list[Item]:
        """The items after ``edits``: one pass over the view when the edits are disjoint
        (the usual case); one pass per edit when an edit removes what another put in.
        """
        inserted = {i.id for edit in edits for i in edit.insert}
        if not any(inserted.intersection(edit.remove) for edit in edits):
            return _apply_batch(self._items, edits, self._positions())
        items = self._items
        for edit in edits:
            items = _apply_batch(items, [edit], {it.id: n for n, it in enumerate(items)})
        return items


def _apply_batch(
    items: Sequence[Item], edits: Sequence[Edit], positions: Mapping[str, int]
) -> list[Item]:
    """Apply disjoint edits in one pass; each one's inserts stand where its first removed
    item stood. ``positions`` maps every id in ``items`` to its index."""
    removed: set[str] = set()
    anchors: dict[str, tuple[Item, ...]] = {}
    for edit in edits:
        _check(edit, positions, removed)
        removed.update(edit.remove)
        if edit.remove:
            anchors[min(edit.remove, key=positions.__getitem__)] = edit.insert
    out: list[Item] = []
    for item in items:
        if item.id in removed:
            out.extend(anchors.get(item.id, ()))
        else:
            out.append(item)
    return out


def _check(edit: Edit, positions: Mapping[str, int], removed: set[str]) -> None:
    """An edit names each item once, only items still in the view, and has an anchor."""
    if len(set(edit.remove)) != len(edit.remove):
        raise UsageError(f"edit {edit.kind!r} names an item twice: {list(edit.remove)}")
    missing = sorted(i for i in edit.remove if i not in positions or i in removed)
    if missing:
        raise UsageError(f"edit {edit.kind!r} removes items not in the view: {missing}")
    if edit.insert and not edit.remove:
        raise UsageError(f"edit {edit.kind!r} inserts items but removes none (no anchor)")


@dataclass(frozen=True, slots=True)
class Unit:
    """Consecutive items that move together: one exchange, or one lone item."""

    items: tuple[Item, ...]
    start: int
    """Index of the first item in the view."""

    @property
    def ids(self) -> tuple[str, ...]:
        """The ids of its items."""
        return tuple(i.id for i in self.items)


def units(items: Sequence[Item]) -> list[Unit]:
    """Split a view into units: an assistant item with tool calls plus the items answering them
    (by exchange id, or by call id), or a single item. No strategy may split a unit."""
    out: list[Unit] = []
    index = 0
    while index < len(items):
        item = items[index]
        group = [item]
        if item.tool_calls:
            pending = {c.id for c in item.tool_calls}
            nxt = index + 1
            while nxt < len(items) and pending:
                follower = items[nxt]
                answered = {r.call_id for r in follower.tool_results}
                if not answered & pending:
                    break
                pending -= answered
                group.append(follower)
                nxt += 1
        out.append(Unit(tuple(group), index))
        index += len(group)
    return out
