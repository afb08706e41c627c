"""Prices and windows from the embedded genai-prices data snapshot (never its network update).

genai-prices carries prices and, for most models, the context window; it carries no output
limit and no tokenizer (those come from profiles or family defaults).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ctxbudget.billing.prices import Prices

__all__ = ["PriceDataModel", "genai_lookup", "price_data_models"]

_GENAI_KEYS = (
    ("input", "input_mtok"),
    ("output", "output_mtok"),
    ("cache_read", "cache_read_mtok"),
    ("cache_write_5m", "cache_write_mtok"),
    ("cache_write_1h", "cache_write_1h_mtok"),
)
_DATE_SUFFIX = re.compile(r"[-@](?:\d{4}-\d{2}-\d{2}|\d{8})$")
"""A dated snapshot (``-2026-01-01``, ``-20260101``) the price data may not list."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceDataModel:
    """One model as the price data lists it."""

    provider: str
    """genai-prices provider id, e.g. ``openai``, ``openrouter``."""
    model: str
    """genai-prices model id, e.g. ``gpt-5.3-codex``."""
    context_window: int | None
    """Window (tokens) where the price data has one."""
    prices: Prices | None
    """Token prices at the time asked (``None``: no input or output token price listed)."""

    @property
    def pricing_id(self) -> str:
        return f"{self.provider}/{self.model}"


def _snapshot() -> Any:
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    if snapshot.from_auto_update:  # someone started UpdatePrices: use the embedded data only
        from genai_prices.data import providers

        snapshot = data_snapshot.DataSnapshot(providers=providers, from_auto_update=False)
    return snapshot


def genai_lookup(
    model: str, provider: str | None, at: datetime
) -> tuple[int | None, Prices | None, str | None, str | None]:
    """Window, prices, pricing id and genai model id from the embedded genai-prices data.

    A dated snapshot the data does not list is looked up without its date.
    """
    snapshot = _snapshot()
    try:
        found, info = snapshot.find_provider_model(model, None, provider, None)
    except LookupError:
        undated = _DATE_SUFFIX.sub("", model)
        if undated == model:
            return None, None, None, None
        try:
            found, info = snapshot.find_provider_model(undated, None, provider, None)
        except LookupError:
            return None, None, None, None
    pricing_id = f"{found.id}/{info.id}"
    return info.context_window, _prices(info, pricing_id, at), pricing_id, info.id


def price_data_models(at: datetime) -> Iterator[PriceDataModel]:
    """Every model of the embedded price data, by provider then model id."""
    for provider in sorted(_snapshot().providers, key=lambda p: p.id):
        for info in sorted(provider.models, key=lambda m: m.id):
            pricing_id = f"{provider.id}/{info.id}"
            yield PriceDataModel(
                provider=provider.id,
                model=info.id,
                context_window=info.context_window,
                prices=_prices(info, pricing_id, at),
            )


def _prices(info: Any, pricing_id: str, at: datetime) -> Prices | None:
    from genai_prices import __version__ as genai_version
    from genai_prices.types import TieredPrices

    model_price = info.get_prices(at)
    values: dict[str, Decimal] = {}
    notes: list[str] = []
    starts: list[int] = []
    for ours, theirs in _GENAI_KEYS:
        raw = getattr(model_price, theirs, None)
        if isinstance(raw, TieredPrices):
            values[ours] = raw.base
            for tier in raw.tiers:
                starts.append(tier.start)
                notes.append(f"{ours}: {tier.price} per MTok when input exceeds {tier.start}")
        elif isinstance(raw, Decimal):
            values[ours] = raw
    if "input" not in values and "output" not in values:
        return None
    return Prices(
        input=values.get("input"),
        output=values.get("output"),
        cache_read=values.get("cache_read"),
        cache_write_5m=values.get("cache_write_5m"),
        cache_write_1h=values.get("cache_write_1h"),
        tiered_above=min(starts) if starts else None,
        notes=tuple(notes),
        source=f"genai-prices {genai_version}: {pricing_id}",
    )
