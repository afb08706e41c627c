"""The metrics record: what one prepared call put in the window, what it cost, how healthy it is.

One :class:`CallMetrics` per ``prepare``; it is published twice, once when the request is
prepared (predicted usage) and once more when :meth:`ContextManager.observe_usage` reports
what the provider billed (``stage == "billed"``). Token counts carry ``exact``: a record whose
counts came from an estimating tokenizer says so, and :meth:`CallMetrics.as_dict` writes the
label next to the numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from ctxbudget.billing.usage import Usage

__all__ = ["CallMetrics", "CompactionMetrics", "ComponentMetrics", "Stage", "cache_hit_share"]

Stage = Literal["prepared", "billed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentMetrics:
    """One component's share of the prepared request."""

    component: str
    """Component name (``system``, ``tools``, ``history``...)."""
    kind: str
    """``fixed``, ``protected`` or ``prunable``."""
    used: int
    """Tokens it holds in the prepared request (tokens)."""
    budget: int | None
    """Its budget (tokens); None when the policy gives it none."""

    @property
    def occupancy(self) -> float | None:
        """``used / budget``; None without a budget."""
        return self.used / self.budget if self.budget else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompactionMetrics:
    """One compaction applied while preparing the call."""

    strategy: str
    """The strategy that proposed it."""
    freed: int
    """Tokens it took out of the view (tokens)."""
    rewritten: int
    """Tokens of the view after its first edit: the cached prefix the provider writes again."""
    reason: str
    """Why it ran."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallMetrics:
    """The metrics record of one prepared call."""

    session_id: str
    """The session the call belongs to."""
    turn: int
    """1 for the first ``prepare`` of the session, then 2, 3..."""
    stage: Stage
    """``prepared`` (predicted usage only) or ``billed`` (the provider's usage is in)."""
    time: float
    """When the request was prepared (Unix seconds)."""
    model: str
    """The model the request is for."""
    provider: str
    """Wire format: ``openai``, ``openai_responses`` or ``anthropic``."""
    components: tuple[ComponentMetrics, ...]
    """Tokens and budget of every component."""
    input_tokens: int
    """Input tokens of the prepared request, counted on the rendered body (tokens)."""
    exact: bool
    """Whether the token counts are exact (else they are estimates)."""
    limit: int
    """Most input tokens the request may have: window − output reserve − margin (tokens)."""
    before_tokens: int
    """Input tokens of the view before this call's compaction (tokens)."""
    compactions: tuple[CompactionMetrics, ...]
    """Compactions applied while preparing this call."""
    predicted: Usage | None
    """Input, cache-read and cache-write tokens the provider should bill."""
    predicted_cost: Decimal | None
    """Predicted input cost (USD); None when the model has no prices."""
    billed: Usage | None = None
    """What the provider billed (``stage == "billed"``)."""
    billed_cost: Decimal | None = None
    """Its cost (USD)."""
    max_output_tokens: int = 0
    """Output tokens reserved for the reply (tokens)."""
    compacted_tokens: int
    """Tokens compaction has taken out of the view so far this session, net of what it put
    in (tokens): the request would be this much larger without it."""
    constraint_distance: int
    """Tokens between the end of the system constraints (or their latest re-injection) and
    the generation point (tokens)."""
    retrieval_hit_rate: float | None
    """Share of retrieved knowledge the answers used, over the signal window; None when
    nothing was retrieved."""
    reinjected: bool = False
    """Whether the system constraints were re-injected while preparing this call."""
    routing: dict[str, Any] | None = None
    """The routing decision noted for this call (:meth:`ContextManager.note_routing`)."""
    prepare_seconds: float = 0.0
    """Wall time ``prepare`` took (seconds)."""

    @property
    def utilization(self) -> float:
        """Input tokens over the most that fit (0..1)."""
        return self.input_tokens / self.limit if self.limit else 0.0

    @property
    def remaining(self) -> int:
        """Input tokens still free under the limit (tokens)."""
        return max(self.limit - self.input_tokens, 0)

    @property
    def usage(self) -> Usage | None:
        """Billed usage when known, else the prediction."""
        return self.billed if self.billed is not None else self.predicted

    @property
    def cost(self) -> Decimal | None:
        """Billed cost when known (input and output), else the predicted input cost (USD)."""
        return self.billed_cost if self.billed is not None else self.predicted_cost

    @property
    def cache_hit_rate(self) -> float | None:
        """Cache-read share of the input, billed when known else predicted; None if unknown."""
        usage = self.usage
        if usage is None or usage.input_tokens == 0:
            return None
        return usage.cache_read_tokens / usage.input_tokens

    @property
    def compression_ratio(self) -> float:
        """Uncompacted over prepared input tokens (1.0: nothing compacted)."""
        if not self.input_tokens:
            return 1.0
        return (self.input_tokens + self.compacted_tokens) / self.input_tokens

    @property
    def pruned(self) -> bool:
        """Whether any compaction ran while preparing this call."""
        return bool(self.compactions)

    def component(self, name: str) -> ComponentMetrics | None:
        """The row of component ``name``, if the policy has it."""
        return next((c for c in self.components if c.component == name), None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (one JSON log line); money as float USD, counts labelled."""
        return {
            "event": "metrics",
            "session_id": self.session_id,
            "turn": self.turn,
            "stage": self.stage,
            "time": self.time,
            "model": self.model,
            "provider": self.provider,
            "count": "exact" if self.exact else "estimate",
            "input_tokens": self.input_tokens,
            "limit": self.limit,
            "utilization": round(self.utilization, 6),
            "remaining": self.remaining,
            "before_tokens": self.before_tokens,
            "max_output_tokens": self.max_output_tokens,
            "components": [
                {
                    "component": c.component,
                    "kind": c.kind,
                    "used": c.used,
                    "budget": c.budget,
                    "occupancy": None if c.occupancy is None else round(c.occupancy, 6),
                }
                for c in self.components
            ],
            "compactions": [
                {
                    "strategy": c.strategy,
                    "freed": c.freed,
                    "rewritten": c.rewritten,
                    "reason": c.reason,
                }
                for c in self.compactions
            ],
            "predicted": _usage(self.predicted),
            "billed": _usage(self.billed),
            "predicted_cost_usd": _money(self.predicted_cost),
            "billed_cost_usd": _money(self.billed_cost),
            "cost_usd": _money(self.cost),
            "cache_hit_rate": _ratio(self.cache_hit_rate),
            "compacted_tokens": self.compacted_tokens,
            "compression_ratio": round(self.compression_ratio, 6),
            "constraint_distance": self.constraint_distance,
            "retrieval_hit_rate": _ratio(self.retrieval_hit_rate),
            "reinjected": self.reinjected,
            "routing": self.routing,
            "prepare_seconds": round(self.prepare_seconds, 6),
        }


def cache_hit_share(records: Iterable[CallMetrics]) -> float | None:
    """Cache reads over input tokens across ``records`` (billed where known, else
    predicted); None when they have no input."""
    usages = [r.usage for r in records if r.usage is not None]
    total = sum(u.input_tokens for u in usages)
    return sum(u.cache_read_tokens for u in usages) / total if total else None


def _usage(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
    }


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
