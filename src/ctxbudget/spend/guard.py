"""The call-side of spend budgets: reserve before a call, settle after it.

The projection is what the prepared request can cost at most: its predicted input cost
(with the cache reads and writes the cache layer expects) plus the most output the call
may produce, at the model's output price. Settling replaces it with what the provider
billed, priced the same way (:func:`~ctxbudget.billing.cost.price`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from typing import TYPE_CHECKING

from ctxbudget.billing.cost import price
from ctxbudget.billing.usage import Usage
from ctxbudget.budget.models import ModelSpec, Prices
from ctxbudget.errors import ConfigError, UsageError
from ctxbudget.spend.ledger import RESERVATION_TTL, Reservation, SpendLedger, Switch
from ctxbudget.spend.model import Tags, from_nanos, to_nanos

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = ["SpendGuard", "SpendWarning", "projected_cost"]

_MILLION = Decimal(1_000_000)


class SpendWarning(UserWarning):
    """A ``warn`` spend limit was crossed; the call went ahead."""


def projected_cost(
    manager: ContextManager,
    max_output_tokens: int | None = None,
    *,
    model: ModelSpec | None = None,
) -> tuple[Decimal, int]:
    """(dollars, tokens) the last prepared request may cost at most: its predicted input
    (cache reads and writes included) plus ``max_output_tokens`` (default: the policy's
    output reserve), at the prices of ``model`` (default: the manager's)."""
    report = manager.last_report
    if report is None:
        raise UsageError("a spend reservation needs a prepared request: call prepare() first")
    spec = model or manager.model
    prices = spec.prices
    cost = price(report.predicted, prices) if report.predicted is not None else None
    if cost is None or prices is None or prices.output is None:
        raise ConfigError(
            f"spend limits need the prices of {spec.name!r}; pass a ModelSpec with "
            "prices=Prices(input=..., output=...) (USD per million tokens)"
        )
    out = max_output_tokens
    if out is None:
        out = manager.accountant.ledger.allocation.output_reserve
    usd = cost.input + Decimal(out) * prices.output / _MILLION
    return usd, report.input_tokens.tokens + out


class SpendGuard:
    """Reserves each call's projected cost in a ledger and settles it with the bill.

    A reservation never settled nor released (its worker died) stops counting against the
    limits ``reservation_ttl`` seconds (default 10 minutes) after ``clock()`` read when it
    was made: the next reserve by any worker releases it (see ``ctxbudget.spend.ledger``).
    """

    def __init__(
        self,
        ledger: SpendLedger,
        tags: Tags,
        *,
        clock: Callable[[], float] = time.time,
        reservation_ttl: float = RESERVATION_TTL,
    ) -> None:
        tags.scopes()  # validates
        if not (math.isfinite(reservation_ttl) and reservation_ttl > 0):
            raise ConfigError(
                f"reservation_ttl must be a positive number of seconds, got {reservation_ttl!r}"
            )
        self.ledger = ledger
        self.tags = tags
        self.clock = clock
        """Seconds (wall clock by default) that date reservations and their expiry."""
        self.reservation_ttl = reservation_ttl
        """Seconds a reservation counts if never settled or released (a crashed worker's):
        longer than the longest call. A late settle still records the billed spend."""

    def reserve(
        self, manager: ContextManager, *, max_output_tokens: int | None = None
    ) -> Reservation | Switch:
        """Reserve the last prepared request's projection, or say to switch model.

        Raises BudgetExceeded (nothing reserved) when a ``refuse`` limit would be crossed;
        issues a :class:`SpendWarning` per ``warn`` limit crossed.
        """
        usd, tokens = projected_cost(manager, max_output_tokens)
        return self.reserve_amount(usd, tokens, model=manager.model.name)

    def reserve_amount(self, usd: Decimal, tokens: int, *, model: str) -> Reservation | Switch:
        """Reserve ``usd`` (rounded up to a nano-dollar) and ``tokens`` for one call."""
        result = self.ledger.reserve(
            self.tags,
            nanos=to_nanos(usd, up=True),
            tokens=tokens,
            model=model,
            now=self.clock(),
            ttl=self.reservation_ttl,
        )
        if isinstance(result, Reservation):
            for crossing in result.warnings:
                warnings.warn(SpendWarning(crossing.describe()), stacklevel=3)
        return result

    def settle(self, reservation: Reservation, usage: Usage, prices: Prices | None) -> Decimal:
        """Replace the reservation with the billed cost of ``usage``; returns that cost."""
        cost = price(usage, prices) if prices is not None else None
        # an unknown price must not pass as free: then what was reserved is kept
        billed = reservation.nanos if cost is None else to_nanos(cost.total)
        self.ledger.settle(
            reservation.id,
            nanos=billed,
            tokens=usage.input_tokens + usage.output_tokens,
        )
        return from_nanos(billed)

    def release(self, reservation: Reservation) -> None:
        """Give back a reservation whose call failed before anything was billed."""
        self.ledger.release(reservation.id)

    @contextmanager
    def hold(self, usd: Decimal, tokens: int, *, model: str) -> Iterator[Reservation | Switch]:
        """Reserve for the block; released if the block raises before settling."""
        result = self.reserve_amount(usd, tokens, model=model)
        try:
            yield result
        except BaseException:
            if isinstance(result, Reservation):
                with suppress(UsageError):  # already settled inside the block
                    self.release(result)
            raise
