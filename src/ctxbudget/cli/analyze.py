"""``ctxbudget analyze``: where the tokens and dollars of real agent sessions went."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ctxbudget.analyze import Analysis, SessionAnalysis, analyze_session
from ctxbudget.analyze.analysis import UNNAMED_MODEL
from ctxbudget.cli import app
from ctxbudget.cli._models import (
    ContextWindowOption,
    MaxOutputOption,
    ModelOption,
    PriceOption,
    model_choice,
)
from ctxbudget.cli._output import console, notice, output_file, print_json
from ctxbudget.cli._sources import (
    StoredOption,
    progress,
    resolve_sources,
    skipped_records_line,
    sub_agent_note,
)
from ctxbudget.cli.sessions import StoreOption
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
    model: ModelOption = None,
    price: PriceOption = None,
    context_window: ContextWindowOption = None,
    max_output: MaxOutputOption = None,
    limit: Annotated[
        int | None, typer.Option(help="At most this many sessions (log files when discovered).")
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Use the built-in demo session.")] = False,
    stored: StoredOption = None,
    store: StoreOption = None,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Tokens and dollars by component per session; recorded cost next to computed cost."""
    choice = model_choice(model, price, context_window, max_output)
    spec = choice.spec()
    overwrote = output_file(html, "--html") if html is not None else False
    sources = resolve_sources(
        paths or [],
        limit=limit,
        demo=demo,
        stored=stored or (),
        store=store,
    )
    analysis = Analysis()
    for session in progress(sources.sessions, "analyzing"):
        analysis.sessions.append(
            analyze_session(
                session,
                spec,
                prices=choice.prices,
                context_window=choice.context_window,
                max_output=choice.max_output,
            )
        )
    notes = pricing_notes(analysis)
    for note in notes:
        notice(note)
    if html is not None:
        title = f"ctxbudget analyze · {len(analysis.sessions)} session(s) from {sources.origin}"
        write_html(analysis_report(analysis, title), html)
    if as_json:
        data = analysis.to_json()
        data["source"] = sources.origin
        data["skipped"] = sources.skipped_json()
        data["notices"] = notes
        print_json(data)
        return
    out = console(min_width=150)
    out.print(_components(analysis, sources.origin))
    out.print(_sessions(analysis))
    line = models_line(analysis)
    if line is not None:
        out.print(line, markup=False, highlight=False)
    records = skipped_records_line(s.skipped_records for s in analysis.sessions)
    for line in [*sources.skipped_lines(), *([records] if records else [])]:
        out.print(line, markup=False, highlight=False)
    if html is not None:
        out.print(f"Report: {html}" + (" (overwrote the file there)" if overwrote else ""))


def pricing_notes(analysis: Analysis) -> list[str]:
    """One line per model whose prices are unknown: what the log said, how to price it."""
    unpriced: dict[str, list[str]] = {}
    for s in analysis.sessions:
        for name in s.unpriced_models:
            unpriced.setdefault(name, []).append(s.name)
    notes = []
    for name, sessions in unpriced.items():
        which = (
            "the log names no model"
            if name == UNNAMED_MODEL
            else f"no prices for model {name!r} in the price registry"
        )
        notes.append(
            f"{which} ({len(sessions)} session(s), e.g. {sessions[0]}): its cost is shown as "
            "unknown. Pass --price IN,OUT (USD per million tokens, e.g. --price 3,15) to "
            "price it, or --model NAME to price it as a known model."
        )
    return notes


def priced_as(s: SessionAnalysis) -> str:
    """The model(s) a session was priced as (calls each, when several), marking the unpriced,
    and what the log says when that differs."""
    models = s.models or {s.model: 0}
    shown = ", ".join(
        ("unknown" if name == UNNAMED_MODEL else name)
        + (f" ×{calls}" if len(models) > 1 else "")
        + (" (unpriced)" if name in s.unpriced_models else "")
        for name, calls in models.items()
    )
    logs = [name for name in s.log_models if name not in models]
    if logs and s.log_model is not None:
        shown += f" (log says {', '.join(s.log_models)})"
    return shown


def models_line(analysis: Analysis) -> str | None:
    """Which models the calls were priced as, when more than one."""
    used = analysis.models()
    if len(used) < 2:
        return None
    listed = ", ".join(f"{name} ({calls:,} calls)" for name, calls in used.items())
    return f"Models: {listed}; each call is priced as its own model."


def _money(value: Decimal | None, known: bool = True) -> str:
    if not known:
        return "unknown"
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
    known = all(s.priced for s in analysis.sessions)
    for name, (tokens, dollars) in parts.items():
        table.add_row(name, f"{tokens:,}", f"{tokens / total:.1%}", _money(dollars, known))
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
        table.add_column(
            header,
            justify="left" if header in headers[:3] else "right",
            no_wrap=header == "priced as",
        )
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
            (s.name if len(s.name) <= 40 else "…" + s.name[-39:]) + sub_agent_note(s.parent),
            s.format,
            priced_as(s),
            str(s.calls),
            f"{s.peak:,}",
            _money(s.input_cost, s.priced),
            _money(s.output_cost, s.priced),
            hit,
            _money(s.recorded_cost),
            _money(s.computed_cost, s.priced),
            ("n/a" if diff is None else _money(diff)) + share,
        )
    return table
