"""``ctxbudget analyze``: where the tokens and dollars of real agent sessions went."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ctxbudget.analyze import Analysis, analyze_session
from ctxbudget.cli import app
from ctxbudget.cli._models import model_option
from ctxbudget.cli._output import console, print_json
from ctxbudget.cli._sources import progress, resolve_sources
from ctxbudget.report.data import analysis_report
from ctxbudget.report.html import write_html

__all__ = ["analyze"]


@app.command()
def analyze(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Agent log files or folders (default: your Claude Code / Codex logs, "
            "else a demo session)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Count and price as this model (default: the model each log names)."),
    ] = None,
    price: Annotated[
        list[str] | None,
        typer.Option(
            help="A price of --model in USD per million tokens, e.g. input=2 (repeatable: "
            "input, output, cache_read, cache_write_5m, cache_write_1h)."
        ),
    ] = None,
    context_window: Annotated[
        int | None, typer.Option(help="Window of --model, when the registry lacks it.")
    ] = None,
    max_output: Annotated[
        int | None, typer.Option(help="Output limit of --model, when the registry lacks it.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="At most this many sessions (log files when discovered).")
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Use the built-in demo session.")] = False,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Tokens and dollars by component per session; recorded cost next to computed cost."""
    spec = model_option(model, price, context_window, max_output)
    sources = resolve_sources(paths or [], limit=limit, demo=demo)
    analysis = Analysis()
    for session in progress(sources.sessions, "analyzing"):
        analysis.sessions.append(analyze_session(session, spec))
    if html is not None:
        title = f"ctxbudget analyze · {len(analysis.sessions)} session(s) from {sources.origin}"
        write_html(analysis_report(analysis, title), html)
    if as_json:
        data = analysis.to_json()
        data["source"] = sources.origin
        print_json(data)
        return
    out = console(min_width=150)
    out.print(_components(analysis, sources.origin))
    out.print(_sessions(analysis))
    if html is not None:
        out.print(f"Report: {html}")


def _money(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value.quantize(Decimal('0.0001')):,}"


def _components(analysis: Analysis, origin: str) -> Table:
    unit = "tokens" if analysis.exact else "tokens, estimate"
    parts = analysis.by_component()
    total = sum(tokens for tokens, _ in parts.values()) or 1
    calls = sum(s.calls for s in analysis.sessions)
    table = Table(
        title=f"where the input went: {len(analysis.sessions)} session(s), {calls} model calls, "
        f"from {origin} (every call's prompt, summed)",
        title_justify="left",
    )
    for header in ("component", unit, "share", "input $"):
        table.add_column(header, justify="left" if header == "component" else "right")
    for name, (tokens, dollars) in parts.items():
        table.add_row(name, f"{tokens:,}", f"{tokens / total:.1%}", _money(dollars))
    return table


def _sessions(analysis: Analysis) -> Table:
    unit = "tokens" if analysis.exact else "tokens, estimate"
    table = Table(title="per session", title_justify="left")
    table.add_column("session", no_wrap=True)
    headers = (
        "session",
        "format",
        "priced as",
        "calls",
        f"peak {unit}",
        "input $",
        "output $",
        "cache hit",
        "recorded $",
        "computed $",
        "difference",
    )
    for header in headers[1:]:
        table.add_column(header, justify="left" if header in headers[:3] else "right")
    for s in analysis.sessions:
        hit = "n/a" if s.cache_hit_rate is None else f"{s.cache_hit_rate:.0%}"
        if s.cache_source == "simulated" and s.cache_hit_rate is not None:
            hit += " (simulated)"
        diff = s.difference
        share = (
            ""
            if diff is None or not s.recorded_cost
            else f" ({float(diff / s.recorded_cost):+.1%})"
        )
        table.add_row(
            s.name if len(s.name) <= 40 else "…" + s.name[-39:],
            s.format,
            s.model,
            str(s.calls),
            f"{s.peak:,}",
            _money(s.input_cost),
            _money(s.output_cost),
            hit,
            _money(s.recorded_cost),
            _money(s.computed_cost),
            ("n/a" if diff is None else _money(diff)) + share,
        )
    return table
