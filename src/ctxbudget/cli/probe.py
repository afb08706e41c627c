"""``ctxbudget probe``: does each policy's context still answer what the session needs?"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ctxbudget.analyze.composition import composition_per_call
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.cli import app
from ctxbudget.cli._output import console, notice, output_file, print_json
from ctxbudget.cli._sources import resolve_sources, steps
from ctxbudget.errors import UnknownModelError, UsageError
from ctxbudget.probe import (
    AGE_BUCKETS,
    KINDS,
    ModelReader,
    OfflineReader,
    PolicyScore,
    Probe,
    ProbeRun,
    generate_probes,
    probe_session,
    views_at,
)
from ctxbudget.probe.readers import ANSWER_TOKENS, INSTRUCTION, Reader
from ctxbudget.report.data import simulation_report, with_probe_accuracy
from ctxbudget.report.html import write_html
from ctxbudget.simulate import Simulation, check_policies, simulate_session
from ctxbudget.simulate.policies import wire_format
from ctxbudget.traces.session import Session

__all__ = ["probe"]

DEFAULT_POLICIES = "none,mask-last-10,ctxbudget"
FALLBACK_MODEL = "gpt-4.1"
"""What a session is replayed as when neither --model nor its log names a known model."""
ASSUMED_WINDOW, ASSUMED_OUTPUT = 128_000, 4_096
"""Limits assumed for a --model no registry knows, served at --base-url (said in a notice)."""


@app.command()
def probe(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Agent log files or folders (default: your logs, else the demo)."),
    ] = None,
    policy: Annotated[
        str, typer.Option(help="Policies to probe, comma-separated (as for simulate).")
    ] = DEFAULT_POLICIES,
    model: Annotated[
        str | None,
        typer.Option(
            help="Ask this model (OpenAI or Anthropic SDK, key from OPENAI_API_KEY / "
            "ANTHROPIC_API_KEY); default: the offline stand-in reader, no calls."
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="An OpenAI-compatible endpoint serving --model.")
    ] = None,
    probes_per_session: Annotated[
        int, typer.Option(help="Probes per session, over the later half of its calls.")
    ] = 8,
    limit: Annotated[int | None, typer.Option(help="At most this many sessions.")] = None,
    min_calls: Annotated[int, typer.Option(help="Skip sessions with fewer model calls.")] = 4,
    demo: Annotated[bool, typer.Option("--demo", help="Use the built-in demo session.")] = False,
    max_cost: Annotated[
        float, typer.Option(help="Ask for --yes above this estimated cost in USD.")
    ] = 1.0,
    yes: Annotated[bool, typer.Option("--yes", help="Spend above --max-cost.")] = False,
    html: Annotated[
        Path | None,
        typer.Option(help="Write simulate's HTML report, with probe accuracy by retention."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Ask questions whose answers the session holds (a value a tool printed and the agent
    used, where a function is defined, the exact error line, a decision it stated) under
    each policy's exact request at that call; accuracy by kind and age, and the cost."""
    policies = check_policies(policy.split(","))
    if probes_per_session < 1:
        raise UsageError(f"--probes-per-session must be at least 1, got {probes_per_session}")
    if base_url is not None and model is None:
        raise UsageError("--base-url needs --model (the model that endpoint serves)")
    fixed = _model_spec(model, base_url) if model is not None else None
    if html is not None:
        output_file(html, "--html")
    sources = resolve_sources(paths or [], limit=limit, demo=demo, min_calls=max(min_calls, 2))
    plan = [
        _Planned(s, _replay_as(s, fixed), generate_probes(s, probes_per_session))
        for s in sources.sessions
    ]
    reader: Reader = OfflineReader()
    prices = None
    if fixed is not None and model is not None:
        _confirm(plan, policies, fixed, max_cost=Decimal(str(max_cost)), yes=yes)
        reader, prices = ModelReader(_client(fixed, base_url), model), fixed.prices
    run = ProbeRun(policies=policies, reader=reader.label)
    total = sum(len(p.probes) for p in plan) * len(policies)
    with steps(total, "probing") as advance:
        for p in plan:

            def step(name: str = p.session.name) -> None:
                advance(name)

            run.outcomes += probe_session(
                p.session,
                policies,
                p.spec,
                reader,
                counter_for(p.spec),
                probes=p.probes,
                on_view=step,
            )
    scores = run.scores(prices)
    if html is not None:
        _write_report(html, plan, policies, run.reader, scores, sources.origin)
    if as_json:
        print_json(
            {
                "reader": run.reader,
                "source": sources.origin,
                "sessions": [p.session.name for p in plan],
                "replayed_as": sorted({p.spec.name for p in plan}),
                "policies": list(policies),
                "probes": sum(len(p.probes) for p in plan),
                "scores": {name: s.to_json() for name, s in scores.items()},
                "outcomes": [o.to_json() for o in run.outcomes],
                "report": str(html) if html is not None else None,
            }
        )
        return
    out = console(min_width=170)
    out.print(_table(run, scores, plan, sources.origin))
    if isinstance(reader, OfflineReader):
        out.print(
            "The offline stand-in reader answers when the line holding the answer is in the "
            "request's text: what each policy kept, not what a model makes of it.",
            markup=False,
            highlight=False,
        )


@dataclass(frozen=True, slots=True)
class _Planned:
    session: Session
    spec: ModelSpec
    probes: list[Probe]


