"""The per-component breakdown table shared by ``count`` and ``demo``."""

from __future__ import annotations

from rich.table import Table

from ctxbudget.budget.ledger import LedgerSnapshot
from ctxbudget.tokens.count import TokenCount

__all__ = ["breakdown_table", "tokens_label"]


def tokens_label(tokens: int, exact: bool) -> str:
    """A count as shown to people: exact, or carrying the word estimate."""
    return TokenCount(tokens, exact).label


def breakdown_table(snapshot: LedgerSnapshot, title: str) -> Table:
    """Used / budget / remaining / utilization per component, then the totals."""
    table = Table(title=title, title_justify="left")
    for header in ("component", "kind", "items", "tokens", "budget", "remaining", "use"):
        table.add_column(header, justify="left" if header in ("component", "kind") else "right")
    for row in snapshot.components:
        if row.items == 0 and not row.budget:
            continue
        table.add_row(
            row.component.value,
            row.kind.value,
            str(row.items),
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
