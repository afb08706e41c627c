"""``ctxbudget simulate``: what each context policy would have cost on real sessions."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ctxbudget.analyze.analysis import log_model
from ctxbudget.analyze.composition import composition_per_call
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.cli import app
from ctxbudget.cli._models import (
    ContextWindowOption,
    MaxOutputOption,
    ModelChoice,
    ModelOption,
    PriceOption,
    model_choice,
)
from ctxbudget.cli._output import console, notice, output_dir, output_file, print_json
from ctxbudget.cli._sources import resolve_sources, steps
from ctxbudget.errors import ConfigError
from ctxbudget.report.data import simulation_report
from ctxbudget.report.html import write_html
from ctxbudget.simulate import DEFAULT_POLICIES, Simulation, check_policies, simulate_session
from ctxbudget.simulate.results import PolicyTotals, SessionResult

__all__ = ["simulate"]

DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_REPORT = Path("ctxbudget-report.html")
"""Where the report goes when ``simulate`` runs with no path (the main job)."""


@app.command()
def simulate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Agent log files or folders (default: your Claude Code / Codex logs, "
            "else a demo session)."
        ),
    ] = None,
    policy: Annotated[
        str,
        typer.Option(
            help="Policies to compare, comma-separated: none-nocache, none, mask-last-10, "
            "clear-tool-uses, ctxbudget (the default preset, digest) or ctxbudget:<preset> "
            "(ctxbudget:agent is the batched default before digests; ctxbudget:digest-lean)."
        ),
    ] = ",".join(DEFAULT_POLICIES),
    model: ModelOption = None,
    price: PriceOption = None,
    context_window: ContextWindowOption = None,
    max_output: MaxOutputOption = None,
    min_calls: Annotated[int, typer.Option(help="Skip sessions with fewer model calls.")] = 1,
    limit: Annotated[
        int | None, typer.Option(help="At most this many sessions (log files when discovered).")
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Use the built-in demo session.")] = False,
    export_views: Annotated[
        Path | None, typer.Option(help="Write each policy's exact requests, one JSONL per session.")
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Replay sessions call by call through context policies: cost, peak, retention.

    Priced as --model; without it, as the model the logs name when they all name the same
    known one, else as claude-sonnet-4-5 (said in the output)."""
    policies = check_policies(policy.split(","))
    choice = model_choice(model, price, context_window, max_output)
    spec = choice.spec()  # a bad --model fails before any work
    report = html if html is not None else (DEFAULT_REPORT if not paths and not as_json else None)
    overwrote = output_file(report, "--html") if report is not None else False
    if export_views is not None:
        output_dir(export_views, "--export-views")
    sources = resolve_sources(paths or [], limit=limit, demo=demo, min_calls=max(min_calls, 1))
    logs = sorted({log_model(s) or "unnamed" for s in sources.sessions})
    if spec is None:
        spec = _logs_model(logs, choice)
    counter = counter_for(spec)
    exact = counter.tokenizer.exact
    sim = Simulation(
        model=spec.name,
        provider=spec.provider,
        exact=exact,
        policies=policies,
        context_window=spec.context_window,
    )
    if spec.prices is None or spec.prices.input is None:
        notice(
            f"no prices for model {spec.name!r} in the price registry: costs are shown as "
            "unknown. Pass --price IN,OUT (USD per million tokens, e.g. --price 3,15) to "
            "price it, or --model NAME to price it as a known model."
        )
    compositions = {}
    with steps(len(sources.sessions) * len(policies), "simulating") as advance:
        for session in sources.sessions:
            # one counter for the replay and the composition chart: each item tokenized once
            runs = []
            for name in policies:
                advance(f"{session.name[:40]} · {name}")
                runs.append(
                    simulate_session(
                        session, [name], spec, export_dir=export_views, counter=counter
                    )
                )
            sim.sessions.append(_merge(runs))
            compositions[session.name] = composition_per_call(session, counter)[0]
    priced = _priced_as(spec.name, logs)
    over = sim.over_window_notes()
    if report is not None:
        title = f"ctxbudget simulate · {len(sim.sessions)} session(s) from {sources.origin}"
        if over:
            title += " · " + "; ".join(over)
        write_html(simulation_report(sim, compositions, title), report)
    if as_json:
        data = sim.to_json()
        data["source"] = sources.origin
        data["report"] = str(report) if report is not None else None
        data["log_models"] = logs
        data["skipped"] = sources.skipped_json()
        print_json(data)
        return
    out = console(min_width=132)
    out.print(_table(sim, sources.origin, priced))
    for line in over:
        out.print(f"[bold red]* {escape(line)}[/]")
    if sim.output_cost is not None:
        out.print(
            f"Output (the same under every policy): ${sim.output_cost:.2f} at {spec.name} prices."
        )
    for line in sources.skipped_lines():
        out.print(line, markup=False, highlight=False)
    if export_views is not None:
        out.print(f"Requests written under {export_views}/<policy>/<session>.jsonl")
    if report is not None:
        out.print(
            f"Report: {report}" + (" (overwrote the report that was there)" if overwrote else "")
        )


