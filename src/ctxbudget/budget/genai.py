"""Prices and windows from the embedded genai-prices data snapshot (never its network update)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ctxbudget.billing.prices import Prices

__all__ = ["genai_lookup"]

_GENAI_KEYS = (
    ("input", "input_mtok"),
    ("output", "output_mtok"),
    ("cache_read", "cache_read_mtok"),
    ("cache_write_5m", "cache_write_mtok"),
    ("cache_write_1h", "cache_write_1h_mtok"),
)


def genai_lookup(
    model: str, provider: str | None, at: datetime
) -> tuple[int | None, Prices | None, str | None, str | None]:
    """Window, prices, pricing id and genai model id from the embedded genai-prices data."""
    from genai_prices import __version__ as genai_version
    from genai_prices import data_snapshot
    from genai_prices.types import TieredPrices

    snapshot = data_snapshot.get_snapshot()
    if snapshot.from_auto_update:  # someone started UpdatePrices: use the embedded data only
        from genai_prices.data import providers

        snapshot = data_snapshot.DataSnapshot(providers=providers, from_auto_update=False)
    try:
        found, info = snapshot.find_provider_model(model, None, provider, None)
    except LookupError:
        return None, None, None, None
    pricing_id = f"{found.id}/{info.id}"
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
    prices = None
    if "input" in values or "output" in values:
        prices = Prices(
            input=values.get("input"),
            output=values.get("output"),
            cache_read=values.get("cache_read"),
            cache_write_5m=values.get("cache_write_5m"),
            cache_write_1h=values.get("cache_write_1h"),
            tiered_above=min(starts) if starts else None,
            notes=tuple(notes),
            source=f"genai-prices {genai_version}: {pricing_id}",
        )
    return info.context_window, prices, pricing_id, info.id
