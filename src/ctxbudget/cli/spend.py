"""``ctxbudget spend``: spend per scope and period, and the limits that guard it."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer
from rich.table import Table

from ctxbudget.cli import app
from ctxbudget.cli._output import console, print_json
from ctxbudget.cli.sessions import StoreOption
from ctxbudget.errors import ConfigError
from ctxbudget.spend import Limit, ledger_for
from ctxbudget.store import open_store

__all__ = ["spend"]

spend = typer.Typer(help="Spend budgets: show spend and limits, set a limit.", no_args_is_help=True)
app.add_typer(spend, name="spend")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _limit_json(limit: Limit) -> dict[str, Any]:
    return {
        "scope": limit.scope,
        "key": limit.key,
        "period": limit.period,
        "usd": None if limit.usd is None else str(limit.usd),
        "tokens": limit.tokens,
        "action": limit.action,
        "fallback_model": limit.fallback_model,
    }


@spend.command("show")
def show(store: StoreOption = None, as_json: AsJson = False) -> None:
    """Settled and reserved spend per scope and period, and every limit."""
    with open_store(store) as opened:
        ledger = ledger_for(opened)
        limits, totals, url = ledger.limits(), ledger.totals(), opened.url
    if as_json:
        print_json(
            {
                "store": url,
                "limits": [_limit_json(x) for x in limits],
                "spend": [
                    {
                        "scope": b.scope,
                        "key": b.key,
                        "period": b.period,
                        "bucket": b.bucket,
                        "spent_usd": str(t.spent),
                        "reserved_usd": str(t.reserved),
                        "spent_tokens": t.spent_tokens,
                        "reserved_tokens": t.reserved_tokens,
                        "calls": t.calls,
                    }
                    for b, t in totals.items()
                ],
            }
        )
        return
    out = console(100)
    table = Table(title=f"limits in {url}")
    for column in ("scope", "key", "period", "usd", "tokens", "action"):
        table.add_column(column)
    for x in limits:
        action = f"switch to {x.fallback_model}" if x.action == "switch" else x.action
        table.add_row(
            x.scope,
            x.key,
            x.period,
            "" if x.usd is None else f"${x.usd}",
            "" if x.tokens is None else f"{x.tokens:,}",
            action,
        )
    out.print(table)
    table = Table(title="spend (settled at billed cost; reserved = calls in flight)")
    for column in ("scope", "key", "period", "spent $", "reserved $", "tokens", "calls"):
        table.add_column(
            column, justify="right" if "$" in column or column in ("tokens", "calls") else "left"
        )
    for b, t in totals.items():
        table.add_row(
            b.scope,
            b.key,
            b.bucket,
            f"{t.spent:.6f}",
            f"{t.reserved:.6f}",
            f"{t.spent_tokens:,}",
            f"{t.calls:,}",
        )
    out.print(table)


@spend.command("set-limit")
def set_limit(
    scope: Annotated[str, typer.Option(help="session, agent, user, team or global.")],
    key: Annotated[str, typer.Option(help="Which one (team name, user id...); * for each.")] = "*",
    period: Annotated[str, typer.Option(help="call, day or month (UTC).")] = "month",
    usd: Annotated[str | None, typer.Option(help="Dollars allowed per period, e.g. 50.")] = None,
    tokens: Annotated[int | None, typer.Option(help="Tokens allowed per period.")] = None,
    action: Annotated[str, typer.Option(help="refuse, warn or switch.")] = "refuse",
    fallback_model: Annotated[
        str | None, typer.Option(help="The cheaper model 'switch' moves to.")
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove this limit instead.")] = False,
    store: StoreOption = None,
    as_json: AsJson = False,
) -> None:
    """Add, replace or remove the limit for one scope, key and period."""
    with open_store(store) as opened:
        ledger = ledger_for(opened)
        if remove:
            removed = ledger.remove_limit(scope, key, period)
            if as_json:
                print_json({"removed": removed, "scope": scope, "key": key, "period": period})
            else:
                console().print("removed" if removed else "there was no such limit")
            return
        limit = Limit(
            scope=scope,  # type: ignore[arg-type]
            key=key,
            period=period,  # type: ignore[arg-type]
            usd=_dollars(usd),
            tokens=tokens,
            action=action,  # type: ignore[arg-type]
            fallback_model=fallback_model,
        )
        ledger.set_limit(limit)
    if as_json:
        print_json(_limit_json(limit))
    else:
        console().print(f"limit set: {limit.describe()}")


def _dollars(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.strip().lstrip("$"))
    except InvalidOperation as exc:
        raise ConfigError(f"--usd {text!r} is not an amount of dollars, e.g. 50 or 0.25") from exc
    return value
