"""``ctxbudget simulate`` over every session in ../shared/traces, against the issue-15 goals.

Each session is imported (``ctxbudget.traces``) and replayed call by call through the
baselines, ctxbudget's default policy and its named alternatives, each priced on two price
sheets: an Anthropic model (claude-sonnet-4-5: explicit breakpoints, 5-minute writes at
1.25x, reads at 0.1x) and an OpenAI model (gpt-5 by default: automatic prefix caching,
reads at 0.1x, no write premium). Input cost = uncached input + cache reads + cache
writes + the recall calls a policy needs (after a call whose view had lost references the
agent then used, one more call: the request again plus the lost items read back); output
is the same for every policy in a replay and printed apart. Token counts are estimates
for Claude (the same estimate for every policy) and exact for OpenAI.

Goals for the default policy, in total over the long sessions (20+ calls), on both price
sheets: input cost <= 0.60x none and <= 0.09x none-nocache (recalls included); reference
retention >= 97% and line retention >= 95%; no session costlier than none; sum of peaks
<= 0.5x none's; on the demo session, retention >= 90%.
Run: ``python bench/bench_simulate.py [--quick] [--anthropic NAME] [--openai NAME]
[--json PATH] [--demo-only]`` (``--json`` writes the figures for ``bench/figures.py``; they
are deterministic; the demo session's are recorded apart with ``--demo-only``, since they
move with any change of the package's sources, and ``demo_figures()`` recomputes them for
``tests/test_figures.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.cli._sources import demo_as_session
from ctxbudget.simulate import BASELINE_POLICIES, OWN_POLICY, Simulation, simulate_session
from ctxbudget.traces import load_sessions
from ctxbudget.traces.session import Session

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
LONG = 20
"""Model calls from which a session counts as long."""
POLICIES = (*BASELINE_POLICIES, OWN_POLICY, "ctxbudget:agent", "ctxbudget:digest-lean")
"""The baselines, the default, the default before issue 15, and digests plus shortening."""


def _sessions(quick: bool) -> list[Session]:
    out: list[Session] = []
    for folder in sorted(p for p in TRACES.iterdir() if p.is_dir()):
        found = [s for s in load_sessions(folder) if len(s.calls) >= 2]
        out.extend(found[:2] if quick else found)
    return out


def _goal(label: str, value: float | None, limit: float, *, at_most: bool = True) -> str:
    if value is None:
        return f"  {label}: n/a"
    met = value <= limit if at_most else value >= limit
    sign = "<=" if at_most else ">="
    return f"  {label}: {value:.3f} (goal {sign} {limit}) {'reached' if met else 'NOT reached'}"


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.2%}"


def _report(sim: Simulation, title: str, elapsed: float) -> None:
    totals = sim.totals()
    calls = sum(s.calls for s in sim.sessions)
    unit = "tokens" if sim.exact else "tokens (estimate)"
    print(f"\n{title}: {len(sim.sessions)} sessions, {calls} calls ({elapsed:.1f} s)")
    print(
        f"{'policy':<22}{'input $':>9}{'vs none':>9}{'vs nocache':>11}{'cached':>8}"
        f"{'retention':>10}{'line ret.':>10}{'peak sum':>11}{'recalls':>8}{'recall $':>9}"
        f"{'compact.':>9}{'> none':>7}   [{unit}]"
    )
    for name, t in totals.items():
        print(
            f"{name:<22}{float(t.input_cost or 0):>9.2f}"
            f"{sim.ratio(name, 'none') or 0:>8.3f}x{sim.ratio(name, 'none-nocache') or 0:>10.3f}x"
            f"{t.cached_share:>8.0%}{_pct(t.retention.share):>10}{_pct(t.retention.line_share):>10}"
            f"{t.peak_sum:>11,}{t.recalls:>8}{float(t.recall_cost):>9.2f}"
            f"{t.compactions:>9}{t.worse_than_none:>7}"
        )
    if sim.output_cost is not None:
        print(f"output (equal for every policy): ${sim.output_cost:.2f}")


def _totals(sim: Simulation) -> dict[str, Any]:
    """Each policy's totals over ``sim``'s sessions, for ``--json``."""
    out: dict[str, Any] = {
        "sessions": len(sim.sessions),
        "calls": sum(s.calls for s in sim.sessions),
    }
    totals = sim.totals()
    none_peak = max(totals["none"].peak_sum, 1)
    for name, t in totals.items():
        out[name] = {
            "cost": round(float(t.input_cost or 0), 6),
            "vs_none": _round(sim.ratio(name, "none")),
            "vs_nocache": _round(sim.ratio(name, "none-nocache")),
            "retention": _round(t.retention.share),
            "line_retention": _round(t.retention.line_share),
            "peak_vs_none": round(t.peak_sum / none_peak, 6),
            "recalls": t.recalls,
            "recall_cost": round(float(t.recall_cost), 6),
            "worse_than_none": t.worse_than_none,
        }
    return out


def _round(value: float | Decimal | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _run(sessions: list[Session], spec: ModelSpec, quick: bool) -> dict[str, Any]:
    exact = spec.provider == "openai"
    sim = Simulation(model=spec.name, provider=spec.provider, exact=exact, policies=POLICIES)
    started = time.perf_counter()
    for session in sessions:
        sim.sessions.append(simulate_session(session, POLICIES, spec))
    elapsed = time.perf_counter() - started
    _report(sim, f"all sessions, priced as {spec.name}", elapsed)
    long = Simulation(
        model=sim.model,
        provider=sim.provider,
        exact=sim.exact,
        policies=sim.policies,
        sessions=[s for s in sim.sessions if s.calls >= LONG],
    )
    _report(long, f"long sessions ({LONG}+ calls), priced as {spec.name}", elapsed)
    totals = long.totals()
    own, none = totals[OWN_POLICY], totals["none"]
    print(f"\ngoals for {OWN_POLICY} (long sessions, {spec.name}):")
    print(_goal("input cost vs none-nocache", long.ratio(OWN_POLICY, "none-nocache"), 0.09))
    print(_goal("input cost vs none", long.ratio(OWN_POLICY, "none"), 0.60))
    print(f"  sessions costlier than none: {own.worse_than_none} (goal 0)")
    print(_goal("retention", own.retention.share, 0.97, at_most=False))
    print(_goal("line retention", own.retention.line_share, 0.95, at_most=False))
    print(_goal("peak vs none (sum of peaks)", own.peak_sum / max(none.peak_sum, 1), 0.5))
    by_format: dict[str, dict[str, Decimal]] = {}
    for s in long.sessions:
        row = by_format.setdefault(s.format, {"none": Decimal(0), OWN_POLICY: Decimal(0)})
        for name in row:
            row[name] += s.runs[name].input_cost or Decimal(0)
    print(f"per format (long sessions), input $ {OWN_POLICY} / none:")
    for fmt, row in sorted(by_format.items()):
        ratio = row[OWN_POLICY] / (row["none"] or Decimal(1))
        print(
            f"  {fmt:<16} none {row['none']:>8.2f}  "
            f"{OWN_POLICY} {row[OWN_POLICY]:>8.2f}  {ratio:.2f}x"
        )
    worse = [
        (s.name, float((s.runs[OWN_POLICY].input_cost or 0) / (s.runs["none"].input_cost or 1)))
        for s in long.sessions
        if (s.runs[OWN_POLICY].input_cost or 0) > (s.runs["none"].input_cost or 0)
    ]
    for name, ratio in sorted(worse, key=lambda w: -w[1])[: 5 if quick else 10]:
        print(f"  costlier than none: {name} ({ratio:.3f}x)")
    return {
        "model": spec.name,
        "all": _totals(sim),
        "long": _totals(long),
        "formats": {
            fmt: round(float(row[OWN_POLICY] / (row["none"] or Decimal(1))), 6)
            for fmt, row in sorted(by_format.items())
        },
    }


DEMO_POLICIES = ("none", OWN_POLICY, "ctxbudget:agent")


def demo_figures(spec: ModelSpec | None = None) -> dict[str, Any]:
    """The demo session's figures (deterministic for a given source tree), per policy."""
    spec = spec or resolve_model("claude-sonnet-4-5")
    result = simulate_session(demo_as_session(), DEMO_POLICIES, spec)
    none_cost = result.runs["none"].input_cost or Decimal(1)
    return {
        "model": spec.name,
        "calls": result.calls,
        "window": spec.context_window,
        **{
            name: {
                "cost": round(float(run.input_cost or 0), 6),
                "vs_none": round(float((run.input_cost or 0) / none_cost), 6),
                "retention": _round(run.retention.share),
                "line_retention": _round(run.retention.line_share),
                "peak": run.peak,
                "recalls": run.recalls,
            }
            for name, run in result.runs.items()
        },
    }


