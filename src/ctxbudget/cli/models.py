"""``ctxbudget models``: every model ctxbudget knows, its limits and prices, and where each
figure comes from (the registry, the price data, or a family default: an estimate)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from ctxbudget.billing.prices import Prices
from ctxbudget.budget.catalog import known_models
from ctxbudget.budget.models import ModelSpec
from ctxbudget.cli import app
from ctxbudget.cli._output import console, notice, print_json

__all__ = ["models"]

_PRICE_COLUMNS = (
    ("input", "in $/MTok"),
    ("output", "out $/MTok"),
    ("cache_read", "cache read"),
    ("cache_write_5m", "cache write"),
)


@app.command()
def models(
    pattern: Annotated[
        str | None,
        typer.Argument(
            help="Only models whose provider/name contains this (case-insensitive), or "
            "matches it as a glob (claude-*, openai/gpt-5*)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Known models: window, max output, tokenizer, prices per million tokens, and the
    source of each figure (registry, price data, or family default: an estimate)."""
    found = known_models(pattern)
    if not found:
        notice(
            f"no known model matches {pattern!r}: a model nobody knows is left unpriced; "
            "price it with --price IN,OUT and give its limits with --context-window and "
            "--max-output (analyze, simulate)"
        )
    if as_json:
        print_json({"count": len(found), "models": [model_json(s) for s in found]})
        return
    out = console(min_width=160)
    out.print(_table(found, pattern))
    out.print(
        "from: where the window/max output/tokenizer/prices come from: R registry (built-in "
        "profile), P price data (genai-prices), F family default, V provider default, G "
        "generic default, ? unknown; ~ marks an estimate. Prices in USD per million tokens, "
        "+ where higher tiers apply to long prompts, - not listed (never free).",
        markup=False,
        highlight=False,
    )


def model_json(spec: ModelSpec) -> dict[str, Any]:
    """One model as JSON: figures, prices (USD per million tokens) and their sources."""
    return {
        "provider": spec.provider,
        "model": spec.name,
        "pricing_id": spec.pricing_id,
        "profile": spec.profile,
        "family_default": spec.family_default,
        "context_window": spec.context_window,
        "max_output_tokens": spec.max_output_tokens,
        "tokenizer": spec.tokenizer,
        "exact_tokenizer": spec.exact_tokenizer,
        "estimate_factor": spec.estimate_factor,
        "prices": _prices_json(spec.prices),
        "sources": spec.sources.to_json(),
        "estimates": list(spec.sources.estimates),
    }


def _prices_json(prices: Prices | None) -> dict[str, Any] | None:
    if prices is None:
        return None
    return {
        "input": _number(prices.input),
        "output": _number(prices.output),
        "cache_read": _number(prices.cache_read),
        "cache_write_5m": _number(prices.cache_write_5m),
        "cache_write_1h": _number(prices.cache_write_1h),
        "tiered_above": prices.tiered_above,
        "source": prices.source,
    }


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _table(found: list[ModelSpec], pattern: str | None) -> Table:
    which = f"matching {pattern!r}" if pattern else "known"
    table = Table(
        title=f"{len(found)} model(s) {which}: the registry's profiles and the price data",
        title_justify="left",
    )
    table.add_column("provider", no_wrap=True)
    table.add_column("model", overflow="fold")
    for header in ("window", "max output"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("tokenizer", no_wrap=True)
    for _, header in _PRICE_COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("from", no_wrap=True)
    for spec in found:
        sources = spec.sources
        table.add_row(
            spec.provider,
            spec.name,
            _figure(spec.context_window, sources.context_window),
            _figure(spec.max_output_tokens, sources.max_output_tokens),
            spec.tokenizer + (" ~" if "estimate" in sources.tokenizer else ""),
            *_prices_row(spec.prices),
            "/".join(
                _short(source)
                for source in (
                    sources.context_window,
                    sources.max_output_tokens,
                    sources.tokenizer,
                    sources.prices,
                )
            ),
        )
    return table


_CODES = {
    "registry": "R",
    "price data": "P",
    "family default": "F",
    "generic default": "G",
    "provider default": "V",
    "given": "-",
    "unknown": "?",
}


def _short(source: str) -> str:
    """``family default (estimate)`` → ``F~``: the table's short form of a source."""
    estimate = source.endswith(" (estimate)")
    return _CODES.get(source.removesuffix(" (estimate)"), source) + ("~" if estimate else "")


def _figure(tokens: int, source: str) -> str:
    return f"{tokens:,}" + (" ~" if "estimate" in source else "")


def _prices_row(prices: Prices | None) -> list[str]:
    if prices is None:
        return ["-"] * len(_PRICE_COLUMNS)
    cells = []
    for field, _ in _PRICE_COLUMNS:
        value = getattr(prices, field)
        cell = "-" if value is None else f"{value.normalize():f}"
        if value is not None and prices.tiered_above is not None:
            cell += "+"
        cells.append(cell)
    return cells
