"""``ctxbudget simulate``: what each context policy would have cost on real sessions."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ctxbudget.analyze.composition import composition_per_call
from ctxbudget.cli import app
from ctxbudget.cli._models import (
    ContextWindowOption,
    MaxOutputOption,
    ModelOption,
    ModelPlan,
    PriceOption,
    figures_line,
    model_choice,
)
from ctxbudget.cli._output import console, notice, output_dir, output_file, print_json
from ctxbudget.cli._sources import (
    StoredOption,
    resolve_sources,
    skipped_records_line,
    steps,
)
from ctxbudget.cli.sessions import StoreOption
from ctxbudget.report.data import simulation_report
from ctxbudget.report.html import write_html
from ctxbudget.simulate import DEFAULT_POLICIES, Simulation, check_policies, simulate_session
from ctxbudget.simulate.results import PolicyTotals, SessionResult

__all__ = ["simulate"]

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
    stored: StoredOption = None,
    store: StoreOption = None,
    export_views: Annotated[
        Path | None, typer.Option(help="Write each policy's exact requests, one JSONL per session.")
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Replay sessions call by call through context policies: cost, peak, retention.

    Each session is replayed as the model its log names and each call priced as the model
    that made it; --model replays and prices everything as one model (said in the output).
    A model nobody knows is counted generically and left unpriced, with a notice."""
    policies = check_policies(policy.split(","))
    choice = model_choice(model, price, context_window, max_output)
    plan = ModelPlan(choice, choice.spec())  # a bad --model fails before any work
    report = html if html is not None else (DEFAULT_REPORT if not paths and not as_json else None)
    overwrote = output_file(report, "--html") if report is not None else False
    if export_views is not None:
        output_dir(export_views, "--export-views")
    sources = resolve_sources(
        paths or [],
        limit=limit,
        demo=demo,
        stored=stored or (),
        store=store,
        min_calls=max(min_calls, 1),
    )
    for session in sources.sessions:
        plan.add(session)
    spec = plan.main()
    sim = Simulation(
        model=spec.name,
        provider=spec.provider,
        exact=plan.exact(),
        policies=policies,
        context_window=plan.window(),
    )
    for note in plan.notices():
        notice(note)
    compositions = {}
    with steps(len(sources.sessions) * len(policies), "simulating") as advance:
        for session in sources.sessions:
            # one counter for the replay and the composition chart: each item tokenized once
            own, counter, prices = plan.replay_as(session)
            runs = []
            for name in policies:
                advance(f"{session.name[:40]} · {name}")
                runs.append(
                    simulate_session(
                        session,
                        [name],
                        own,
                        export_dir=export_views,
                        counter=counter,
                        prices=prices,
                    )
                )
            sim.sessions.append(_merge(runs))
            compositions[session.name] = composition_per_call(session, counter)[0]
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
        data.update(plan.to_json())
        data["skipped"] = sources.skipped_json()
        print_json(data)
        return
    out = console(min_width=132)
    out.print(_table(sim, sources.origin, plan.priced_as()))
    for line in over:
        out.print(f"[bold red]* {escape(line)}[/]")
    assumed = figures_line(spec)
    if assumed is not None:
        out.print(assumed, markup=False, highlight=False)
    if sim.output_cost is not None:
        at = f"{spec.name} prices" if len(plan.priced_calls) < 2 else "each call's model's prices"
        out.print(f"Output (the same under every policy): ${sim.output_cost:.2f} at {at}.")
    records = skipped_records_line(s.skipped_records for s in sim.sessions)
    for line in [*sources.skipped_lines(), *([records] if records else [])]:
        out.print(line, markup=False, highlight=False)
    if export_views is not None:
        out.print(f"Requests written under {export_views}/<policy>/<session>.jsonl")
    if report is not None:
        out.print(
            f"Report: {report}" + (" (overwrote the report that was there)" if overwrote else "")
        )


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
