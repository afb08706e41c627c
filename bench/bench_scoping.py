"""Tool scoping on real tau-bench sessions: schema tokens and input dollars per mode.

The tau-bench airline run in ../shared/traces (gpt-4o, 200 sessions, a long system policy
and 14 tools) is replayed call by call through ContextManager three ways:

* ``full``: every schema on every call (no scoping);
* ``remove``: only the current phase's schemas (ToolScope mode ``remove``: a change of the
  set rewrites the cached prefix; shrinks are held while they would not pay);
* ``cache_stable``: every schema, the phase enforced with ``tool_choice`` ``allowed_tools``
  (OpenAI) or deferred loading + tool search (Anthropic), prefix untouched.

The phase follows a keyword router over the simulated user's messages (rules below; when no
rule fires the phase stays). Each call is priced with the provider's cache rules (one call
every 30 s). Coverage: of the tool calls the agent really made, the share whose tool the
phase offered at that call (what scoping would have denied it is the rest).

The trace holds no tool schemas: by default they are inferred at run time from the calls in
the trace (tool names, argument names and JSON types; no descriptions), which understates
the real schemas' size, so schema savings here are a lower bound. ``--tools FILE`` uses a
real OpenAI ``tools`` list instead. Anthropic figures use the same OpenAI-format schemas.
Nothing from the traces is written anywhere. Run: ``python bench/bench_scoping.py [--quick]
[--json PATH]`` (``--json`` writes the figures, deterministic, for ``bench/figures.py``).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ctxbudget.cache import CacheBustWarning
from ctxbudget.manager import ContextManager
from ctxbudget.routing import KeywordRouter, Rule
from ctxbudget.scoping import ScopeMode, ToolRegistry, ToolScope, read_tool_specs
from ctxbudget.session.items import Item, ToolSpec, item_text
from ctxbudget.traces import Session, load_sessions

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "tau-bench-openai-chat"
STEP_SECONDS = 30.0
MODES = ("full", "remove", "cache_stable")
MODELS = (("gpt-4o", "openai"), ("claude-sonnet-4-5", "anthropic"))

GROUPS = {
    "core": ["think", "calculate", "transfer_to_human_agents", "get_user_details",
             "get_reservation_details", "list_all_airports"],
    "search": ["search_direct_flight", "search_onestop_flight"],
    "book": ["book_reservation"],
    "modify": ["update_reservation_flights", "update_reservation_baggages",
               "update_reservation_passengers", "cancel_reservation", "send_certificate"],
}  # fmt: skip
PHASES = {
    "lookup": [],
    "book": ["search", "book"],
    "change": ["search", "modify"],
    "cancel": ["modify"],
    "all": ["search", "book", "modify"],
}
RULES = [
    Rule(name="cancel", keywords=("cancel", "refund"), tool_groups=("modify",)),
    Rule(
        name="book",
        keywords=("book", "reserve", "new reservation", "one way", "round trip", "one-way"),
        tool_groups=("search", "book"),
    ),
    Rule(
        name="change",
        keywords=("change", "modify", "upgrade", "downgrade", "switch", "move", "earlier",
                  "later", "baggage", "bags", "bag", "passenger", "name", "cabin", "economy",
                  "business"),
        tool_groups=("search", "modify"),
    ),
    Rule(
        name="compensation",
        keywords=("certificate", "compensation", "delayed", "delay", "cancelled", "voucher"),
        tool_groups=("modify",),
    ),
]  # fmt: skip


@dataclass
class Totals:
    """One mode's figures summed over the sessions replayed."""

    calls: int = 0
    tool_tokens: int = 0
    loaded_tool_tokens: int = 0
    input_tokens: int = 0
    cost: Decimal = Decimal(0)
    rewrites: int = 0
    rewrite_cost: Decimal = Decimal(0)
    held: int = 0
    busts: int = 0
    covered: int = 0
    tool_calls: int = 0


def infer_tools(sessions: Sequence[Session]) -> list[ToolSpec]:
    """Schemas from the calls: each tool's argument names with the JSON types seen."""
    props: dict[str, dict[str, set[str]]] = defaultdict(dict)
    seen: dict[str, int] = defaultdict(int)
    always: dict[str, set[str]] = {}
    for session in sessions:
        for item in session.items:
            for call in item.tool_calls:
                args = call.parsed_arguments()
                args = args if isinstance(args, dict) else {}
                seen[call.name] += 1
                for key, value in args.items():
                    props[call.name].setdefault(key, set()).add(_json_type(value))
                keys = set(args)
                always[call.name] = always.get(call.name, keys) & keys
    tools = []
    for name in sorted(seen):
        properties = {
            key: {"type": sorted(types)[0] if len(types) == 1 else sorted(types)}
            for key, types in sorted(props[name].items())
        }
        schema = {"type": "object", "properties": properties, "required": sorted(always[name])}
        tools.append({"type": "function", "function": {"name": name, "parameters": schema}})
    return read_tool_specs(tools)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else "string"


def registry_for(tools: Sequence[ToolSpec]) -> ToolRegistry:
    names = {t.name for t in tools}
    groups = {g: [t for t in members if t in names] for g, members in GROUPS.items()}
    grouped = {t for members in groups.values() for t in members}
    groups["core"] += sorted(names - grouped)  # tools this plan does not know: always offered
    return ToolRegistry.build(tools, groups=groups, phases=PHASES, always=["core"])


