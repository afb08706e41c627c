"""The model options shared by ``analyze`` and ``simulate``: ``--model``, ``--price``,
``--context-window`` and ``--max-output``, defined once here; which model each session and
call of ``simulate`` is replayed and priced as (:class:`ModelPlan`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from ctxbudget.analyze.analysis import UNNAMED_MODEL, call_models, log_model, log_model_spec
from ctxbudget.billing.prices import PRICE_FIELDS, Prices
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.errors import UsageError
from ctxbudget.tokens.counter import TokenCounter
from ctxbudget.traces.session import Session

__all__ = [
    "ContextWindowOption",
    "MaxOutputOption",
    "ModelChoice",
    "ModelOption",
    "ModelPlan",
    "PriceOption",
    "figures_line",
    "model_choice",
    "model_option",
    "parse_prices",
]

POSITIONAL = ("input", "output", "cache_read", "cache_write_5m")
"""What ``--price IN,OUT[,CACHE_READ[,CACHE_WRITE]]`` gives, in order."""

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Count and price as this model (default: the model each log names).",
    ),
]
PriceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--price",
        help="Prices in USD per million tokens, of --model or else of each log's model: "
        "IN,OUT[,CACHE_READ[,CACHE_WRITE]] (e.g. --price 3,15) or KEY=VALUE (repeatable; "
        "keys: " + ", ".join(PRICE_FIELDS) + ").",
    ),
]
ContextWindowOption = Annotated[
    int | None,
    typer.Option(
        "--context-window", help="Context window in tokens, when the registry lacks the model."
    ),
]
MaxOutputOption = Annotated[
    int | None,
    typer.Option("--max-output", help="Output limit in tokens, when the registry lacks the model."),
]


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What the model options said (``name`` None: each log's own model)."""

    name: str | None
    prices: dict[str, str] | None
    context_window: int | None
    max_output: int | None

    def spec(self, default: str | None = None) -> ModelSpec | None:
        """``--model`` (else ``default``) resolved with the other options over the registry."""
        name = self.name or default
        if name is None:
            return None
        return resolve_model(
            name,
            prices=self.prices,
            context_window=self.context_window,
            max_output_tokens=self.max_output,
        )


def parse_prices(values: Sequence[str]) -> dict[str, str]:
    """``--price`` values → price fields in USD per MTok: ``["3,15"]`` or
    ``["input=3", "output=15"]`` (commas may join pairs) → ``{"input": "3", "output": "15"}``."""
    out: dict[str, str] = {}
    for value in values:
        parts = [p.strip() for p in value.split(",")]
        pairs = [p.partition("=") for p in parts]
        if all(sep for _, sep, _ in pairs):
            for key, _, amount in pairs:
                if key.strip() not in PRICE_FIELDS:
                    raise UsageError(
                        f"--price {value!r}: unknown price {key.strip()!r}; keys are "
                        f"{', '.join(PRICE_FIELDS)} (KEY=USD_PER_MILLION_TOKENS)"
                    )
                out[key.strip()] = _amount(value, amount)
        elif not any(sep for _, sep, _ in pairs) and len(parts) <= len(POSITIONAL):
            for key, amount in zip(POSITIONAL, parts, strict=False):
                out[key] = _amount(value, amount)
        else:
            raise UsageError(_PRICE_HELP.format(value=value))
    return out


_PRICE_HELP = (
    "--price {value!r}: expected IN,OUT[,CACHE_READ[,CACHE_WRITE]] in USD per million "
    "tokens (e.g. --price 3,15) or KEY=USD_PER_MILLION_TOKENS (e.g. --price input=3)"
)


def _amount(value: str, amount: str) -> str:
    try:
        number = Decimal(amount)
    except InvalidOperation:
        raise UsageError(_PRICE_HELP.format(value=value)) from None
    if not number.is_finite() or number < 0:
        raise UsageError(f"--price {value!r}: prices must be non-negative USD per million tokens")
    return amount


def model_choice(
    model: str | None,
    prices: Sequence[str] | None,
    context_window: int | None = None,
    max_output: int | None = None,
) -> ModelChoice:
    """The model options, checked (a bad ``--price`` or limit fails before any work)."""
    for option, value in (("--context-window", context_window), ("--max-output", max_output)):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be a positive number of tokens, got {value}")
    return ModelChoice(model, parse_prices(prices or []) or None, context_window, max_output)


def model_option(
    model: str | None,
    prices: Sequence[str] | None,
    context_window: int | None = None,
    max_output: int | None = None,
) -> ModelSpec | None:
    """The model asked for on the command line (None: let each log name its own)."""
    return model_choice(model, prices, context_window, max_output).spec()


def figures_line(spec: ModelSpec) -> str | None:
    """One sentence naming the figures of ``spec`` that are assumptions, with their source."""
    sources = spec.sources
    shown = {
        "context_window": f"window {spec.context_window:,}",
        "max_output_tokens": f"max output {spec.max_output_tokens:,}",
        "tokenizer": f"tokenizer {spec.tokenizer}",
        "prices": "prices",
    }
    assumed = [f"{shown[name]} ({getattr(sources, name)})" for name in sources.estimates]
    if not assumed:
        return None
    return f"{spec.name}: " + ", ".join(assumed) + " (see `ctxbudget models`)."


