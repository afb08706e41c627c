"""``analyze``: where one session's tokens and dollars went, and what the log says it paid.

Tokens per component come from the history each call carried; dollars per component are
each call's input cost shared out by the component's tokens in that call. A call's input
cost is what the log billed (priced at the model's prices) where it recorded usage, else
what the provider would have billed with its best prefix caching (the ``none`` replay).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ctxbudget.analyze.composition import composition_per_call
from ctxbudget.billing.cost import price
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.errors import ConfigError
from ctxbudget.simulate.replay import simulate_session
from ctxbudget.traces.session import Session

__all__ = ["Analysis", "SessionAnalysis", "analyze_session", "pricing_model"]

FALLBACK_MODEL = "claude-sonnet-4-5"
"""Priced as this when the log names no model we know and none is given."""
_MILLION = Decimal(1_000_000)


@dataclass(slots=True, kw_only=True)
class SessionAnalysis:
    """One session: tokens and dollars by component, recorded against computed cost."""

    name: str
    format: str
    model: str
    """The model the figures are counted and priced for."""
    exact: bool
    """Whether token counts are exact (else estimates)."""
    calls: int
    composition: dict[str, list[int]]
    """Component → its tokens in the prompt of each call."""
    input_costs: list[Decimal | None]
    """Input cost of each call (USD)."""
    output_tokens: int
    output_cost: Decimal | None
    cache_hit_rate: float | None
    """Share of prompt tokens read from cache: billed where recorded, else simulated."""
    cache_source: str
    """``recorded`` or ``simulated``."""
    recorded_cost: Decimal | None
    """What the log says the session cost (USD)."""
    computed_cost: Decimal | None
    """What ctxbudget computes for the calls the log billed (USD; input + output)."""

    @property
    def prompts(self) -> list[int]:
        """Prompt tokens of each call."""
        return [sum(c) for c in zip(*self.composition.values(), strict=True)] or [0] * self.calls

    @property
    def input_tokens(self) -> int:
        return sum(self.prompts)

    @property
    def peak(self) -> int:
        return max(self.prompts, default=0)

    @property
    def input_cost(self) -> Decimal | None:
        if any(c is None for c in self.input_costs):
            return None
        return sum((c for c in self.input_costs if c is not None), Decimal(0))

    def by_component(self) -> dict[str, tuple[int, Decimal | None]]:
        """Component → (tokens over all calls, input dollars allocated to it)."""
        out: dict[str, tuple[int, Decimal | None]] = {}
        prompts = self.prompts
        for name, series in self.composition.items():
            dollars: Decimal | None = Decimal(0)
            for tokens, total, cost in zip(series, prompts, self.input_costs, strict=True):
                if cost is None or dollars is None:
                    dollars = None
                elif total:
                    dollars += cost * tokens / total
            out[name] = (sum(series), dollars)
        return out

    @property
    def difference(self) -> Decimal | None:
        """Computed minus recorded cost (USD)."""
        if self.recorded_cost is None or self.computed_cost is None:
            return None
        return self.computed_cost - self.recorded_cost


@dataclass(slots=True)
class Analysis:
    """Many sessions analysed."""

    sessions: list[SessionAnalysis] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return all(s.exact for s in self.sessions)

    def by_component(self) -> dict[str, tuple[int, Decimal | None]]:
        out: dict[str, tuple[int, Decimal | None]] = {}
        for session in self.sessions:
            for name, (tokens, dollars) in session.by_component().items():
                had_tokens, had_dollars = out.get(name, (0, Decimal(0)))
                both = None if had_dollars is None or dollars is None else had_dollars + dollars
                out[name] = (had_tokens + tokens, both)
        return dict(sorted(out.items(), key=lambda kv: -kv[1][0]))

    def to_json(self) -> dict[str, Any]:
        return {
            "exact": self.exact,
            "sessions": len(self.sessions),
            "calls": sum(s.calls for s in self.sessions),
            "input_tokens": sum(s.input_tokens for s in self.sessions),
            "input_cost_usd": _money(_sum(s.input_cost for s in self.sessions)),
            "output_cost_usd": _money(_sum(s.output_cost for s in self.sessions)),
            "recorded_cost_usd": _money(_sum_known(s.recorded_cost for s in self.sessions)),
            "computed_cost_usd": _money(_sum_known(s.computed_cost for s in self.sessions)),
            "components": {
                name: {"tokens": tokens, "input_cost_usd": _money(dollars)}
                for name, (tokens, dollars) in self.by_component().items()
            },
            "per_session": [
                {
                    "name": s.name,
                    "format": s.format,
                    "model": s.model,
                    "calls": s.calls,
                    "input_tokens": s.input_tokens,
                    "peak_tokens": s.peak,
                    "input_cost_usd": _money(s.input_cost),
                    "output_cost_usd": _money(s.output_cost),
                    "cache_hit_rate": None
                    if s.cache_hit_rate is None
                    else round(s.cache_hit_rate, 4),
                    "cache_source": s.cache_source,
                    "recorded_cost_usd": _money(s.recorded_cost),
                    "computed_cost_usd": _money(s.computed_cost),
                    "difference_usd": _money(s.difference),
                    "components": {
                        name: {"tokens": tokens, "input_cost_usd": _money(dollars)}
                        for name, (tokens, dollars) in s.by_component().items()
                    },
                }
                for s in self.sessions
            ],
        }


def pricing_model(session: Session, model: str | ModelSpec | None) -> tuple[ModelSpec, bool]:
    """The model to count and price as, and whether it is the model the log billed:
    ``model`` if given (taken to be it), else the log's own model if we know it, else the
    fallback (then recorded usage is not priced: another model's prices would mislead)."""
    if isinstance(model, ModelSpec):
        return model, True
    if model is not None:
        return resolve_model(model), True
    for name in (session.model, *(c.model for c in session.calls)):
        if name:
            try:
                return resolve_model(name), True
            except ConfigError:
                continue
    return resolve_model(FALLBACK_MODEL), False


def analyze_session(session: Session, model: str | ModelSpec | None = None) -> SessionAnalysis:
    """Tokens and dollars by component of one session (see the module docstring)."""
    spec, own = pricing_model(session, model)
    counter = counter_for(spec)
    composition, positions = composition_per_call(session, counter)
    recorded = {c.position: c for c in session.calls}
    billed = [recorded[p].usage if p in recorded else None for p in positions]
    prices = spec.prices
    if own and billed and all(u is not None for u in billed):
        costs = [price(u, prices) for u in billed if u is not None]
        input_costs = [c.input if c is not None else None for c in costs]
        read = sum(u.cache_read_tokens for u in billed if u is not None)
        total = sum(u.input_tokens for u in billed if u is not None)
        hit: float | None = read / total if total else None
        source = "recorded"
        computed = _sum(c.total if c is not None else None for c in costs)
        output_tokens = sum(u.output_tokens for u in billed if u is not None)
    else:
        run = simulate_session(session, ["none"], spec, counter=counter)  # counted above
        replay = run.runs["none"]
        input_costs, hit, source = replay.costs, replay.cached_share, "simulated"
        computed = None
        output_tokens = run.output_tokens
    output_cost = (
        None
        if prices is None or prices.output is None
        else Decimal(output_tokens) * prices.output / _MILLION
    )
    return SessionAnalysis(
        name=session.name,
        format=session.format,
        model=spec.name,
        exact=counter.tokenizer.exact,
        calls=len(positions),
        composition=composition,
        input_costs=list(input_costs),
        output_tokens=output_tokens,
        output_cost=output_cost,
        cache_hit_rate=hit,
        cache_source=source,
        recorded_cost=session.recorded_cost,
        computed_cost=computed,
    )


def _sum(values: Iterable[Decimal | None]) -> Decimal | None:
    total = Decimal(0)
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _sum_known(values: Iterable[Decimal | None]) -> Decimal | None:
    known = [v for v in values if v is not None]
    return sum(known, Decimal(0)) if known else None


def _money(value: Decimal | None) -> float | None:
    return None if value is None else round(float(value), 6)
