"""A policy applied to one model: every budget, reserve and watermark in absolute tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ctxbudget.budget.amounts import pick_component
from ctxbudget.errors import PolicyError, UsageError
from ctxbudget.session.items import Component, ComponentKind

__all__ = ["Allocation", "ComponentAllocation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentAllocation:
    """One component's absolute budget for one window."""

    component: Component
    """The component."""
    kind: ComponentKind
    """How it may be treated when space runs short."""
    budget: int | None
    """Budget (tokens); ``None`` when unbudgeted (counts against the usable window only)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """A policy applied to one model: every size in absolute tokens."""

    context_window: int
    """The model's context window (tokens)."""
    output_reserve: int
    """Kept free for the response; the ``max_tokens`` to send (tokens)."""
    safety_margin: int
    """Kept free for counting error (tokens)."""
    usable: int
    """What the input may fill (tokens)."""
    high_watermark: int
    """Compact when the input exceeds this (tokens)."""
    low_watermark: int
    """Compact down to this (tokens)."""
    components: tuple[ComponentAllocation, ...]
    """One entry per :class:`Component`, in declaration order."""
    policy_name: str = "custom"
    """Name of the policy this came from."""

    def __post_init__(self) -> None:
        if tuple(c.component for c in self.components) != tuple(Component):
            raise PolicyError("an allocation needs one entry per component, in Component order")
        if self.usable <= 0 or not 0 <= self.low_watermark <= self.high_watermark <= self.usable:
            raise PolicyError("an allocation needs usable > 0 and 0 <= low <= high <= usable")

    def component(self, component: Component) -> ComponentAllocation:
        """The entry of ``component``."""
        return self.components[_INDEX[component]]

    def budget(self, component: Component) -> int | None:
        """The budget of ``component`` (tokens), ``None`` when unbudgeted."""
        return self.component(component).budget

    def kind(self, component: Component) -> ComponentKind:
        """The kind of ``component``."""
        return self.component(component).kind

    def check_fixed(self, sizes: Mapping[Component, int]) -> None:
        """Raise :class:`PolicyError` if fixed content cannot fit.

        ``sizes`` maps components to their current size (tokens); non-fixed ones are ignored.
        Each fixed component must fit its own budget, and all fixed content the usable window.
        """
        total = 0
        for key, size in sizes.items():
            entry = self.component(pick_component(key))
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise UsageError(f"size of {entry.component.value!r} must be a non-negative int")
            if entry.kind is not ComponentKind.FIXED:
                continue
            total += size
            if entry.budget is not None and size > entry.budget:
                raise PolicyError(
                    f"fixed component {entry.component.value!r} is {size:,} tokens but its budget "
                    f"is {entry.budget:,}; shorten it, raise its share or tokens in the policy, "
                    f"or use a model with a larger window",
                    component=entry.component.value,
                    size=size,
                    budget=entry.budget,
                )
        if total > self.usable:
            raise PolicyError(
                f"fixed content totals {total:,} tokens but the usable window is {self.usable:,}; "
                f"shorten the system prompt or tools, or lower the output reserve",
                component="fixed",
                size=total,
                budget=self.usable,
            )


_INDEX: Mapping[Component, int] = MappingProxyType({c: i for i, c in enumerate(Component)})
