"""Exchanges: an assistant turn's tool calls and all of their results, the unit never split.

Every strategy moves whole exchanges. These helpers find them and check the invariant
that no tool call is sent without its results and no result without its call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ctxbudget.session.items import Item

__all__ = ["Orphans", "assign_exchanges", "find_orphans"]


def assign_exchanges(items: Sequence[Item]) -> list[Item]:
    """Set ``exchange_id`` on every assistant item with tool calls and the items answering them.

    The exchange id is ``"x:" + <assistant item id>``. Items that already carry an exchange id
    keep it. Results whose call is not in ``items`` are left without one (see
    :func:`find_orphans`).
    """
    owner: dict[str, str] = {}
    out: list[Item] = []
    for item in items:
        exchange = item.exchange_id
        if exchange is None:
            answered = [owner[r.call_id] for r in item.tool_results if r.call_id in owner]
            if answered:
                exchange = answered[0]
            elif item.role == "assistant" and item.tool_calls:
                exchange = f"x:{item.id}"
        if exchange is not None and item.tool_calls:
            for call in item.tool_calls:
                owner[call.id] = exchange
        out.append(item if exchange == item.exchange_id else item.with_(exchange_id=exchange))
    return out


@dataclass(frozen=True, slots=True)
class Orphans:
    """Tool calls with no result and results with no earlier call, by call id."""

    calls_without_result: tuple[str, ...]
    results_without_call: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.calls_without_result or self.results_without_call)


def find_orphans(items: Sequence[Item], *, allow_pending_tail: bool = True) -> Orphans:
    """Find tool calls and results that lost their partner.

    With ``allow_pending_tail`` the calls of the very last item may still wait for their
    results (the model just asked for them); everywhere else a call needs a result.
    """
    seen_calls: dict[str, int] = {}
    answered: set[str] = set()
    stray: list[str] = []
    for index, item in enumerate(items):
        for result in item.tool_results:
            if result.call_id in seen_calls:
                answered.add(result.call_id)
            else:
                stray.append(result.call_id)
        for call in item.tool_calls:
            seen_calls[call.id] = index
    last = len(items) - 1
    missing = tuple(
        call_id
        for call_id, index in seen_calls.items()
        if call_id not in answered and not (allow_pending_tail and index == last)
    )
    return Orphans(calls_without_result=missing, results_without_call=tuple(stray))
