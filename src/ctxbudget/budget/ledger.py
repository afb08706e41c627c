"""Incremental token accounting for the current view: used / budget / remaining per component.

The :class:`Ledger` keeps running sums, so every ``add``, ``remove`` and ``replace`` is O(1),
and so are the totals and the watermark checks. It also counts the *estimated* items per
component, so whether a component's count is exact is known in O(1) too.

Anything that takes room in the request is an entry, including fixed overhead such as the
request framing or the tool schemas (e.g. id ``"tools"`` under ``Component.TOOLS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ctxbudget.budget.policy import Allocation
from ctxbudget.errors import UsageError
from ctxbudget.session.items import Component, ComponentKind
from ctxbudget.tokens.count import TokenCount

__all__ = ["ComponentUsage", "Ledger", "LedgerSnapshot"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentUsage:
    """One component's row of a :class:`LedgerSnapshot`."""

    component: Component
    """The component."""
    kind: ComponentKind
    """How it may be treated when space runs short."""
    used: int
    """Tokens its entries take now (tokens)."""
    budget: int | None
    """Its budget (tokens); ``None`` when unbudgeted."""
    items: int
    """How many entries it has (count)."""
    exact: bool
    """True when every entry's count is exact (vacuously true when empty)."""

    @property
    def remaining(self) -> int | None:
        """Budget left (tokens), negative when over; ``None`` when unbudgeted."""
        return None if self.budget is None else self.budget - self.used

    @property
    def utilization(self) -> float | None:
        """``used / budget`` (1.0 = full); ``None`` when the budget is 0 or unbudgeted."""
        return self.used / self.budget if self.budget else None

    @property
    def over_budget(self) -> bool:
        """True when a budget exists and ``used`` exceeds it."""
        return self.budget is not None and self.used > self.budget

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, derived values included."""
        return {
            "component": self.component.value,
            "kind": self.kind.value,
            "used": self.used,
            "budget": self.budget,
            "remaining": self.remaining,
            "utilization": self.utilization,
            "items": self.items,
            "exact": self.exact,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerSnapshot:
    """The ledger at one moment: per-component rows, totals and the window's cut."""

    components: tuple[ComponentUsage, ...]
    """One row per :class:`Component`, in declaration order."""
    total: TokenCount
    """All entries together (tokens; exact only if every entry is)."""
    context_window: int
    """The model's window (tokens)."""
    output_reserve: int
    """Kept free for the response (tokens)."""
    safety_margin: int
    """Kept free for counting error (tokens)."""
    usable: int
    """What the input may fill (tokens)."""
    high_watermark: int
    """Compaction starts above this (tokens)."""
    low_watermark: int
    """Compaction brings use back to this (tokens)."""

    def row(self, component: Component) -> ComponentUsage:
        """The row of ``component``."""
        return next(r for r in self.components if r.component is component)

    @property
    def remaining(self) -> int:
        """Usable tokens left (negative when over)."""
        return self.usable - self.total.tokens

    @property
    def occupancy(self) -> float:
        """Share of the usable window in use (1.0 = full)."""
        return self.total.tokens / self.usable

    @property
    def fits(self) -> bool:
        """True when the input fits the usable window."""
        return self.total.tokens <= self.usable

    @property
    def over_high_watermark(self) -> bool:
        """True when use is above the high watermark: time to compact."""
        return self.total.tokens > self.high_watermark

    @property
    def under_low_watermark(self) -> bool:
        """True when use is at or below the low watermark: compaction may stop."""
        return self.total.tokens <= self.low_watermark

    @property
    def over_budget(self) -> tuple[Component, ...]:
        """Components whose use exceeds their budget."""
        return tuple(r.component for r in self.components if r.over_budget)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, derived values included."""
        return {
            "components": [r.to_dict() for r in self.components],
            "total": self.total.tokens,
            "exact": self.total.exact,
            "context_window": self.context_window,
            "output_reserve": self.output_reserve,
            "safety_margin": self.safety_margin,
            "usable": self.usable,
            "remaining": self.remaining,
            "occupancy": self.occupancy,
            "high_watermark": self.high_watermark,
            "low_watermark": self.low_watermark,
            "over_high_watermark": self.over_high_watermark,
            "under_low_watermark": self.under_low_watermark,
        }


class Ledger:
    """Running token sums per component for the entries now in the view."""

    __slots__ = ("_allocation", "_entries", "_estimated", "_items", "_total", "_used")

    def __init__(self, allocation: Allocation) -> None:
        if not isinstance(allocation, Allocation):
            raise UsageError("Ledger needs an Allocation, e.g. preset('agent').allocate_for(spec)")
        self._allocation = allocation
        self._entries: dict[str, tuple[Component, TokenCount]] = {}
        self._used = dict.fromkeys(Component, 0)
        self._items = dict.fromkeys(Component, 0)
        self._estimated = dict.fromkeys(Component, 0)
        self._total = 0

    @property
    def allocation(self) -> Allocation:
        """The budgets the ledger measures against."""
        return self._allocation

    def reallocate(self, allocation: Allocation) -> None:
        """Measure against new budgets (another model or policy); entries are kept."""
        if not isinstance(allocation, Allocation):
            raise UsageError("reallocate needs an Allocation")
        self._allocation = allocation

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def get(self, item_id: str) -> tuple[Component, TokenCount] | None:
        """The component and count of ``item_id``, or ``None`` if absent."""
        return self._entries.get(item_id)

    def add(self, item_id: str, component: Component, count: TokenCount) -> None:
        """Account ``count`` tokens to ``component`` under a new id."""
        if not isinstance(item_id, str) or not item_id:
            raise UsageError(f"ledger ids must be non-empty strings, got {item_id!r}")
        if item_id in self._entries:
            raise UsageError(
                f"ledger already has an entry {item_id!r}; use replace() to change its count"
            )
        if not isinstance(component, Component):
            raise UsageError(f"component of {item_id!r} must be a Component, got {component!r}")
        _check_count(item_id, count)
        self._entries[item_id] = (component, count)
        self._apply(component, count, +1)

    def remove(self, item_id: str) -> TokenCount:
        """Drop ``item_id``; returns the count it had."""
        component, count = self._entry(item_id)
        del self._entries[item_id]
        self._apply(component, count, -1)
        return count

    def replace(
        self, item_id: str, count: TokenCount, *, component: Component | None = None
    ) -> TokenCount:
        """Give ``item_id`` a new count (and optionally move it); returns the old count."""
        old_component, old = self._entry(item_id)
        new_component = old_component if component is None else component
        if not isinstance(new_component, Component):
            raise UsageError(f"component of {item_id!r} must be a Component, got {component!r}")
        _check_count(item_id, count)
        self._apply(old_component, old, -1)
        self._entries[item_id] = (new_component, count)
        self._apply(new_component, count, +1)
        return old

    def _entry(self, item_id: str) -> tuple[Component, TokenCount]:
        entry = self._entries.get(item_id)
        if entry is None:
            raise UsageError(f"ledger has no entry {item_id!r}; add() it first")
        return entry

    def _apply(self, component: Component, count: TokenCount, sign: int) -> None:
        self._used[component] += sign * count.tokens
        self._items[component] += sign
        if not count.exact:
            self._estimated[component] += sign
        self._total += sign * count.tokens

    @property
    def total(self) -> TokenCount:
        """All entries together."""
        return TokenCount(self._total, not any(self._estimated.values()))

    def used(self, component: Component) -> TokenCount:
        """What ``component``'s entries take now."""
        return TokenCount(self._used[component], self._estimated[component] == 0)

    @property
    def over_high_watermark(self) -> bool:
        """True when use is above the high watermark: time to compact."""
        return self._total > self._allocation.high_watermark

    @property
    def under_low_watermark(self) -> bool:
        """True when use is at or below the low watermark: compaction may stop."""
        return self._total <= self._allocation.low_watermark

    def check_fixed(self) -> None:
        """Raise :class:`~ctxbudget.errors.PolicyError` if fixed content overflows its budget.

        Call it after setting fixed content (system prompt, tool schemas).
        """
        self._allocation.check_fixed(self._used)

    def snapshot(self) -> LedgerSnapshot:
        """The current state: a row per component plus the totals."""
        allocation = self._allocation
        rows = tuple(
            ComponentUsage(
                component=entry.component,
                kind=entry.kind,
                used=self._used[entry.component],
                budget=entry.budget,
                items=self._items[entry.component],
                exact=self._estimated[entry.component] == 0,
            )
            for entry in allocation.components
        )
        return LedgerSnapshot(
            components=rows,
            total=self.total,
            context_window=allocation.context_window,
            output_reserve=allocation.output_reserve,
            safety_margin=allocation.safety_margin,
            usable=allocation.usable,
            high_watermark=allocation.high_watermark,
            low_watermark=allocation.low_watermark,
        )


def _check_count(item_id: str, count: object) -> None:
    if not isinstance(count, TokenCount):
        raise UsageError(f"count of {item_id!r} must be a TokenCount, got {count!r}")
    if isinstance(count.tokens, bool) or not isinstance(count.tokens, int) or count.tokens < 0:
        raise UsageError(f"count of {item_id!r} must be a non-negative int of tokens")
