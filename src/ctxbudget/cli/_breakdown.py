"""The per-component breakdown table shared by ``count`` and ``demo``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from rich.table import Table

from ctxbudget.budget.ledger import LedgerSnapshot
from ctxbudget.session.items import Component, Item
from ctxbudget.tokens.count import TokenCount

__all__ = ["breakdown_table", "tokens_label", "visible_items"]


def tokens_label(tokens: int, exact: bool) -> str:
    """A count as shown to people: exact, or carrying the word estimate."""
    return TokenCount(tokens, exact).label


def visible_items(items: Iterable[Item], tools: int) -> dict[Component, int]:
    """Component → how many items the user sent (messages, tool schemas). The ledger also
    holds entries the user never wrote (the per-request framing under ``system``, the
    tool block even when empty), so its entry count is not what a person calls items."""
    counted = Counter(item.component for item in items)
    counted[Component.TOOLS] = tools
    return {c: counted.get(c, 0) for c in Component}


def breakdown_table(
    snapshot: LedgerSnapshot, title: str, items: Mapping[Component, int] | None = None
) -> Table:
    """Used / budget / remaining / utilization per component, then the totals;
    ``items`` (see :func:`visible_items`) replaces the ledger's entry counts."""
    table = Table(title=title, title_justify="left")
    for header in ("component", "kind", "items", "tokens", "budget", "remaining", "use"):
        table.add_column(header, justify="left" if header in ("component", "kind") else "right")
    for row in snapshot.components:
        count = row.items if items is None else items.get(row.component, 0)
        if count == 0 and not row.used and not row.budget:
            continue
        table.add_row(
            row.component.value,
            row.kind.value,
            str(count),
            tokens_label(row.used, row.exact),
            "-" if row.budget is None else str(row.budget),
            "-" if row.remaining is None else str(row.remaining),
            "-" if row.utilization is None else f"{row.utilization:.0%}",
            style="red" if row.over_budget else None,
        )
    table.add_section()
    table.add_row(
        "input total",
        "",
        "",
        tokens_label(snapshot.total.tokens, snapshot.total.exact),
        str(snapshot.usable),
        str(snapshot.remaining),
        f"{snapshot.occupancy:.0%}",
        style="bold",
    )
    return table
