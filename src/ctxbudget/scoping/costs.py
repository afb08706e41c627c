"""What each tool schema costs: tokens (marginal, so the parts add up) and dollars.

A tool's tokens are what the request's tool block loses without it; what no single tool owns
(the block's framing) is ``overhead``, so ``sum(tokens) + overhead`` is the whole block.
Tool-schema counts are estimates for every provider (no documented framing rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ctxbudget.billing.cost import cache_rates
from ctxbudget.billing.prices import Prices
from ctxbudget.session.items import ToolSpec
from ctxbudget.tokens.count import TokenCount
from ctxbudget.tokens.counter import TokenCounter

__all__ = ["ToolCost", "ToolCosts", "tool_costs"]

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCost:
    """One tool schema's share of every request that carries it."""

    name: str
    """Tool name."""
    tokens: TokenCount
    """Input tokens it adds to a request (marginal)."""
    input_usd: Decimal | None
    """Its cost per request at the model's uncached input price (None: no price)."""
    cached_usd: Decimal | None
    """Its cost per request when read from the prompt cache (None: no price)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCosts:
    """Every tool's cost, plus the block overhead and the total."""

    tools: tuple[ToolCost, ...]
    """Per tool, in the order given."""
    overhead: TokenCount
    """Tokens of the tool block no single tool owns."""
    total: TokenCount
    """All the schemas together, as a request carries them."""


def tool_costs(
    counter: TokenCounter, tools: Sequence[ToolSpec], prices: Prices | None
) -> ToolCosts:
    """Each tool's marginal tokens and dollars (O(n) counts of the block)."""
    total = counter.count_tools(list(tools))
    rows = []
    for n, spec in enumerate(tools):
        rest = counter.count_tools([t for i, t in enumerate(tools) if i != n])
        tokens = total - rest
        rows.append(
            ToolCost(
                name=spec.name,
                tokens=tokens,
                input_usd=_usd(tokens.tokens, prices, cached=False),
                cached_usd=_usd(tokens.tokens, prices, cached=True),
            )
        )
    owned = sum(r.tokens.tokens for r in rows)
    overhead = TokenCount(total.tokens - owned, total.exact)
    return ToolCosts(tools=tuple(rows), overhead=overhead, total=total)


def _usd(tokens: int, prices: Prices | None, *, cached: bool) -> Decimal | None:
    if prices is None or prices.input is None:
        return None
    rate = cache_rates(prices)[0] if cached else prices.input
    return tokens * rate / _MILLION
