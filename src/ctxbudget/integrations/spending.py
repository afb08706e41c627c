"""A wrapped call's spend reservation: reserved after the request is prepared, settled with
the bill when the reply (or the end of its stream) comes back, released if the call fails.

The projection is the prepared request's predicted input (cache reads and writes included)
plus the most output the call may produce, at the prices of the model the call is actually
sent to; a ``switch`` limit moves the call to its cheaper model once.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ctxbudget.cost import price
from ctxbudget.errors import ConfigError
from ctxbudget.models import Prices, resolve_model
from ctxbudget.spend.guard import SpendGuard
from ctxbudget.spend.ledger import Reservation, Switch
from ctxbudget.usage import Usage

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = ["CallSpend"]

_OUTPUT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_MILLION = Decimal(1_000_000)


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
        prices = self._prices_of(model)
        report = self.manager.last_report
        predicted = report.predicted if report is not None else None
        input_cost = price(predicted, prices) if predicted is not None else None
        if report is None or input_cost is None or prices.output is None:
            raise ConfigError(
                f"spend limits need the prices of {model!r}; give the manager a ModelSpec "
                "with prices=Prices(input=..., output=...) (USD per million tokens)"
            )
        out = next(
            (int(options[k]) for k in _OUTPUT_KEYS if isinstance(options.get(k), int)),
            self.manager.accountant.ledger.allocation.output_reserve,
        )
        usd = input_cost.input + Decimal(out) * prices.output / _MILLION
        result = self.guard.reserve_amount(usd, report.input_tokens.tokens + out, model=model)
        if isinstance(result, Switch):
            if result.model == model:
                crossing = result.crossing
                raise crossing.error(crossing.limit.key)
            return result.model
        self._held, self._prices = result, prices
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

    def _prices_of(self, model: str) -> Prices:
        spec = self.manager.model if model == self.manager.model.name else resolve_model(model)
        if spec.prices is None:
            raise ConfigError(
                f"spend limits need the prices of {model!r}; the model registry has none"
            )
        return spec.prices
