"""What a phase change costs in remove mode, and whether a shrink pays.

Tools render first, so changing the offered set changes the request from its first byte:
everything cached is written again once (``rewrite``). Removing tools saves their schema
tokens on every later request (``saving`` per turn, read from the cache). Growing the set is
forced (the phase needs the new tools); a pure shrink is worth it only when the saving over
the expected remaining turns beats the rewrite, the rule cost.py applies to compactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ctxbudget.billing.cost import rewrite_economics
from ctxbudget.billing.prices import Prices
from ctxbudget.compaction.cost_planner import CostGate

__all__ = ["PhaseChange", "price_change"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseChange:
    """One change of phase and what it did to the request's tools."""

    before: str
    """The phase before."""
    after: str
    """The phase asked for."""
    added: tuple[str, ...]
    """Tools the new phase offers that the request did not carry."""
    removed: tuple[str, ...]
    """Tools the request carried that the new phase does not offer."""
    applied: bool
    """Whether the request's tool list changed (False: held, or cache-stable mode)."""
    rewrite_tokens: int
    """Tokens written to the cache again because the prefix changed (0 when it did not)."""
    rewrite_cost: Decimal | None
    """Extra USD of that rewrite over reading them from the cache; None: no prices."""
    saving_tokens: int
    """Schema tokens each later request saves (negative: the list grew)."""
    saving_cost: Decimal | None
    """USD each later request saves at the cache-read price; None: no prices."""
    reason: str
    """Why it was applied or held, in words."""

    def describe(self) -> str:
        """One line for reports."""
        cost = f"${self.rewrite_cost:.4f}" if self.rewrite_cost is not None else "unpriced"
        verb = "changed the tool list" if self.applied else "kept the tool list"
        return (
            f"phase {self.before} → {self.after} {verb}: rewrite {self.rewrite_tokens:,} "
            f"tokens ({cost}), {self.saving_tokens:,} schema tokens saved per turn; {self.reason}"
        )


def price_change(
    *,
    request_tokens: int,
    old_tools: int,
    new_tools: int,
    cached: bool,
    horizon: int,
    prices: Prices | None,
    ttl: str = "5m",
) -> tuple[int, Decimal | None, Decimal | None, bool]:
    """(rewrite tokens, rewrite USD, saving USD per turn, whether a shrink pays).

    ``request_tokens``: the request as it stands with the old tools (the manager's ledger);
    the rewrite is that request with the new tools, since nothing of it stays cached.
    """
    rewrite = max(request_tokens - old_tools + new_tools, 0)
    saving = old_tools - new_tools
    gate = CostGate(prices=prices, ttl=ttl)
    if prices is None or prices.input is None:
        return rewrite, None, None, saving > 0
    rewrite_cost = gate.rewrite_cost(rewrite, cached=cached)
    saving_cost = gate.read_cost(saving) if saving > 0 else -gate.read_cost(-saving)
    if saving <= 0:
        return rewrite, rewrite_cost, saving_cost, False
    economics = rewrite_economics(
        freed=saving, rewritten=rewrite, cached=cached, horizon=horizon, prices=prices, ttl=ttl
    )
    return rewrite, rewrite_cost, saving_cost, economics.pays
