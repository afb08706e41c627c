"""Compact only when it pays: weigh what a proposal frees against the prefix it rewrites.

A provider cache bills the unchanged prefix of a request at a fraction of the input price
(Anthropic: reads 0.1x, writes 1.25x; OpenAI: reads 0.1x–0.5x, writes 1x). A compaction
changes the context from its first edit on, so everything after that point is written
again once; in return the freed tokens are no longer read on every later turn. The
decision is therefore per proposal: ``freed × read × horizon`` against
``rewritten × (write − read)``, where the horizon is how many more turns the session is
expected to run. Without prices or without a cache the rewrite is free and any saving pays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ctxbudget.billing.cost import RewriteEconomics, cache_rates, rewrite_economics
from ctxbudget.billing.prices import Prices
from ctxbudget.session.items import Item
from ctxbudget.session.log import Edit

__all__ = ["CostGate", "ProposalEffect", "RentMeter", "expected_turns", "proposal_effect"]

MIN_HORIZON = 5
"""Fewest future turns a saving is projected over."""
MAX_HORIZON = 100
"""Most future turns a saving is projected over."""


def expected_turns(turns_so_far: int, fixed: int | None = None) -> int:
    """Turns the session is expected to run on: ``fixed`` if given, else as many as so far.

    Without knowing the end, the time already run is the best simple predictor of the time
    left (a session that has run 40 turns is likely to run about 40 more), clipped to
    [``MIN_HORIZON``, ``MAX_HORIZON``].
    """
    if fixed is not None:
        return fixed
    return max(MIN_HORIZON, min(turns_so_far, MAX_HORIZON))


@dataclass(frozen=True, slots=True)
class ProposalEffect:
    """What applying some edits to a view does to its tokens."""

    freed: int
    """Input tokens the edits free."""
    rewritten: int
    """Tokens from the first edited position to the end, after the edits."""
    first: int
    """View index of the first edited item (len(view) when nothing is edited)."""


def proposal_effect(
    items: Sequence[Item], edits: Sequence[Edit], count: Callable[[Item], int]
) -> ProposalEffect:
    """Freed and rewritten tokens of ``edits`` on ``items`` (counted with ``count``)."""
    removed = {i for e in edits for i in e.remove}
    first = next((n for n, item in enumerate(items) if item.id in removed), len(items))
    freed = sum(count(i) for i in items if i.id in removed)
    freed -= sum(count(i) for e in edits for i in e.insert)
    after = sum(count(i) for i in items[first:] if i.id not in removed)
    after += sum(count(i) for e in edits for i in e.insert)
    return ProposalEffect(freed=freed, rewritten=after, first=first)


@dataclass(frozen=True, slots=True, kw_only=True)
class CostGate:
    """The compaction decisions of a priced, cached session."""

    prices: Prices | None
    """The model's prices (None: unknown, so compaction is never held back)."""
    margin: float = 1.0
    """How many times the rewrite cost the projected saving must reach."""
    ttl: str = "5m"
    """Cache lifetime the rewrite is written with."""

    def judge(
        self, *, freed: int, rewritten: int, cached: bool, horizon: int
    ) -> RewriteEconomics | None:
        """The economics of a compaction; None when they cannot be priced."""
        if self.prices is None or self.prices.input is None or freed <= 0:
            return None
        return rewrite_economics(
            freed=freed,
            rewritten=rewritten,
            cached=cached,
            horizon=horizon,
            prices=self.prices,
            ttl=self.ttl,
        )

    def pays(self, economics: RewriteEconomics | None) -> bool:
        """Whether to compact: unpriced compactions always go ahead."""
        if economics is None:
            return True
        return economics.saving > economics.rewrite * Decimal(str(self.margin))

    def read_cost(self, tokens: int) -> Decimal:
        """What reading ``tokens`` from the cache costs once (USD)."""
        read, _ = self._rates()
        return tokens * read / _MILLION

    def rewrite_cost(self, tokens: int, *, cached: bool) -> Decimal:
        """Extra cost of writing ``tokens`` again instead of reading them (USD)."""
        if not cached:
            return Decimal(0)
        read, write = self._rates()
        return max(tokens * (write - read), Decimal(0)) / _MILLION

    def _rates(self) -> tuple[Decimal, Decimal]:
        if self.prices is None or self.prices.input is None:
            return Decimal(0), Decimal(0)
        return cache_rates(self.prices, self.ttl)


class RentMeter:
    """When to clear old tool results: the ski-rental rule.

    Every turn the session keeps clearable tokens it pays "rent": reading them from the
    cache once more. Clearing them "buys": the suffix after the first cleared result is
    written again. Paying rent until it adds up to the price of buying, then buying, never
    costs more than twice what the best choice in hindsight would have cost, whatever the
    session's length, and it needs no guess of how long the session will run. It also
    batches naturally: a small clearable amount takes many turns to add up.
    """

    def __init__(self, gate: CostGate) -> None:
        self.gate = gate
        self.rent = Decimal(0)
        """Rent paid since the last clearing (USD)."""
        self.needed = Decimal(0)
        """The last buy price seen: no need to price a proposal before rent reaches it."""

    def pay(self, clearable_tokens: int) -> None:
        """One more turn carrying ``clearable_tokens``."""
        self.rent += self.gate.read_cost(clearable_tokens)

    def due(self) -> bool:
        """Whether rent has reached the last known price (worth pricing a proposal)."""
        return self.rent > 0 and self.rent >= self.needed

    def buys(self, rewrite: Decimal) -> bool:
        """Whether rent paid covers ``rewrite``; remembers the price when not."""
        if self.rent >= rewrite * Decimal(str(self.gate.margin)):
            return True
        self.needed = rewrite
        return False

    def postpone(self) -> None:
        """Nothing worth clearing yet: price proposals again once rent has doubled."""
        self.needed = self.rent * 2

    def bought(self) -> None:
        """A clearing happened: rent starts again."""
        self.rent = Decimal(0)
        self.needed = Decimal(0)


_MILLION = Decimal(1_000_000)