def _logs_model(logs: list[str], choice: ModelChoice) -> ModelSpec:
    """No --model: the logs' own model when they all name one the registry prices, else
    the default (the table then says what the logs named)."""
    if len(logs) == 1 and logs[0] != "unnamed":
        try:
            own = ModelChoice(logs[0], choice.prices, choice.context_window, choice.max_output)
            spec = own.spec()
        except ConfigError:
            spec = None
        if spec is not None and spec.prices is not None and spec.prices.input is not None:
            return spec
    return resolve_model(
        DEFAULT_MODEL,
        prices=choice.prices,
        context_window=choice.context_window,
        max_output_tokens=choice.max_output,
    )


def _priced_as(model: str, logs: list[str]) -> str:
    """``priced as X``, and what the logs say when that differs."""
    others = [name for name in logs if name != model]
    return f"priced as {model}" + (f" (logs say {', '.join(others)})" if others else "")


def _merge(runs: list[SessionResult]) -> SessionResult:
    """One session's result from its per-policy replays (the policies are independent)."""
    first = runs[0]
    merged = {name: run for r in runs for name, run in r.runs.items()}
    return replace(first, runs=merged)


def _table(sim: Simulation, origin: str, priced: str) -> Table:
    unit = "tokens" if sim.exact else "tokens, estimate"
    calls = sum(s.calls for s in sim.sessions)
    table = Table(
        title=f"{len(sim.sessions)} session(s), {calls} model calls, from {origin} · "
        f"{priced} ({sim.provider} cache rules) · input cost, recall calls "
        f"included · {unit}",
        title_justify="left",
    )
    headers = (
        "policy",
        "input",
        "peak",
        "cached",
        "input $",
        "vs none",
        "retention",
        "lines",
        "recalls",
        "compact.",
        "> none",
    )
    for header in headers:
        if header == "policy":
            table.add_column(header, justify="left", no_wrap=True)
        else:
            table.add_column(header, justify="right")
    for name, t in sim.totals().items():
        table.add_row(*_row(sim, name, t))
    return table


def _row(sim: Simulation, name: str, t: PolicyTotals) -> list[str]:
    ratio = sim.ratio(name, "none")
    share = t.retention.share
    cost = t.input_cost
    over = sim.context_window is not None and t.peak > sim.context_window
    return [
        name,
        f"{t.input_tokens:,}",
        f"{t.peak:,}" + ("*" if over else ""),
        f"{t.cached_share:.0%}",
        "n/a" if cost is None else f"{cost.quantize(Decimal('0.01')):,}",
        "n/a" if ratio is None else f"{ratio:.2f}x",
        "n/a" if share is None else f"{share:.1%}",
        "n/a" if t.retention.line_share is None else f"{t.retention.line_share:.1%}",
        str(t.recalls),
        str(t.compactions),
        str(t.worse_than_none),
    ]
