"""``ctxbudget simulate`` over every session in ../shared/traces, against the issue-5 goals.

Each session is imported (``ctxbudget.traces``), replayed call by call through the
baselines and ctxbudget's default policy, rendered for one Anthropic model
(claude-sonnet-4-5: its prices and cache rules: breakpoints, 5-minute writes at 1.25x,
reads at 0.1x) and priced. Input cost = uncached input + cache reads + cache writes
(+ summarizer calls: the default policy makes none); output is the same for every policy
in a replay and printed apart. Token counts for Claude are estimates (the same estimate
for every policy).

Goals for the default policy, in total over the long sessions (20+ calls): input cost
<= 0.10x none-nocache and <= 0.65x none; never costlier than none on any session;
retention >= 97%; peak context <= half of none's (each session's peak, summed).
Run: ``python bench/bench_simulate.py [--quick] [--model NAME]``.
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal
from pathlib import Path

from ctxbudget.budget.models import resolve_model
from ctxbudget.simulate import DEFAULT_POLICIES, OWN_POLICY, Simulation, simulate_session
from ctxbudget.traces import load_sessions
from ctxbudget.traces.session import Session

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
LONG = 20
"""Model calls from which a session counts as long."""


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


def _report(sim: Simulation, title: str, elapsed: float) -> None:
    totals = sim.totals()
    calls = sum(s.calls for s in sim.sessions)
    unit = "tokens" if sim.exact else "tokens (estimate)"
    print(f"\n{title}: {len(sim.sessions)} sessions, {calls} calls ({elapsed:.1f} s)")
    print(
        f"{'policy':<16}{'input $':>10}{'vs none':>9}{'vs nocache':>11}{'cached':>8}"
        f"{'retention':>10}{'peak sum':>12}{'compactions':>12}{'> none':>7}   [{unit}]"
    )
    for name, t in totals.items():
        share = t.retention.share
        print(
            f"{name:<16}{float(t.input_cost or 0):>10.2f}"
            f"{sim.ratio(name, 'none') or 0:>8.3f}x{sim.ratio(name, 'none-nocache') or 0:>10.3f}x"
            f"{t.cached_share:>8.0%}{(share if share is not None else 1.0):>10.2%}"
            f"{t.peak_sum:>12,}{t.compactions:>12}{t.worse_than_none:>7}"
        )
    if sim.output_cost is not None:
        print(f"output (equal for every policy): ${sim.output_cost:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 sessions per trace folder")
    parser.add_argument("--model", default="claude-sonnet-4-5")
    args = parser.parse_args()
    if not TRACES.is_dir():
        print("no traces: ../shared/traces is absent; nothing to measure")
        return
    spec = resolve_model(args.model)
    started = time.perf_counter()
    sessions = _sessions(args.quick)
    print(f"imported {len(sessions)} sessions in {time.perf_counter() - started:.1f} s")
    sim = Simulation(
        model=spec.name, provider=spec.provider, exact=False, policies=DEFAULT_POLICIES
    )
    started = time.perf_counter()
    for session in sessions:
        sim.sessions.append(simulate_session(session, DEFAULT_POLICIES, spec))
    elapsed = time.perf_counter() - started
    _report(sim, f"all sessions, priced as {spec.name}", elapsed)
    long = Simulation(
        model=sim.model,
        provider=sim.provider,
        exact=sim.exact,
        policies=sim.policies,
        sessions=[s for s in sim.sessions if s.calls >= LONG],
    )
    _report(long, f"long sessions ({LONG}+ calls)", elapsed)
    totals = long.totals()
    own, none = totals[OWN_POLICY], totals["none"]
    print(f"\ngoals for {OWN_POLICY} (long sessions):")
    print(_goal("input cost vs none-nocache", long.ratio(OWN_POLICY, "none-nocache"), 0.10))
    print(_goal("input cost vs none", long.ratio(OWN_POLICY, "none"), 0.65))
    print(f"  sessions costlier than none: {own.worse_than_none} (goal 0)")
    print(_goal("retention", own.retention.share, 0.97, at_most=False))
    print(_goal("peak vs none (sum of peaks)", own.peak_sum / max(none.peak_sum, 1), 0.5))
    by_format: dict[str, dict[str, Decimal]] = {}
    for s in long.sessions:
        row = by_format.setdefault(s.format, {"none": Decimal(0), OWN_POLICY: Decimal(0)})
        for name in row:
            row[name] += s.runs[name].input_cost or Decimal(0)
    print("per format (long sessions), input $ ctxbudget / none:")
    for fmt, row in sorted(by_format.items()):
        ratio = row[OWN_POLICY] / (row["none"] or Decimal(1))
        print(
            f"  {fmt:<16} none {row['none']:>8.2f}  "
            f"{OWN_POLICY} {row[OWN_POLICY]:>8.2f}  {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
