"""Dollars, not tokens: price a call, and decide whether a compaction pays.

Prices come from :class:`~ctxbudget.billing.prices.Prices` (USD per million tokens). Where a
provider lists no separate cache-write price (OpenAI) writes are billed as plain input;
where no cache-read price is listed, reads are billed as input too. An unknown price makes
the cost ``None`` (unknown), never zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ctxbudget.billing.prices import Prices
from ctxbudget.billing.usage import Usage

__all__ = ["Cost", "RewriteEconomics", "cache_rates", "price", "rewrite_economics"]

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cost:
    """The price of one call (or a sum of calls), in USD."""

    uncached_input: Decimal
    """Prompt tokens neither read from nor written to the cache."""
    cache_read: Decimal
    """Prompt tokens read from the cache."""
    cache_write: Decimal
    """Prompt tokens written to the cache (any TTL)."""
    output: Decimal
    """Generated tokens, reasoning included."""

    @property
    def input(self) -> Decimal:
        """Everything context management controls: uncached input + cache reads + writes."""
        return self.uncached_input + self.cache_read + self.cache_write

    @property
    def total(self) -> Decimal:
        """Input plus output."""
        return self.input + self.output

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            uncached_input=self.uncached_input + other.uncached_input,
            cache_read=self.cache_read + other.cache_read,
            cache_write=self.cache_write + other.cache_write,
            output=self.output + other.output,
        )


ZERO = Cost(
    uncached_input=Decimal(0), cache_read=Decimal(0), cache_write=Decimal(0), output=Decimal(0)
)


def cache_rates(prices: Prices, ttl: str = "5m") -> tuple[Decimal, Decimal]:
    """(read, write) USD per million cached tokens; unlisted prices fall back to input.

    A missing 1-hour write price falls back to the 5-minute one, then to input.
    """
    base = prices.input if prices.input is not None else Decimal(0)
    read = prices.cache_read if prices.cache_read is not None else base
    write = prices.cache_write_5m if prices.cache_write_5m is not None else base
    if ttl == "1h" and prices.cache_write_1h is not None:
        write = prices.cache_write_1h
    return read, write


def price(usage: Usage, prices: Prices | None) -> Cost | None:
    """What ``usage`` costs at ``prices``; None when a needed price is unknown."""
    if prices is None or prices.input is None:
        return None
    base = prices.input
    read, write_5m = cache_rates(prices, "5m")
    _, write_1h = cache_rates(prices, "1h")
    if usage.output_tokens and prices.output is None:
        return None
    output = prices.output if prices.output is not None else Decimal(0)
    return Cost(
        uncached_input=usage.uncached_input_tokens * base / _MILLION,
        cache_read=usage.cache_read_tokens * read / _MILLION,
        cache_write=(
            usage.cache_write_5m_tokens * write_5m + usage.cache_write_1h_tokens * write_1h
        )
        / _MILLION,
        output=usage.output_tokens * output / _MILLION,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RewriteEconomics:
    """Whether compacting now pays, in USD over the coming turns."""

    saving: Decimal
    """What the freed tokens would have cost over the horizon (as cache reads)."""
    rewrite: Decimal
    """Extra cost of writing the changed suffix again instead of reading it from cache."""
    horizon: int
    """Turns the saving was projected over."""

    @property
    def pays(self) -> bool:
        """True when the projected saving beats the rewrite."""
        return self.saving > self.rewrite

    def describe(self) -> str:
        """One line for reports."""
        verdict = "pays" if self.pays else "does not pay"
        return (
            f"compaction {verdict}: saves ${self.saving:.4f} over {self.horizon} turns, "
            f"rewriting the prefix costs ${self.rewrite:.4f}"
        )


def rewrite_economics(
    *,
    freed: int,
    rewritten: int,
    cached: bool,
    horizon: int,
    prices: Prices,
    ttl: str = "5m",
) -> RewriteEconomics:
    """Compare freeing ``freed`` tokens with rewriting ``rewritten`` tokens of cached prefix.

    Without compaction the freed tokens would be read from the cache on each of the next
    ``horizon`` turns; with it, the ``rewritten`` tokens after the first change are written
    again once instead of being read. When nothing is cached (``cached=False``: the cache
    expired or the provider does not cache) the rewrite costs nothing extra.
    """
    read, write = cache_rates(prices, ttl)
    saving = freed * read * horizon / _MILLION
    if not cached:
        # everything is written (or sent uncached) anyway: fewer tokens cost less at once
        saving = freed * write / _MILLION + saving
        return RewriteEconomics(saving=saving, rewrite=Decimal(0), horizon=horizon)
    rewrite = rewritten * (write - read) / _MILLION
    return RewriteEconomics(saving=saving, rewrite=max(rewrite, Decimal(0)), horizon=horizon)