def _demo(spec: ModelSpec) -> dict[str, Any]:
    started = time.perf_counter()
    figures = demo_figures(spec)
    elapsed = time.perf_counter() - started
    print(f"\ndemo session ({figures['calls']} calls, {spec.name}, {elapsed:.1f} s):")
    for name in DEMO_POLICIES:
        run = figures[name]
        print(
            f"  {name:<18} input ${run['cost']:.2f} ({run['vs_none']:.3f}x none), retention "
            f"{_pct(run['retention'])}, line retention {_pct(run['line_retention'])}, "
            f"peak {run['peak']:,}, recalls {run['recalls']}"
        )
    print(_goal("demo retention", figures[OWN_POLICY]["retention"], 0.90, at_most=False))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 sessions per trace folder")
    parser.add_argument("--anthropic", default="claude-sonnet-4-5", help="Anthropic price sheet")
    parser.add_argument("--openai", default="gpt-5", help="OpenAI price sheet")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--demo-only", action="store_true", help="only the demo session")
    args = parser.parse_args()
    if args.demo_only:  # no traces needed
        demo = _demo(resolve_model(args.anthropic))
        if args.json is not None:
            args.json.write_text(json.dumps({"exact": demo}, indent=1) + "\n", encoding="utf-8")
        return
    if not TRACES.is_dir():
        print("no traces: ../shared/traces is absent; nothing to measure")
        return
    started = time.perf_counter()
    sessions = _sessions(args.quick)
    print(f"imported {len(sessions)} sessions in {time.perf_counter() - started:.1f} s")
    sheets = [
        _run(sessions, resolve_model(name), args.quick) for name in (args.anthropic, args.openai)
    ]
    _demo(resolve_model(args.anthropic))  # recorded apart: --demo-only
    if args.json is not None:
        figures = {"exact": {"sheets": sheets}}
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
