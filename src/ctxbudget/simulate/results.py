"""What a simulation measured: per call, per policy, per session, and in total.

Plain dataclasses with plain numbers (costs in ``Decimal`` USD), so the CLI table, the
JSON output and the HTML report all read the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ctxbudget.billing.usage import Usage
from ctxbudget.simulate.retention import RetentionTotals

__all__ = ["Compaction", "PolicyRun", "PolicyTotals", "SessionResult", "Simulation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Compaction:
    """One compaction a policy made, placed on the session's timeline."""

    call: int
    """The model call (0-based) whose request it shaped."""
    strategy: str
    """The strategy that made it."""
    tokens_before: int
    """Input tokens of the view before (tokens)."""
    tokens_after: int
    """Input tokens of the view after (tokens)."""


@dataclass(slots=True, kw_only=True)
class PolicyRun:
    """One policy over one session."""

    policy: str
    context: list[int] = field(default_factory=list)
    """Input tokens of each call's request."""
    costs: list[Decimal | None] = field(default_factory=list)
    """Input cost of each call (USD; uncached + cache reads + cache writes); None: unpriced."""
    usage: Usage = field(default_factory=lambda: Usage(input_tokens=0))
    """Input usage summed over the calls (cache reads and writes as predicted)."""
    retention: RetentionTotals = field(default_factory=RetentionTotals)
    """Retention summed over the calls."""
    compactions: list[Compaction] = field(default_factory=list)
    """Every compaction, in order."""
    recalls: int = 0
    """Extra model calls to recall what the view had lost (their cost is in ``costs``)."""
    recall_cost: Decimal = Decimal(0)
    """What those extra calls cost (USD; input only), part of ``input_cost``."""

    @property
    def input_cost(self) -> Decimal | None:
        """Total input cost (USD); None when any call could not be priced."""
        if any(c is None for c in self.costs):
            return None
        return sum((c for c in self.costs if c is not None), Decimal(0))

    @property
    def peak(self) -> int:
        """The largest request (input tokens)."""
        return max(self.context, default=0)

    @property
    def cached_share(self) -> float:
        """Share of input tokens read from the provider's cache."""
        return self.usage.cache_read_tokens / max(self.usage.input_tokens, 1)

    def cumulative_cost(self) -> list[float | None]:
        """Input cost after each call (USD), for charts."""
        out: list[float | None] = []
        total: Decimal | None = Decimal(0)
        for cost in self.costs:
            total = None if total is None or cost is None else total + cost
            out.append(None if total is None else float(total))
        return out


@dataclass(slots=True, kw_only=True)
class SessionResult:
    """Every policy over one session."""

    name: str
    format: str
    calls: int
    model: str | None
    """The model the log says the agent used."""
    runs: dict[str, PolicyRun]
    """Policy name → its run, in the order asked."""
    output_tokens: int
    """Tokens the agent generated (billed where recorded, else counted); equal for all."""
    output_cost: Decimal | None
    """Their cost at the simulated model's output price (USD)."""
    skipped_records: dict[str, int] = field(default_factory=dict)
    """Record kinds the importer did not know → lines passed over (``Session.skipped``)."""
    parent: str | None = None
    """For a sub-agent's transcript: the session that started it (``Session.parent``)."""
    resets: int = 0
    """How many times the client compacted its own context (``Session.resets``)."""


@dataclass(slots=True, kw_only=True)
class PolicyTotals:
    """One policy over every session."""

    policy: str
    input_tokens: int = 0
    cache_read_tokens: int = 0
    input_cost: Decimal | None = Decimal(0)
    peak: int = 0
    """The largest request of any session."""
    peak_sum: int = 0
    """Each session's largest request, summed (compare policies on this)."""
    retention: RetentionTotals = field(default_factory=RetentionTotals)
    compactions: int = 0
    recalls: int = 0
    """Extra calls to recall lost references (priced into ``input_cost``)."""
    recall_cost: Decimal = Decimal(0)
    """Their input cost (USD), part of ``input_cost``."""
    worse_than_none: int = 0
    """Sessions where this policy's input cost exceeds ``none``'s."""

    @property
    def cached_share(self) -> float:
        return self.cache_read_tokens / max(self.input_tokens, 1)


