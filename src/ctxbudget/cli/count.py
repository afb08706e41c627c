"""``ctxbudget count``: tokens per component of one request, before it is sent."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ctxbudget.budget.accounting import Accountant
from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.cli import app
from ctxbudget.cli._breakdown import breakdown_table, tokens_label, visible_items
from ctxbudget.cli._output import console, print_json
from ctxbudget.convert.request import Format, Request, read_request
from ctxbudget.errors import UsageError
from ctxbudget.scoping.costs import ToolCosts, tool_costs
from ctxbudget.session.items import Component

__all__ = ["count"]


def read_body(source: str) -> dict[str, Any]:
    """A JSON request body from a file path, or from stdin when ``source`` is ``-``."""
    where = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{where}: not UTF-8 text (byte {exc.start}: {exc.reason}); count reads a JSON "
            "request body: pass a UTF-8 .json file, or - to read it from stdin"
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot read {where}: {exc.strerror or exc}") from exc
    try:
        body = json.loads(text)
    except RecursionError as exc:
        raise UsageError(
            f"{where}: JSON nested too deeply to read (arrays or objects inside each other "
            f"past about {sys.getrecursionlimit()} levels); expected a request body such as "
            '{"messages": [...], "tools": [...]}'
        ) from exc
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            'expected a request body such as {"messages": [...], "tools": [...]}'
        ) from exc
    if not isinstance(body, dict):
        raise UsageError(
            f"{where}: expected a JSON object (a request body), got {type(body).__name__}"
        )
    return body


def pick_model(
    name: str | None, request: Request, context_window: int | None, max_output: int | None
) -> ModelSpec:
    """``--model`` wins over the body's ``model``; explicit limits override the registry."""
    chosen = name or request.model
    if not chosen:
        raise UsageError("no model: pass --model NAME (the request body has no 'model' either)")
    return resolve_model(chosen, context_window=context_window, max_output_tokens=max_output)


def account_request(request: Request, model: ModelSpec, policy: str) -> Accountant:
    """Account every item and the tools of ``request``."""
    accountant = Accountant(model, policy)
    accountant.set_tools(request.tools)
    accountant.extend(request.items)
    return accountant


@app.command()
def count(
    source: Annotated[str, typer.Argument(help="Request JSON file, or - for stdin.")] = "-",
    model: Annotated[str | None, typer.Option(help="Model name (default: the body's).")] = None,
    policy: Annotated[str, typer.Option(help="Budget policy preset.")] = "agent",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="openai_chat | openai_responses | anthropic (default: detect)."
        ),
    ] = None,
    context_window: Annotated[int | None, typer.Option(help="Override the window.")] = None,
    max_output: Annotated[int | None, typer.Option(help="Override the max output.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    tools: Annotated[
        bool, typer.Option("--tools", help="Also show what each tool schema costs.")
    ] = False,
) -> None:
    """Count a request's input tokens per component (exact, or marked estimate)."""
    body = read_body(source)
    request = read_request(body, format=_format(fmt))
    spec = pick_model(model, request, context_window, max_output)
    accountant = account_request(request, spec, policy)
    costs = tool_costs(accountant.counter, request.tools, spec.prices) if tools else None
    snapshot = accountant.snapshot()
    total = accountant.input_tokens
    shown = visible_items(request.items, len(request.tools))
    if as_json:
        ledger = snapshot.to_dict()
        for row in ledger["components"]:
            row["items"] = shown[Component(row["component"])]
        print_json(
            {
                "model": spec.name,
                "format": request.format,
                "input_tokens": total.tokens,
                "exact": total.exact,
                "tools_tokens": accountant.count("tools").tokens,
                "ledger": ledger,
                **({"tools": _costs_json(costs)} if costs is not None else {}),
            }
        )
        return
    out = console()
    title = f"{spec.name} · {request.format} · policy {policy}"
    out.print(breakdown_table(snapshot, title, shown))
    out.print(f"input tokens billed: [bold]{tokens_label(total.tokens, total.exact)}[/]")
    if costs is not None:
        out.print(_costs_table(costs, spec.name))


def _usd(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"${value:.6f}"


def _costs_table(costs: ToolCosts, model: str) -> Table:
    """One row per tool: tokens (estimate-labelled), share, dollars per request."""
    table = Table(title=f"tool schemas · {model} · per request", title_justify="left")
    for header in ("tool", "tokens", "share", "input $", "cached $"):
        table.add_column(header, justify="left" if header == "tool" else "right")
    whole = max(costs.total.tokens, 1)
    for row in sorted(costs.tools, key=lambda r: (-r.tokens.tokens, r.name)):
        table.add_row(
            row.name,
            row.tokens.label,
            f"{row.tokens.tokens / whole:.1%}",
            _usd(row.input_usd),
            _usd(row.cached_usd),
        )
    table.add_row("(block overhead)", costs.overhead.label, "", "", "")
    table.add_row("all tools", costs.total.label, "100.0%", "", "")
    return table


def _costs_json(costs: ToolCosts) -> dict[str, Any]:
    def usd(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "total_tokens": costs.total.tokens,
        "exact": costs.total.exact,
        "overhead_tokens": costs.overhead.tokens,
        "per_tool": [
            {
                "name": r.name,
                "tokens": r.tokens.tokens,
                "exact": r.tokens.exact,
                "input_usd": usd(r.input_usd),
                "cached_usd": usd(r.cached_usd),
            }
            for r in costs.tools
        ],
    }


def _format(value: str | None) -> Format | None:
    allowed: tuple[Format, ...] = ("openai_chat", "openai_responses", "anthropic")
    if value is None:
        return None
    for name in allowed:
        if value == name:
            return name
    raise UsageError(f"unknown --format {value!r}; expected one of {', '.join(allowed)}")
