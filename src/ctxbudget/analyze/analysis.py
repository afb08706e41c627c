"""``analyze``: where one session's tokens and dollars went, and what the log says it paid.

Tokens per component come from the history each call carried; dollars per component are
each call's input cost shared out by the component's tokens in that call. A call's input
cost is what the log billed (priced at the model's prices) where it recorded usage, else
what the provider would have billed with its best prefix caching (the ``none`` replay).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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

__all__ = ["Analysis", "SessionAnalysis", "analyze_session", "log_model", "pricing_model"]

UNNAMED_MODEL = "unnamed"
"""The model name shown for a log that names none (counted generically, never priced)."""
UNLISTED_WINDOW = 1_000_000
"""Window assumed for counting a model the registry lacks (analysis only counts and
prices what the log sent; nothing is fitted into this window)."""
UNLISTED_MAX_OUTPUT = 32_000
_MILLION = Decimal(1_000_000)


@dataclass(slots=True, kw_only=True)
class SessionAnalysis:
    """One session: tokens and dollars by component, recorded against computed cost."""

    name: str
    format: str
    model: str
    """The model the figures are counted and priced for."""
    log_model: str | None = None
    """The model the log names (``None``: it names none)."""
    priced: bool = True
    """Whether the model's prices are known; when not, every dollar figure is ``None``."""
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
                    "log_model": s.log_model,
                    "priced": s.priced,
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


def pricing_model(
    session: Session,
    model: str | ModelSpec | None,
    *,
    prices: Mapping[str, object] | None = None,
    context_window: int | None = None,
    max_output: int | None = None,
) -> tuple[ModelSpec, bool]:
    """The model to count and price as, and whether it stands for the model the log billed
    (so the log's recorded usage may be priced at its prices).

    ``model`` if given (the caller prices the log as it). Else the log's own model, with
    ``prices`` / ``context_window`` / ``max_output`` over the registry's; a model the
    registry lacks is still counted (a generic tokenizer, marked estimate) and its
    ``prices`` are ``None`` unless given: its cost is unknown, never another model's.
    A log that names no model is counted the same way under the name ``unnamed``.
    """
    if isinstance(model, ModelSpec):
        return model, True
    if model is not None:
        return resolve_model(
            model, prices=prices, context_window=context_window, max_output_tokens=max_output
        ), True
    named = log_model(session)
    if named is None:
        return _unlisted(UNNAMED_MODEL, prices, context_window, max_output), False
    try:
        spec = resolve_model(
            named, prices=prices, context_window=context_window, max_output_tokens=max_output
        )
    except ConfigError:
        spec = _unlisted(named, prices, context_window, max_output)
    return spec, True


def log_model(session: Session) -> str | None:
    """The model the log names (the session's, else the first call's), if any."""
    for name in (session.model, *(c.model for c in session.calls)):
        if name:
            return name
    return None


def _unlisted(
    name: str,
    prices: Mapping[str, object] | None,
    context_window: int | None,
    max_output: int | None,
) -> ModelSpec:
    """A model the registry lacks: counted with generic settings, priced only if told."""
    window = context_window or UNLISTED_WINDOW
    out = max_output or min(UNLISTED_MAX_OUTPUT, window)
    return resolve_model(name, context_window=window, max_output_tokens=out, prices=prices)


def analyze_session(
    session: Session,
    model: str | ModelSpec | None = None,
    *,
    prices: Mapping[str, object] | None = None,
    context_window: int | None = None,
    max_output: int | None = None,
) -> SessionAnalysis:
    """Tokens and dollars by component of one session (see the module docstring); the
    keywords are :func:`pricing_model`'s."""
    spec, own = pricing_model(
        session, model, prices=prices, context_window=context_window, max_output=max_output
    )
    counter = counter_for(spec)
    composition, positions = composition_per_call(session, counter)
    recorded = {c.position: c for c in session.calls}
    billed = [recorded[p].usage if p in recorded else None for p in positions]
    listed = spec.prices
    if own and billed and all(u is not None for u in billed):
        costs = [price(u, listed) for u in billed if u is not None]
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
        if listed is None or listed.output is None
        else Decimal(output_tokens) * listed.output / _MILLION
    )
    return SessionAnalysis(
        name=session.name,
        format=session.format,
        model=spec.name,
        log_model=log_model(session),
        priced=spec.prices is not None and spec.prices.input is not None,
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
