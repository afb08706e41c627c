"""``--model`` with ``--price KEY=VALUE`` overrides, shared by ``analyze`` and ``simulate``."""

from __future__ import annotations

from collections.abc import Sequence

from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.errors import UsageError

__all__ = ["model_option", "parse_prices"]


def parse_prices(pairs: Sequence[str]) -> dict[str, str]:
    """``["input=2", "output=12"]`` → ``{"input": "2", "output": "12"}`` (USD per MTok)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(
                f"--price {pair!r}: expected KEY=USD_PER_MILLION_TOKENS, e.g. --price input=2"
            )
        out[key.strip()] = value.strip()
    return out


def model_option(
    model: str | None,
    prices: Sequence[str] | None,
    context_window: int | None = None,
    max_output: int | None = None,
) -> ModelSpec | None:
    """The model asked for on the command line (None: let each log name its own)."""
    overrides = parse_prices(prices or [])
    if model is None:
        if overrides or context_window or max_output:
            raise UsageError("--price, --context-window and --max-output need --model NAME")
        return None
    return resolve_model(
        model,
        prices=overrides or None,
        context_window=context_window,
        max_output_tokens=max_output,
    )
