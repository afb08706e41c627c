"""``analyze``: where one session's tokens and dollars went, and what the log says it paid.

Tokens per component come from the history each call carried; dollars per component are
each call's input cost shared out by the component's tokens in that call. A call's input
cost is what the log billed (priced at the model's prices) where it recorded usage, else
what the provider would have billed with its best prefix caching (the ``none`` replay).
Each call is priced as the model the log names for it (a session that switches models is
priced call by call), unless the caller names one model for all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ctxbudget.analyze.composition import composition_per_call
from ctxbudget.billing.cost import price
from ctxbudget.billing.prices import Prices
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.errors import ConfigError
from ctxbudget.simulate.replay import simulate_session
from ctxbudget.traces.session import Session

__all__ = [
    "Analysis",
    "SessionAnalysis",
    "analyze_session",
    "call_models",
    "log_model",
    "log_model_spec",
    "pricing_model",
]

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
    """The model the figures are counted for (and priced for, unless ``models`` has more)."""
    log_model: str | None = None
    """The model the log names (``None``: it names none)."""
    priced: bool = True
    """Whether every call's prices are known; when not, every dollar figure is ``None``."""
    models: dict[str, int] = field(default_factory=dict)
    """Model priced as → its calls, in order of first use (several: priced per call)."""
    unpriced_models: tuple[str, ...] = ()
    """The models of ``models`` whose prices are unknown."""
    log_models: tuple[str, ...] = ()
    """Every model the log names for its calls, in order of first use."""
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
    skipped_records: dict[str, int] = field(default_factory=dict)
    """Record kinds the importer did not know → lines passed over (``Session.skipped``)."""
    parent: str | None = None
    """For a sub-agent's transcript: the session that started it (``Session.parent``)."""
    resets: int = 0
    """How many times the client compacted its own context (``Session.resets``)."""

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

    def models(self) -> dict[str, int]:
        """Model priced as → its calls over every session, most used first."""
        out: dict[str, int] = {}
        for session in self.sessions:
            for name, calls in session.models.items():
                out[name] = out.get(name, 0) + calls
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

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
            "models": self.models(),
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
                    "models": dict(s.models),
                    "priced": s.priced,
                    "unpriced_models": list(s.unpriced_models),
                    "log_models": list(s.log_models),
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
                    "skipped_records": dict(s.skipped_records),
                    "parent": s.parent,
                    "client_resets": s.resets,
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
    return log_model_spec(named, prices, context_window, max_output), True


def log_model_spec(
    name: str,
    prices: Mapping[str, object] | None,
    context_window: int | None,
    max_output: int | None,
) -> ModelSpec:
    """The log's model ``name`` resolved with the options, else (a model nobody knows)
    counted generically, its window and output limit labelled generic defaults, and left
    unpriced unless ``prices`` are given: never priced as another model."""
    try:
        return resolve_model(
            name, prices=prices, context_window=context_window, max_output_tokens=max_output
        )
    except ConfigError:
        return _unlisted(name, prices, context_window, max_output)


def log_model(session: Session) -> str | None:
    """The model the log names (the session's, else the first call's), if any."""
    for name in (session.model, *(c.model for c in session.calls)):
        if name:
            return name
    return None


def call_models(session: Session) -> dict[int, str | None]:
    """Position of each call → the model the log names for it (the call's own, else the
    session's: see :func:`log_model`)."""
    fallback = log_model(session)
    return {c.position: c.model or fallback for c in session.calls}


def _unlisted(
    name: str,
    prices: Mapping[str, object] | None,
    context_window: int | None,
    max_output: int | None,
) -> ModelSpec:
    """A model the registry lacks: counted with generic settings, priced only if told."""
    window = context_window or UNLISTED_WINDOW
    out = max_output or min(UNLISTED_MAX_OUTPUT, window)
    spec = resolve_model(name, context_window=window, max_output_tokens=out, prices=prices)
    assumed = "generic default (estimate)"
    sources = dataclasses.replace(
        spec.sources,
        context_window=spec.sources.context_window if context_window else assumed,
        max_output_tokens=spec.sources.max_output_tokens if max_output else assumed,
    )
    return dataclasses.replace(spec, sources=sources)


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
    specs = _call_specs(
        session,
        positions,
        spec,
        per_call=own and model is None,
        prices=prices,
        context_window=context_window,
        max_output=max_output,
    )
    listed = [s.prices for s in specs]
    if own and billed and all(u is not None for u in billed):
        costs = [price(u, p) for u, p in zip(billed, listed, strict=True) if u is not None]
        input_costs = [c.input if c is not None else None for c in costs]
        read = sum(u.cache_read_tokens for u in billed if u is not None)
        total = sum(u.input_tokens for u in billed if u is not None)
        hit: float | None = read / total if total else None
        source = "recorded"
        computed = _sum(c.total if c is not None else None for c in costs)
    else:
        run = simulate_session(session, ["none"], spec, counter=counter, prices=listed)
        replay = run.runs["none"]
        input_costs, hit, source = replay.costs, replay.cached_share, "simulated"
        computed = None
    outputs = [
        u.output_tokens if u is not None else counter.count_item(session.items[p]).tokens
        for u, p in zip(billed, positions, strict=True)
    ]
    used: dict[str, int] = {}
    for s in specs:
        used[s.name] = used.get(s.name, 0) + 1
    each = specs or [spec]  # a session without calls: its model's prices decide
    unpriced = tuple(dict.fromkeys(s.name for s in each if not _priced(s.prices)))
    return SessionAnalysis(
        name=session.name,
        format=session.format,
        model=spec.name,
        log_model=log_model(session),
        priced=not unpriced,
        models=used,
        unpriced_models=unpriced,
        log_models=tuple(dict.fromkeys(m for m in call_models(session).values() if m)),
        exact=counter.tokenizer.exact,
        calls=len(positions),
        composition=composition,
        input_costs=list(input_costs),
        output_tokens=sum(outputs),
        output_cost=_output_cost(outputs or [0], [s.prices for s in each]),
        cache_hit_rate=hit,
        cache_source=source,
        recorded_cost=session.recorded_cost,
        computed_cost=computed,
        skipped_records=dict(session.skipped),
        parent=session.parent,
        resets=len(session.resets),
    )


def _call_specs(
    session: Session,
    positions: list[int],
    spec: ModelSpec,
    *,
    per_call: bool,
    prices: Mapping[str, object] | None,
    context_window: int | None,
    max_output: int | None,
) -> list[ModelSpec]:
    """The spec each call is priced as: ``spec`` for all, or (``per_call``) each call's own
    model as the log names it (a model nobody knows: unpriced unless ``prices``)."""
    if not per_call:
        return [spec] * len(positions)
    named, own = call_models(session), log_model(session)
    cache: dict[str, ModelSpec] = {}
    out = []
    for position in positions:
        name = named.get(position) or own
        if name is None or name == own:
            out.append(spec)
            continue
        if name not in cache:
            cache[name] = log_model_spec(name, prices, context_window, max_output)
        out.append(cache[name])
    return out


def _priced(prices: Prices | None) -> bool:
    return prices is not None and prices.input is not None


def _output_cost(outputs: list[int], listed: list[Prices | None]) -> Decimal | None:
    """Each call's output tokens at its model's output price (None when any is unknown)."""
    total = Decimal(0)
    for tokens, prices in zip(outputs, listed, strict=True):
        if prices is None or prices.output is None:
            return None
        total += Decimal(tokens) * prices.output / _MILLION
    return total


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
