"""``ctxbudget simulate``: what each context policy would have cost on real sessions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ctxbudget.analyze.composition import composition_per_call
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import resolve_model
from ctxbudget.cli import app
from ctxbudget.cli._models import model_option
from ctxbudget.cli._output import console, print_json
from ctxbudget.cli._sources import progress, resolve_sources
from ctxbudget.report.data import simulation_report
from ctxbudget.report.html import write_html
from ctxbudget.simulate import DEFAULT_POLICIES, Simulation, check_policies, simulate_session
from ctxbudget.simulate.results import PolicyTotals

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
    model: Annotated[
        str, typer.Option(help="Model to count and price for (its cache rules apply).")
    ] = DEFAULT_MODEL,
    price: Annotated[
        list[str] | None,
        typer.Option(
            help="A price of --model in USD per million tokens, e.g. input=3 (repeatable)."
        ),
    ] = None,
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
    """Replay sessions call by call through context policies: cost, peak, retention."""
    policies = check_policies(policy.split(","))
    spec = model_option(model, price) or resolve_model(DEFAULT_MODEL)
    sources = resolve_sources(paths or [], limit=limit, demo=demo, min_calls=max(min_calls, 1))
    counter = counter_for(spec)
    exact = counter.tokenizer.exact
    sim = Simulation(model=spec.name, provider=spec.provider, exact=exact, policies=policies)
    compositions = {}
    for session in progress(sources.sessions, "simulating"):
        # one counter for the replay and the composition chart: each item tokenized once
        sim.sessions.append(
            simulate_session(session, policies, spec, export_dir=export_views, counter=counter)
        )
        compositions[session.name] = composition_per_call(session, counter)[0]
    report = html if html is not None else (DEFAULT_REPORT if not paths and not as_json else None)
    if report is not None:
        title = f"ctxbudget simulate · {len(sim.sessions)} session(s) from {sources.origin}"
        write_html(simulation_report(sim, compositions, title), report)
    if as_json:
        data = sim.to_json()
        data["source"] = sources.origin
        data["report"] = str(report) if report is not None else None
        print_json(data)
        return
    out = console(min_width=120)
    out.print(_table(sim, sources.origin))
    if sim.output_cost is not None:
        out.print(
            f"Output (the same under every policy): ${sim.output_cost:.2f} at {spec.name} prices."
        )
    if export_views is not None:
        out.print(f"Requests written under {export_views}/<policy>/<session>.jsonl")
    if report is not None:
        out.print(f"Report: {report}")


def _table(sim: Simulation, origin: str) -> Table:
    unit = "tokens" if sim.exact else "tokens, estimate"
    calls = sum(s.calls for s in sim.sessions)
    table = Table(
        title=f"{len(sim.sessions)} session(s), {calls} model calls, from {origin} · "
        f"priced as {sim.model} ({sim.provider} cache rules) · input cost, recall calls "
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
    return [
        name,
        f"{t.input_tokens:,}",
        f"{t.peak:,}",
        f"{t.cached_share:.0%}",
        "n/a" if cost is None else f"{cost.quantize(Decimal('0.01')):,}",
        "n/a" if ratio is None else f"{ratio:.2f}x",
        "n/a" if share is None else f"{share:.1%}",
        "n/a" if t.retention.line_share is None else f"{t.retention.line_share:.1%}",
        str(t.recalls),
        str(t.compactions),
        str(t.worse_than_none),
    ]