class ModelPlan:
    """Which model each session of ``simulate`` is replayed as and each call priced as.

    ``--model``: that one for everything. Else each session is replayed as its log's model
    (window, tokenizer, cache rules) and each call priced as the model the log names for it;
    a model nobody knows is counted generically and left unpriced (never another's prices).
    """

    def __init__(self, choice: ModelChoice, forced: ModelSpec | None) -> None:
        self.choice, self.forced = choice, forced
        self._specs: dict[str, ModelSpec] = {}
        self._counters: dict[str, TokenCounter] = {}
        self._plans: dict[str, tuple[ModelSpec, list[ModelSpec]]] = {}
        self.log_calls: Counter[str] = Counter()
        """Model the logs name → its calls (``unnamed`` when a log names none)."""
        self.priced_calls: Counter[str] = Counter()
        """Model priced as → its calls."""

    def _spec(self, name: str) -> ModelSpec:
        if name not in self._specs:
            c = self.choice
            self._specs[name] = log_model_spec(name, c.prices, c.context_window, c.max_output)
        return self._specs[name]

    def add(self, session: Session) -> None:
        """Plan one session (before :meth:`replay_as`)."""
        own = log_model(session) or UNNAMED_MODEL
        named = call_models(session)
        calls = [named.get(c.position) or own for c in session.calls]
        self.log_calls.update(calls or [own])
        if self.forced is not None:
            self.priced_calls[self.forced.name] += len(calls)
            self._plans[session.name] = (self.forced, [])
            return
        per_call = [self._spec(name) for name in calls]
        self.priced_calls.update(s.name for s in per_call)
        self._plans[session.name] = (self._spec(own), per_call)

    def replay_as(
        self, session: Session
    ) -> tuple[ModelSpec, TokenCounter, list[Prices | None] | None]:
        """The spec to replay ``session`` as, its counter, and each call's prices (None:
        the spec's for every call)."""
        spec, per_call = self._plans[session.name]
        prices = [s.prices for s in per_call] if per_call else None
        return spec, self._counter(spec), prices

    def _counter(self, spec: ModelSpec) -> TokenCounter:
        if spec.name not in self._counters:
            self._counters[spec.name] = counter_for(spec)
        return self._counters[spec.name]

    def _replayed(self) -> list[ModelSpec]:
        return [spec for spec, _ in self._plans.values()] or [self.main()]

    def main(self) -> ModelSpec:
        """The model the run is named for: ``--model``, else the one most calls used."""
        if self.forced is not None:
            return self.forced
        for name, _ in self.log_calls.most_common(1):
            return self._spec(name)
        return self._spec(UNNAMED_MODEL)

    def exact(self) -> bool:
        """Whether every replayed model's counts are exact."""
        return all(self._counter(spec).tokenizer.exact for spec in self._replayed())

    def window(self) -> int | None:
        """The window peaks are held against: the replayed models' one window; None when
        they differ or a model nobody knows has none."""
        specs = self._replayed()
        windows = {s.context_window for s in specs}
        if len(windows) != 1 or any(s.sources.context_window.startswith("generic") for s in specs):
            return None
        return windows.pop()

    def unpriced(self) -> list[str]:
        """The models some calls are priced as whose prices are unknown."""
        specs = [s for _, per_call in self._plans.values() for s in per_call]
        specs += [self.forced] if self.forced is not None else []
        return sorted({s.name for s in specs if s.prices is None or s.prices.input is None})

    def notices(self) -> list[str]:
        """One line per unpriced model: how to price it."""
        return [
            (
                "the logs name no model"
                if name == UNNAMED_MODEL
                else f"no prices for model {name!r} in the price registry"
            )
            + ": its calls' costs are shown as unknown. Pass --price IN,OUT (USD per million "
            "tokens, e.g. --price 3,15) to price it, or --model NAME to price it as a known "
            "model."
            for name in self.unpriced()
        ]

    def to_json(self) -> dict[str, object]:
        """What the logs named, what the calls were priced as, and where the run model's
        figures come from."""
        return {
            "log_models": sorted(self.log_calls),
            "models": dict(self.priced_calls.most_common()),
            "priced_as": self.priced_as(),
            "model_sources": self.main().sources.to_json(),
            "unpriced_models": self.unpriced(),
        }

    def priced_as(self) -> str:
        """``priced as X`` (per call when several models), and what the logs say when that
        differs."""
        priced = [name for name, _ in self.priced_calls.most_common()] or [self.main().name]
        if len(priced) == 1:
            head = f"priced as {priced[0]}"
        else:
            each = ", ".join(f"{name} ×{self.priced_calls[name]}" for name in priced)
            head = f"priced per call as {each}"
        logs = sorted(self.log_calls)
        differs = any(name not in priced for name in logs)
        return head + (f" (logs say {', '.join(logs)})" if differs else "")
