"""What every compaction strategy sees and returns.

A strategy is a frozen, keyword-only config dataclass with a ``kind`` literal plus a pure
function ``propose(config, view) -> tuple[Edit, ...]``. It does no I/O (a summarizer it
needs is injected through its config) and never decides *when* to run: the planner does.
Rules every strategy keeps:

* it moves whole units (an exchange: an assistant turn with its tool calls and all their
  results; or one lone item) — replacing a tool result's *content* in place is fine, since
  the call and result stay paired;
* it never touches fixed or pinned items, nor system-role items;
* it touches protected items only when ``view.last_resort`` is set;
* inserted items get deterministic new ids (:func:`derived_id`), so the same log always
  replays to the same view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ctxbudget.session.items import Component, ComponentKind, Item
from ctxbudget.session.log import Edit
from ctxbudget.session.view import Unit, units

if TYPE_CHECKING:
    from ctxbudget.compaction.handoff import HandoffBrief

__all__ = [
    "SMALL_DERIVATIONS",
    "CompactionInput",
    "Proposal",
    "Runner",
    "derived_id",
    "derived_kind",
    "editable",
    "editable_units",
    "original_id",
]


def _no_kinds() -> dict[Component, ComponentKind]:
    return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class CompactionInput:
    """The view a strategy works on, and how much it should free."""

    items: tuple[Item, ...]
    """The view, in order."""
    count: Callable[[Item], int]
    """Tokens one item costs in a request (cached; cheap to call)."""
    need: int
    """Tokens to free to reach the target (may be <= 0: nothing needed)."""
    kinds: Mapping[Component, ComponentKind] = field(default_factory=_no_kinds)
    """Each component's kind under the policy (missing: prunable)."""
    task: str = ""
    """The current task (first and latest user text), for relevance scoring and summaries."""
    last_resort: bool = False
    """When set, protected items may be touched too."""
    keep_last: int = 1
    """The latest units that must stay verbatim (at least the latest turn)."""

    def kind(self, component: Component) -> ComponentKind:
        """The kind of ``component`` (prunable unless the policy says otherwise)."""
        return self.kinds.get(component, ComponentKind.PRUNABLE)


def editable(item: Item, view: CompactionInput) -> bool:
    """Whether a strategy may hide or change ``item``."""
    if item.pinned or item.role in ("system", "developer"):
        return False
    kind = view.kind(item.component)
    if kind is ComponentKind.FIXED:
        return False
    return not ((item.protected or kind is ComponentKind.PROTECTED) and not view.last_resort)


def editable_units(view: CompactionInput) -> list[Unit]:
    """Units every item of which may be edited, excluding the latest ``keep_last`` units."""
    all_units = units(view.items)
    cut = max(len(all_units) - max(view.keep_last, 0), 0)
    return [u for u in all_units[:cut] if all(editable(i, view) for i in u.items)]


def derived_id(original: str, kind: str) -> str:
    """The id of an item a strategy derives from ``original`` (deterministic)."""
    return f"{original}~{kind}"


SMALL_DERIVATIONS = frozenset({"clear", "dedup", "digest"})
"""Derivations that left a placeholder, a pointer or a digest: small and final, nothing
more for a clearing or a digest to take."""


def original_id(item_id: str) -> str:
    """The id of the original ``item_id`` was derived from (itself when it is original)."""
    while derived_kind(item_id) is not None:
        item_id = item_id.rpartition("~")[0]
    return item_id


def derived_kind(item_id: str) -> str | None:
    """The kind of the last derivation in ``item_id`` (see :func:`derived_id`); None if original."""
    _, sep, kind = item_id.rpartition("~")
    return kind if sep else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """What one strategy proposes: edits, and anything the manager must act on."""

    edits: tuple[Edit, ...] = ()
    """The edits, in order (empty: nothing to do)."""
    failure: str | None = None
    """Why the strategy could not run (e.g. the summarizer failed); the cascade moves on."""
    brief: HandoffBrief | None = None
    """The handoff brief of a context reset, for the manager to write to files."""


Runner = Callable[[CompactionInput], Proposal]
"""A configured strategy, ready for the planner: proposes edits for a view."""
