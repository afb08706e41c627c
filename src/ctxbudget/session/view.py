"""The view: the items the model sees now, replayed from the log's appends and compactions.

Appending is O(1). Applying an edit costs the part of the view from the first item it
touches on (the tail a scheduled digest rewrites is short), plus the tool calls and results
it names; after every edit the view is checked for orphaned tool calls and results, so a
faulty edit can never reach a request. The view counts its compactions (``epoch``) and
remembers where each began, so a renderer can tell which leading items it already wrote
are unchanged (:meth:`View.kept`) and render only the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import overload

from ctxbudget.errors import UsageError
from ctxbudget.session.items import Item
from ctxbudget.session.log import Appended, Compacted, Edit, SessionLog

__all__ = ["Unit", "View", "units"]


class View(Sequence[Item]):
    """Ordered items currently in context (a read-only sequence; ``id in view`` tests ids)."""

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._items: list[Item] = list(items)
        self._index: dict[str, int] | None = None
        """Item id → its index; built on first use, then kept up to date."""
        self._refs: dict[str, set[str]] | None = None
        """Call id → ids of the items holding that call or a result of it (with ``_index``)."""
        self.epoch = 0
        """Compactions applied so far (appends do not count)."""
        self._firsts: list[int] = []
        """``_firsts[e]``: index of the first item the compaction ending epoch ``e`` touched."""

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

    @overload
    def __getitem__(self, index: int) -> Item: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Item, ...]: ...
    def __getitem__(self, index: int | slice) -> Item | tuple[Item, ...]:
        """An item, or a tuple of items for a slice (costs the slice, not the view)."""
        if isinstance(index, slice):
            return tuple(self._items[index])
        return self._items[index]

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._positions()

    @property
    def items(self) -> tuple[Item, ...]:
        """The items, in order (a copy: O(n); prefer indexing, ``tail`` or ``position``)."""
        return tuple(self._items)

    def position(self, item_id: str) -> int | None:
        """Index of ``item_id`` in the view (None: not in it)."""
        return self._positions().get(item_id)

    def tail(self, start: int) -> tuple[Item, ...]:
        """The items from index ``start`` on (cheap: no copy of the head)."""
        return tuple(self._items[start:])

    def kept(self, epoch: int) -> int:
        """How many leading items no compaction touched since the view's ``epoch`` was
        ``epoch``: each of them is the object that stood at its index then, or was
        appended after everything there then."""
        if not 0 <= epoch <= self.epoch:
            return 0
        return min(self._firsts[epoch:], default=len(self._items))

    def append(self, item: Item) -> None:
        """Add an item at the end."""
        if self._index is not None:
            self._index[item.id] = len(self._items)
            self._add_refs(item)
        self._items.append(item)

    def _positions(self) -> dict[str, int]:
        if self._index is None:
            self._index = {item.id: i for i, item in enumerate(self._items)}
            self._refs = {}
            for item in self._items:
                self._add_refs(item)
        return self._index

    def _add_refs(self, item: Item) -> None:
        refs = self._refs
        if refs is None:
            return
        for call in item.tool_calls:
            refs.setdefault(call.id, set()).add(item.id)
        for result in item.tool_results:
            refs.setdefault(result.call_id, set()).add(item.id)

    def _drop_refs(self, item: Item) -> None:
        refs = self._refs
        if refs is None:
            return
        for call_id in {c.id for c in item.tool_calls} | {r.call_id for r in item.tool_results}:
            holders = refs.get(call_id)
            if holders is not None:
                holders.discard(item.id)
                if not holders:
                    del refs[call_id]

    def apply(self, edits: Sequence[Edit]) -> None:
        """Apply edits in order; all or nothing, and never creating an orphan.

        Orphans already in the view (a log that ended mid-call) are not the edit's doing
        and do not block it. Only the items from the first one removed on are rebuilt.
        """
        positions = self._positions()
        first = min(
            (positions[i] for edit in edits for i in edit.remove if i in positions),
            default=len(self._items),
        )
        old = self._items[first:]
        new = self._apply_all(old, edits)
        calls, results = self._new_orphans(first, old, new)
        if calls or results:
            raise UsageError(
                f"compaction would orphan tool calls {sorted(calls)} / results "
                f"{sorted(results)}; edit rejected"
            )
        del self._items[first:]
        self._items.extend(new)
        for item in old:
            del positions[item.id]
            self._drop_refs(item)
        for index, item in enumerate(new, first):
            positions[item.id] = index
            self._add_refs(item)
        self._firsts.append(first)
        self.epoch += 1

    def _apply_all(self, tail: list[Item], edits: Sequence[Edit]) -> list[Item]:
        """The tail after ``edits``: one pass when the edits are disjoint (the usual case);
        one pass per edit when an edit removes what another put in."""
        inserted = {i.id for edit in edits for i in edit.insert}
        if not any(inserted.intersection(edit.remove) for edit in edits):
            return _apply_batch(tail, edits, self._positions())
        items = tail
        for edit in edits:
            items = _apply_batch(items, [edit], {it.id: n for n, it in enumerate(items)})
        return items

    def _new_orphans(
        self, first: int, old: Sequence[Item], new: Sequence[Item]
    ) -> tuple[set[str], set[str]]:
        """Calls and results the change of ``old`` (from index ``first``) into ``new``
        orphans, as :func:`~ctxbudget.session.exchanges.find_orphans` over the whole view
        before and after would tell them apart; only calls named in the changed items are
        looked at (no other call's partners moved)."""
        named = {c.id for i in (*old, *new) for c in i.tool_calls}
        named.update(r.call_id for i in (*old, *new) for r in i.tool_results)
        if not named:
            return set(), set()
        positions, refs = self._positions(), self._refs or {}
        head = {
            positions[h] for call_id in named for h in refs.get(call_id, ()) if positions[h] < first
        }
        context = [self._items[p] for p in sorted(head)]
        last_before = self._items[-1] if self._items else None
        last_after = new[-1] if new else (self._items[first - 1] if first else None)
        calls_before, stray_before = _orphans_of([*context, *old], named, last_before)
        calls_after, stray_after = _orphans_of([*context, *new], named, last_after)
        return calls_after - calls_before, stray_after - stray_before


def _orphans_of(
    items: Sequence[Item], named: set[str], last: Item | None
) -> tuple[set[str], set[str]]:
    """``find_orphans`` (pending tail allowed) over ``items`` in view order, for the calls
    in ``named`` only; ``last`` is the view's last item."""
    seen: dict[str, Item] = {}
    answered: set[str] = set()
    stray: set[str] = set()
    for item in items:
        for result in item.tool_results:
            if result.call_id not in named:
                continue
            if result.call_id in seen:
                answered.add(result.call_id)
            else:
                stray.add(result.call_id)
        for call in item.tool_calls:
            if call.id in named:
                seen[call.id] = item
    missing = {c for c, holder in seen.items() if c not in answered and holder is not last}
    return missing, stray


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
