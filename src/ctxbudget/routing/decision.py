"""One routing decision: where a query was sent and why, in a shape metrics can store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ctxbudget.errors import UsageError

__all__ = ["Router", "RoutingDecision", "routing_accuracy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingDecision:
    """Which knowledge domains and tool groups a query goes to, and how that was decided."""

    query: str
    """The text routed (usually the latest user message)."""
    domains: tuple[str, ...]
    """Knowledge domains to retrieve from."""
    tool_groups: tuple[str, ...]
    """Tool groups to offer (see :class:`~ctxbudget.scoping.ToolScope`)."""
    method: str
    """``rules``, ``embedding`` or ``default`` (nothing matched)."""
    scores: tuple[tuple[str, float], ...] = ()
    """Score of each candidate target (rule hits, or cosine similarity), best first."""
    matched: tuple[str, ...] = ()
    """Names of the rules (or routes) that matched."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the metrics record (``ContextManager.note_routing``)."""
        return {
            "query": self.query,
            "domains": list(self.domains),
            "tool_groups": list(self.tool_groups),
            "method": self.method,
            "scores": {name: round(score, 6) for name, score in self.scores},
            "matched": list(self.matched),
        }


class Router(Protocol):
    """Anything that routes a query."""

    def route(self, query: str) -> RoutingDecision:
        """The decision for ``query``."""
        ...


def routing_accuracy(
    decisions: Sequence[RoutingDecision], expected: Sequence[Sequence[str]]
) -> float | None:
    """Share of decisions whose tool groups include every expected group (None: no cases).

    ``expected[i]`` is what decision ``i`` should have offered, e.g. the groups of the tools
    the agent really called next; a decision offering more than needed still counts as right.
    """
    if len(decisions) != len(expected):
        raise UsageError(
            f"routing_accuracy needs one expected group list per decision: "
            f"{len(decisions)} decisions, {len(expected)} expectations"
        )
    if not decisions:
        return None
    hits = sum(set(want) <= set(d.tool_groups) for d, want in zip(decisions, expected, strict=True))
    return hits / len(decisions)
