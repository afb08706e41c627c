"""``ctxbudget demo``: where a scripted agent's tokens go, offline, with no API key."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from ctxbudget.budget.accounting import Accountant
from ctxbudget.budget.models import resolve_model
from ctxbudget.cli import app
from ctxbudget.cli._breakdown import breakdown_table, tokens_label, visible_items
from ctxbudget.cli._output import console, print_json
from ctxbudget.convert.openai_chat import from_openai_chat, from_openai_chat_tools
from ctxbudget.demo import demo_session
from ctxbudget.errors import UsageError

__all__ = ["demo"]


@app.command()
def demo(
    model: Annotated[str, typer.Option(help="Model to account for.")] = "gpt-4o",
    turns: Annotated[int, typer.Option(help="Model calls in the scripted session.")] = 150,
    policy: Annotated[str, typer.Option(help="Budget policy preset.")] = "agent",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Token breakdown of a demo agent session that explores ctxbudget's own source."""
    if turns < 1:
        raise UsageError(f"--turns must be at least 1, got {turns}")
    spec = resolve_model(model)
    session = demo_session(turns)
    accountant = Accountant(spec, policy)
    accountant.set_tools(from_openai_chat_tools(list(session.tools)))
    per_call: list[int] = []
    items = from_openai_chat(list(session.messages))
    for item in items:
        if item.role == "assistant":
            per_call.append(accountant.input_tokens.tokens)  # the prompt of this call
        accountant.add(item)
    snapshot = accountant.snapshot()
    exact = snapshot.total.exact
    billed = sum(per_call)
    price = spec.prices.input if spec.prices else None
    cost = None if price is None else Decimal(billed) * price / Decimal(1_000_000)
    first_over = next((i + 1 for i, t in enumerate(per_call) if t > snapshot.usable), None)
    if as_json:
        print_json(
            {
                "model": spec.name,
                "calls": len(per_call),
                "exact": exact,
                "prompt_tokens_per_call": per_call,
                "peak_input_tokens": max(per_call),
                "total_input_tokens": billed,
                "input_cost_usd_without_caching": None if cost is None else float(cost),
                "first_call_over_usable_window": first_over,
                "ledger": snapshot.to_dict(),
            }
        )
        return
    out = console()
    shown = visible_items(items, len(session.tools))
    out.print(breakdown_table(snapshot, f"demo session · {spec.name} · policy {policy}", shown))
    out.print(
        f"{len(per_call)} model calls; the last prompt is "
        f"{tokens_label(per_call[-1], exact)} tokens, the first was "
        f"{tokens_label(per_call[0], exact)}."
    )
    out.print(
        f"Sent whole every call, the session bills {tokens_label(billed, exact)} input tokens"
        + ("" if cost is None else f" (${cost:.2f} at {spec.name} input prices, no caching)")
        + ": cost grows with the square of the number of calls."
    )
    if first_over is not None:
        out.print(
            f"[yellow]Call {first_over} no longer fits the usable window "
            f"({snapshot.usable} tokens): without compaction the session would fail.[/]"
        )
