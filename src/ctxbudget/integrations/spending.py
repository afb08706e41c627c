"""A wrapped call's spend reservation: reserved after the request is prepared, settled with
the bill when the reply (or the end of its stream) comes back, released if the call fails.

The projection is the prepared request's predicted input (cache reads and writes included)
plus the most output the call may produce, at the prices of the model the call is actually
sent to; a ``switch`` limit moves the call to its cheaper model once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ctxbudget.billing.usage import Usage
from ctxbudget.budget.models import Prices, resolve_model
from ctxbudget.convert.request import requested_output
from ctxbudget.spend.guard import SpendGuard, projected_cost
from ctxbudget.spend.ledger import Reservation, Switch

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = ["CallSpend"]


class CallSpend:
    """The reservation of one wrapped call (at most one held at a time)."""

    def __init__(self, guard: SpendGuard, manager: ContextManager) -> None:
        self.guard, self.manager = guard, manager
        self._held: Reservation | None = None
        self._prices: Prices | None = None

    def reserve(self, model: str, options: Mapping[str, Any]) -> str | None:
        """Reserve the prepared request's projection on ``model``; the model to switch to
        (prepare again for it) when a ``switch`` limit would be crossed, else None.

        Raises BudgetExceeded (nothing sent) when a ``refuse`` limit would be crossed, or
        when even the ``switch`` limit's cheaper model does not fit.
        """
        spec = self.manager.model if model == self.manager.model.name else resolve_model(model)
        reserve = self.manager.accountant.ledger.allocation.output_reserve
        usd, tokens = projected_cost(self.manager, requested_output(options, reserve), model=spec)
        result = self.guard.reserve_amount(usd, tokens, model=model)
        if isinstance(result, Switch):
            if result.model == model:
                crossing = result.crossing
                raise crossing.error(crossing.limit.key)
            return result.model
        self._held, self._prices = result, spec.prices
        return None

    def settle(self, usage: Usage | None) -> None:
        """Replace the reservation with the bill (kept as spent when there is no usage)."""
        held, self._held = self._held, None
        if held is None:
            return
        if usage is None:  # a stream without usage: what was reserved counts as spent
            self.guard.settle(held, Usage(input_tokens=0), None)
        else:
            self.guard.settle(held, usage, self._prices)

    def release(self) -> None:
        """The call failed unbilled: give the reservation back."""
        held, self._held = self._held, None
        if held is not None:
            self.guard.release(held)
