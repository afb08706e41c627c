"""Prices of one model in USD per million tokens: ``None`` means not listed, never free."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from ctxbudget.errors import ConfigError

__all__ = ["PRICE_FIELDS", "Prices"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Prices:
    """Prices of one model, in USD per million tokens. ``None`` means not listed, never free."""

    input: Decimal | None = None
    """Uncached input tokens (USD per million tokens)."""
    output: Decimal | None = None
    """Output tokens, reasoning included (USD per million tokens)."""
    cache_read: Decimal | None = None
    """Input tokens read from the prompt cache (USD per million tokens)."""
    cache_write_5m: Decimal | None = None
    """Input tokens written to a 5-minute cache (USD per million tokens); ``None`` where the
    provider lists no separate write price (OpenAI bills cache writes as plain input)."""
    cache_write_1h: Decimal | None = None
    """Input tokens written to a 1-hour cache (USD per million tokens)."""
    tiered_above: int | None = None
    """Input tokens (per request) above which higher tier prices apply; the fields above are
    the base tier. ``None`` when the price is flat."""
    notes: tuple[str, ...] = ()
    """Human notes, e.g. the tier prices this flat view leaves out."""
    source: str = ""
    """Where the prices come from (genai-prices version and model id, or ``override``)."""

    def __post_init__(self) -> None:
        for name in PRICE_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ConfigError(
                    f"price {name}={value!r} must be a finite, non-negative Decimal in USD per "
                    f"million tokens, e.g. Decimal('2.5'); use None when unknown"
                )

    def with_overrides(self, overrides: Mapping[str, object]) -> Prices:
        """A copy with some prices replaced (numbers or strings become ``Decimal``)."""
        changes: dict[str, Any] = {}
        for key, raw in overrides.items():
            if key not in PRICE_FIELDS:
                hint = difflib.get_close_matches(str(key), PRICE_FIELDS, n=1)
                also = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ConfigError(
                    f"unknown price {key!r}{also}; expected some of {', '.join(PRICE_FIELDS)}"
                )
            changes[key] = _to_decimal(key, raw)
        source = f"{self.source} + override" if self.source else "override"
        return replace(self, source=source, **changes)


PRICE_FIELDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


def _to_decimal(key: str, raw: object) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, Decimal | int | float | str):
        raise ConfigError(f"price {key}={raw!r} must be a number or a decimal string")
    try:
        return raw if isinstance(raw, Decimal) else Decimal(str(raw))
    except InvalidOperation:
        raise ConfigError(f"price {key}={raw!r} is not a number") from None