@dataclass(slots=True, kw_only=True)
class Simulation:
    """A whole simulation: the sessions and the totals per policy."""

    model: str
    provider: str
    exact: bool
    """Whether token counts are exact (else every count is an estimate)."""
    policies: tuple[str, ...]
    sessions: list[SessionResult] = field(default_factory=list)
    context_window: int | None = None
    """The simulated model's window (tokens); a policy whose peak request is larger would
    have failed on the real model (``context_length_exceeded``)."""

    def over_window(self) -> dict[str, int]:
        """Policy → its peak request, for every policy whose peak exceeds the window."""
        if self.context_window is None:
            return {}
        return {p: t.peak for p, t in self.totals().items() if t.peak > self.context_window}

    def over_window_notes(self) -> list[str]:
        """One sentence per policy over the window, for people."""
        window = self.context_window
        return [
            f"{policy}: peak {_k(peak)} > window {_k(window or 0)}: this run would have "
            "failed with context_length_exceeded"
            for policy, peak in self.over_window().items()
        ]

    def totals(self) -> dict[str, PolicyTotals]:
        """Per policy, summed over the sessions."""
        return totals_of(self.sessions, self.policies)

    def ratio(self, policy: str, baseline: str) -> float | None:
        """Input cost of ``policy`` over ``baseline``'s (None when either is unknown or 0)."""
        totals = self.totals()
        if policy not in totals or baseline not in totals:
            return None
        mine, base = totals[policy].input_cost, totals[baseline].input_cost
        if mine is None or base is None or base == 0:
            return None
        return float(mine / base)

    @property
    def output_cost(self) -> Decimal | None:
        costs = [s.output_cost for s in self.sessions]
        if any(c is None for c in costs):
            return None
        return sum((c for c in costs if c is not None), Decimal(0))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: totals per policy and, per session, per policy."""
        totals = self.totals()
        return {
            "model": self.model,
            "provider": self.provider,
            "exact": self.exact,
            "policies": list(self.policies),
            "sessions": len(self.sessions),
            "calls": sum(s.calls for s in self.sessions),
            "output_tokens": sum(s.output_tokens for s in self.sessions),
            "output_cost_usd": _money(self.output_cost),
            "context_window": self.context_window,
            "over_window": self.over_window_notes(),
            "totals": {p: self._totals_json(t) for p, t in totals.items()},
            "per_session": [_session_json(s) for s in self.sessions],
        }

    def _totals_json(self, t: PolicyTotals) -> dict[str, Any]:
        return {
            "input_tokens": t.input_tokens,
            "cache_read_tokens": t.cache_read_tokens,
            "cached_share": round(t.cached_share, 4),
            "input_cost_usd": _money(t.input_cost),
            "vs_none": _round(self.ratio(t.policy, "none")),
            "vs_none_nocache": _round(self.ratio(t.policy, "none-nocache")),
            "peak_tokens": t.peak,
            "peak_tokens_sum": t.peak_sum,
            "peak_over_window": self.context_window is not None and t.peak > self.context_window,
            "retention": _round(t.retention.share),
            "line_retention": _round(t.retention.line_share),
            "references_used": t.retention.used,
            "references_kept": t.retention.kept,
            "references_line_kept": t.retention.line_kept,
            "compactions": t.compactions,
            "recall_calls": t.recalls,
            "recall_cost_usd": _money(t.recall_cost),
            "sessions_costlier_than_none": t.worse_than_none,
        }


def totals_of(
    sessions: Iterable[SessionResult], policies: Sequence[str]
) -> dict[str, PolicyTotals]:
    """Per policy, summed over ``sessions``."""
    out = {p: PolicyTotals(policy=p) for p in policies}
    for session in sessions:
        none = session.runs.get("none")
        none_cost = none.input_cost if none is not None else None
        for policy, run in session.runs.items():
            t = out[policy]
            t.input_tokens += run.usage.input_tokens
            t.cache_read_tokens += run.usage.cache_read_tokens
            cost = run.input_cost
            t.input_cost = None if t.input_cost is None or cost is None else t.input_cost + cost
            t.peak = max(t.peak, run.peak)
            t.peak_sum += run.peak
            t.retention = t.retention + run.retention
            t.compactions += len(run.compactions)
            t.recalls += run.recalls
            t.recall_cost += run.recall_cost
            if (
                cost is not None
                and none_cost is not None
                and cost > none_cost * Decimal("1.000001")
            ):
                t.worse_than_none += 1
    return out


def _session_json(s: SessionResult) -> dict[str, Any]:
    return {
        "name": s.name,
        "format": s.format,
        "calls": s.calls,
        "model": s.model,
        "output_tokens": s.output_tokens,
        "skipped_records": dict(s.skipped_records),
        "parent": s.parent,
        "client_resets": s.resets,
        "policies": {
            p: {
                "input_tokens": r.usage.input_tokens,
                "cached_share": round(r.cached_share, 4),
                "input_cost_usd": _money(r.input_cost),
                "peak_tokens": r.peak,
                "retention": _round(r.retention.share),
                "line_retention": _round(r.retention.line_share),
                "compactions": len(r.compactions),
                "recall_calls": r.recalls,
            }
            for p, r in s.runs.items()
        },
    }


def _k(tokens: int) -> str:
    """``234_120`` → ``234K`` (tokens, for sentences)."""
    return f"{tokens / 1000:,.0f}K" if tokens >= 10_000 else f"{tokens:,}"


def _money(value: Decimal | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