def replay(
    session: Session, tools: Sequence[ToolSpec], model: str, provider: str, mode: str
) -> Totals:
    clock = [0.0]
    mgr = ContextManager(model, clock=lambda: clock[0], policy="agent")
    scope = None
    if mode in ("remove", "cache_stable"):
        scoped: ScopeMode = "remove" if mode == "remove" else "cache_stable"
        scope = ToolScope(registry_for(tools), mode=scoped, phase="lookup")
    router = KeywordRouter(RULES)
    if scope is None:
        mgr.set_tools(list(tools))
    totals, done = Totals(), 0
    items = list(session.items)
    for position, item in enumerate(items):
        if item.role != "assistant":
            continue
        fresh = items[done:position]
        if fresh:
            mgr.extend(fresh)
        done = position
        if scope is not None:
            _route(scope, router, fresh)
        clock[0] += STEP_SECONDS
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CacheBustWarning)
            if scope is None:
                mgr.prepare(provider)  # type: ignore[arg-type]
                tokens = loaded = mgr.accountant.counter.count_tools(list(tools)).tokens
                allowed = {t.name for t in tools}
            else:
                _, report = scope.prepare(mgr, provider, now=None)
                tokens, loaded = report.tool_tokens.tokens, report.loaded_tool_tokens.tokens
                allowed = set(report.allowed)
                change = report.change
                if change is not None and change.applied and change.rewrite_tokens:
                    totals.rewrites += 1
                    totals.rewrite_cost += change.rewrite_cost or Decimal(0)
                elif change is not None and "held" in change.reason:
                    totals.held += 1
        prepared = mgr.last_report
        assert prepared is not None
        assert prepared.predicted is not None
        totals.calls += 1
        totals.tool_tokens += tokens
        totals.loaded_tool_tokens += loaded
        totals.input_tokens += prepared.predicted.input_tokens
        totals.cost += prepared.predicted_cost.input if prepared.predicted_cost else Decimal(0)
        for call in item.tool_calls:
            totals.tool_calls += 1
            totals.covered += call.name in allowed
    totals.busts = mgr.cache.busts
    return totals


def _route(scope: ToolScope, router: KeywordRouter, fresh: Sequence[Item]) -> None:
    """Follow the router over new user messages; no rule fired: the phase stays."""
    for item in fresh:
        if item.role != "user" or item.tool_results:
            continue
        decision = router.route(item_text(item))
        if decision.method == "rules":
            scope.follow(decision)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 sessions, OpenAI only")
    parser.add_argument("--tools", type=Path, help="a real OpenAI tools JSON list to use")
    parser.add_argument("--sessions", type=int, default=None, help="how many sessions")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not TRACES.is_dir():
        print(f"skipped: {TRACES} is absent (real tau-bench traces needed)")
        return 0
    sessions = load_sessions(TRACES)
    limit = args.sessions or (20 if args.quick else len(sessions))
    sessions = sorted(sessions, key=lambda s: -len(s.calls))[:limit]
    if args.tools is not None:
        tools = read_tool_specs(json.loads(args.tools.read_text(encoding="utf-8")))
        source = f"schemas from {args.tools}"
    else:
        tools = infer_tools(load_sessions(TRACES))
        source = "schemas inferred from the trace's calls (no descriptions): a lower bound"
    models = MODELS[:1] if args.quick else MODELS
    figures: dict[str, Any] = {"sessions": len(sessions), "tools": len(tools), "models": {}}
    print(
        f"tau-bench airline: {len(sessions)} sessions (longest first), {len(tools)} tools; {source}"
    )
    for model, provider in models:
        started = time.perf_counter()
        results = {mode: Totals() for mode in MODES}
        for session in sessions:
            for mode in MODES:
                _add(results[mode], replay(session, tools, model, provider, mode))
        print(f"\n{model} ({provider}), {results['full'].calls} calls, "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        _print(results, provider)
        figures["models"][model] = {
            mode: {
                name: float(value) if isinstance(value, Decimal) else value
                for name, value in vars(t).items()
            }
            for mode, t in results.items()
        }
    if args.json is not None:
        args.json.write_text(json.dumps({"exact": figures}, indent=1) + "\n", encoding="utf-8")
    return 0


def _add(into: Totals, more: Totals) -> None:
    for name in vars(into):
        setattr(into, name, getattr(into, name) + getattr(more, name))


def _print(results: dict[str, Totals], provider: str) -> None:
    base = results["full"]
    header = (
        f"{'mode':<13} {'schema tok':>11} {'loaded tok':>11} {'input tok':>11} "
        f"{'input $':>9} {'vs full':>8} {'rewrites':>8} {'held':>5} {'rewrite $':>9} "
        f"{'busts':>5} {'coverage':>8}"
    )
    print(header)
    for mode, t in results.items():
        delta = (t.cost - base.cost) / base.cost if base.cost else Decimal(0)
        coverage = t.covered / t.tool_calls if t.tool_calls else 1.0
        print(
            f"{mode:<13} {t.tool_tokens:>11,} {t.loaded_tool_tokens:>11,} {t.input_tokens:>11,} "
            f"{t.cost:>9.4f} {delta:>+8.2%} {t.rewrites:>8} {t.held:>5} {t.rewrite_cost:>9.4f} "
            f"{t.busts:>5} {coverage:>8.1%}"
        )
    note = (
        "loaded tok: schemas the model loads up front (Anthropic deferred tools excluded)"
        if provider == "anthropic"
        else "cache_stable sends every schema; allowed_tools narrows the choice"
    )
    print(f"(tool-schema counts are estimates; {note})")


if __name__ == "__main__":
    raise SystemExit(main())