def _model_spec(model: str, base_url: str | None) -> ModelSpec:
    try:
        spec = resolve_model(model)
    except UnknownModelError:
        if base_url is None:
            raise
        notice(
            f"{model} is not in the model registry: assuming a {ASSUMED_WINDOW:,}-token window "
            "and OpenAI chat requests, unpriced"
        )
        spec = resolve_model(
            model,
            provider="openai",
            context_window=ASSUMED_WINDOW,
            max_output_tokens=ASSUMED_OUTPUT,
        )
    if base_url is not None and wire_format(spec) != "openai_chat":
        raise UsageError(
            f"--base-url speaks OpenAI chat completions, but {model} is an Anthropic model; "
            "drop --base-url to use the Anthropic API"
        )
    return spec


def _replay_as(session: Session, fixed: ModelSpec | None) -> ModelSpec:
    if fixed is not None:
        return fixed
    if session.model is not None:
        try:
            return resolve_model(session.model)
        except UnknownModelError:
            pass
    return resolve_model(FALLBACK_MODEL)


def _confirm(
    plan: list[_Planned],
    policies: tuple[str, ...],
    spec: ModelSpec,
    *,
    max_cost: Decimal,
    yes: bool,
) -> None:
    """Say on stderr how many calls probing makes and what they cost, before any; refuse
    above ``max_cost`` (or when the price is unknown) without ``yes``."""
    counter = counter_for(spec)
    calls, tokens = 0, 0
    for p in plan:
        if not p.probes:
            continue
        views = views_at(p.session, policies, spec, {q.call for q in p.probes}, counter)
        for name in policies:
            for q in p.probes:
                calls += 1
                tokens += views[name][q.call].tokens
                tokens += counter.count_text(f"{INSTRUCTION}\n\n{q.question}").tokens
    prices = spec.prices
    cost = None
    if prices is not None and prices.input is not None and prices.output is not None:
        million = Decimal(1_000_000)
        cost = (tokens * prices.input + calls * ANSWER_TOKENS * prices.output) / million
    said = "unknown (no prices for this model)" if cost is None else f"about ${cost:.2f}"
    notice(
        f"probing asks {spec.name} {calls} time(s), {tokens:,} input tokens in all "
        f"(estimate); cost {said}"
    )
    if not yes and (cost is None or cost > max_cost):
        raise UsageError(
            f"probing would cost {said}, over --max-cost ${max_cost}; pass --yes to spend it"
        )


def _client(spec: ModelSpec, base_url: str | None) -> Any:
    """The SDK client for the reader (keys from the environment, as the SDKs read them)."""
    if wire_format(spec) == "anthropic":
        try:
            import anthropic
        except ImportError as exc:
            raise UsageError("asking an Anthropic model needs: pip install anthropic") from exc
        if not os.environ.get("ANTHROPIC_API_KEY"):
            raise UsageError("set ANTHROPIC_API_KEY to ask an Anthropic model")
        return anthropic.Anthropic(max_retries=2)
    try:
        import openai
    except ImportError as exc:
        raise UsageError("asking a model needs: pip install openai") from exc
    if not os.environ.get("OPENAI_API_KEY"):
        raise UsageError("set OPENAI_API_KEY (any value for a local endpoint) to ask a model")
    return openai.OpenAI(base_url=base_url, max_retries=2)


def _write_report(
    path: Path,
    plan: list[_Planned],
    policies: tuple[str, ...],
    reader: str,
    scores: dict[str, PolicyScore],
    origin: str,
) -> None:
    """Simulate's HTML report of the probed sessions, each replayed as it was probed, with
    each policy's probe accuracy and the reader's label next to retention."""
    specs = [p.spec for p in plan] or [resolve_model(FALLBACK_MODEL)]
    windows = {s.context_window for s in specs}
    sim = Simulation(
        model=", ".join(sorted({s.name for s in specs})),
        provider=", ".join(sorted({s.provider for s in specs})),
        exact=all(counter_for(s).tokenizer.exact for s in specs),
        policies=policies,
        context_window=windows.pop() if len(windows) == 1 else None,
    )
    compositions = {}
    for p in plan:
        counter = counter_for(p.spec)
        sim.sessions.append(simulate_session(p.session, policies, p.spec, counter=counter))
        compositions[p.session.name] = composition_per_call(p.session, counter)[0]
    title = f"ctxbudget probe · {len(plan)} session(s) from {origin} · reader: {reader}"
    data = simulation_report(sim, compositions, title)
    accuracy = {name: s.accuracy for name, s in scores.items()}
    write_html(with_probe_accuracy(data, reader, accuracy), path)


def _table(
    run: ProbeRun, scores: dict[str, PolicyScore], plan: list[_Planned], origin: str
) -> Table:
    probes = sum(len(p.probes) for p in plan)
    table = Table(
        title=f"{probes} probe(s) in {len(plan)} session(s) from {origin} · reader: {run.reader}"
        " · accuracy overall, by kind, by age in calls",
        title_justify="left",
    )
    headers = ["policy", "accuracy", *KINDS, *(f"age {b}" for b, _, _ in AGE_BUCKETS)]
    headers += ["calls", "input tokens", "cost $"]
    for header in headers:
        table.add_column(header, justify="left" if header == "policy" else "right")
    for name, s in scores.items():
        acc = s.accuracy
        row = [name, "n/a" if acc is None else f"{acc:.0%} ({s.overall.correct}/{s.overall.total})"]
        row += [_cell(s.kinds[k].correct, s.kinds[k].total) for k in KINDS]
        row += [_cell(s.ages[b].correct, s.ages[b].total) for b, _, _ in AGE_BUCKETS]
        row += [str(s.calls), f"{s.input_tokens:,}", "n/a" if s.cost is None else f"{s.cost:.2f}"]
        table.add_row(*row)
    return table


def _cell(correct: int, total: int) -> str:
    return "-" if total == 0 else f"{correct}/{total}"
