"""The model options shared by ``analyze`` and ``simulate``: ``--model``, ``--price``,
``--context-window`` and ``--max-output``, defined once here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from ctxbudget.billing.prices import PRICE_FIELDS
from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.errors import UsageError

__all__ = [
    "ContextWindowOption",
    "MaxOutputOption",
    "ModelChoice",
    "ModelOption",
    "PriceOption",
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
