"""Prompt-cache economics: replay real agent sessions through four context policies.

Every session in ../shared/traces is replayed call by call (each assistant message is one
model call; its request is the history before it). For each policy the request the model
would have seen is rendered for the provider and priced with the provider's cache rules
(OpenAI: automatic prefix caching from 1,024 tokens in 128-token steps; Anthropic: the
best breakpoints the rules allow: rolling end, previous end, stable prefix) at one call
every 30 s, so entries never expire mid-session. Policies:

* ``none-nocache``: the full history, no cache;
* ``none``: the full history, cached;
* ``mask-last-10``: observation masking of all but the last 10 turns, every call;
* ``ctxbudget``: the default ContextManager (the default policy, ``digest``).

Input cost is uncached input + cache reads + cache writes (what context management
controls; output is the same for every policy in a replay). Retention: of the references
the agent's output at a call reuses from earlier observations, the share still in view
(``ctxbudget.simulate.retention``). Token counts are the models' (o200k exact for OpenAI; an
estimate for Anthropic, the same estimate for every policy).

Goals (issue 4): ctxbudget never costs more than ``none`` on any session; its input cost
is at least 35% below ``none`` in total; retention >= 97%.
Run: ``python bench/bench_cache_economics.py [--quick] [--json PATH]`` (``--json`` writes
the figures for ``bench/figures.py``; they are deterministic).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ctxbudget.billing.cost import price
from ctxbudget.billing.usage import Usage
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.cache import CacheBustWarning
from ctxbudget.cache.rules import CacheRules, cache_rules
from ctxbudget.cache.session import SessionCache
from ctxbudget.convert.request import Format
from ctxbudget.errors import CtxBudgetError
from ctxbudget.manager import ContextManager
from ctxbudget.render import AnthropicRenderer, OpenAIChatRenderer
from ctxbudget.session.items import Item
from ctxbudget.simulate.baselines import full_history, mask_observations
from ctxbudget.simulate.retention import RetentionTotals, RetentionTracker, task_length
from ctxbudget.tokens.counter import TokenCounter
from ctxbudget.traces import Session, load_sessions

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"

MODELS = (("claude-sonnet-4-5", "anthropic"), ("gpt-4.1", "openai"))
POLICIES = ("none-nocache", "none", "mask-last-10", "ctxbudget")
STEP_SECONDS = 30.0
"""Simulated time between calls (well inside both providers' cache lifetimes)."""


@dataclass
class Totals:
    """One policy over many sessions."""

    cost: Decimal = Decimal(0)
    usage: Usage = field(default_factory=lambda: Usage(input_tokens=0))
    retention: RetentionTotals = field(default_factory=RetentionTotals)
    peak: int = 0
    compactions: int = 0
    worse_than_none: int = 0


def _price_call(
    sim: SessionCache, body: dict[str, Any], fmt: Format, now: float, spec: ModelSpec
) -> tuple[Usage, Decimal]:
    """What one request is billed, as the provider's cache rules say (input only)."""
    _, info = sim.on_request(body, fmt, now=now, planned=True)
    usage = info.prediction.as_usage()
    if sim.rules.mode == "none":
        usage = Usage(input_tokens=usage.input_tokens)
    cost = price(usage, spec.prices)
    return usage, cost.input if cost is not None else Decimal(0)


def replay(
    items: Sequence[Item], spec: ModelSpec, provider: str, policy: str
) -> tuple[Decimal, Usage, RetentionTotals, int, int]:
    """Input cost, usage, retention, peak input tokens and compactions of one session."""
    fmt: Format = "anthropic" if provider == "anthropic" else "openai_chat"
    counter: TokenCounter = counter_for(spec)
    rules = cache_rules(spec) if policy != "none-nocache" else CacheRules(mode="none")
    sim = SessionCache(rules, counter, enabled=policy != "ctxbudget")
    tracker = RetentionTracker()
    leading = task_length(items)
    retention = RetentionTotals()
    cost, usage, peak, compactions = Decimal(0), Usage(input_tokens=0), 0, 0
    clock = [0.0]
    manager = ContextManager(spec, clock=lambda: clock[0]) if policy == "ctxbudget" else None
    render = _renderer(provider, spec.name)
    fed = 0
    for index, item in enumerate(items):
        if item.role == "assistant" and index >= leading:
            clock[0] += STEP_SECONDS
            if manager is not None:
                manager.extend(items[fed:index])
                fed = index
                body = manager.prepare("anthropic" if provider == "anthropic" else "openai")
                report = manager.last_report
                compactions += len(report.records) if report is not None else 0
                view: Sequence[Item] = manager.view.items
            else:
                history = items[:index]
                masked = policy == "mask-last-10"
                view = mask_observations(history) if masked else full_history(history)
                body = render(view)
            call_usage, call_cost = _price_call(sim, body, fmt, clock[0], spec)
            cost += call_cost
            usage = usage + call_usage
            peak = max(peak, call_usage.input_tokens)
            retention = retention.add(tracker.score(item, view))
        tracker.observe(item, background=index < leading)
    if manager is not None:
        manager.close()
    return cost, usage, retention, peak, compactions


def _renderer(provider: str, model: str) -> Callable[[Sequence[Item]], dict[str, Any]]:
    if provider == "anthropic":
        anthropic = AnthropicRenderer()
        return lambda view: anthropic.render(view, model=model, max_tokens=4096)
    chat = OpenAIChatRenderer()
    return lambda view: chat.render(view, model=model)


def _select(quick: bool) -> list[tuple[str, Session]]:
    """(folder, session) of every session with 2+ calls; 3 per folder with ``quick``."""
    sessions: list[tuple[str, Session]] = []
    per_folder: dict[str, int] = {}
    for session in load_sessions(TRACES):
        folder = Path(session.source).parent.name
        if quick and per_folder.get(folder, 0) >= 3:
            continue
        if len(session.calls) < 2:
            continue
        per_folder[folder] = per_folder.get(folder, 0) + 1
        sessions.append((folder, session))
    return sessions


def _figures(
    totals: dict[str, Totals], by_folder: dict[str, dict[str, Decimal]], skipped: int
) -> dict[str, Any]:
    """One model's figures for ``--json`` (deterministic: no timings)."""
    none = totals["none"].cost or Decimal(1)
    return {
        "skipped": skipped,
        "policies": {
            policy: {
                "cost": round(float(t.cost), 6),
                "vs_none": round(float(t.cost / none), 6),
                "retention": t.retention.share,
                "peak": t.peak,
                "compactions": t.compactions,
                "worse_than_none": t.worse_than_none,
            }
            for policy, t in totals.items()
        },
        "folders": {
            folder: round(float(costs["ctxbudget"] / (costs["none"] or Decimal(1))), 6)
            for folder, costs in sorted(by_folder.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 sessions per trace folder")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    warnings.simplefilter("ignore", CacheBustWarning)  # busts are planned here
    if not TRACES.is_dir():
        print("no traces: ../shared/traces is absent; nothing to measure")
        return
    sessions = _select(args.quick)
    print(f"{len(sessions)} sessions from {len({f for f, _ in sessions})} trace folders")
    figures: dict[str, Any] = {"sessions": len(sessions), "models": {}}
    for model, provider in MODELS:
        spec = resolve_model(model)
        started = time.perf_counter()
        totals = {p: Totals() for p in POLICIES}
        by_folder: dict[str, dict[str, Decimal]] = {}
        skipped = 0
        for folder, session in sessions:
            results = {}
            try:
                for policy in POLICIES:
                    results[policy] = replay(session.items, spec, provider, policy)
            except CtxBudgetError as exc:
                skipped += 1
                print(f"  skipped {session.name}: {exc}", file=sys.stderr)
                continue
            for policy, (cost, usage, retention, peak, compactions) in results.items():
                t = totals[policy]
                t.cost += cost
                t.usage = t.usage + usage
                t.retention = t.retention + retention
                t.peak = max(t.peak, peak)
                t.compactions += compactions
                if cost > results["none"][0] * Decimal("1.000001"):
                    t.worse_than_none += 1
                by_folder.setdefault(folder, {}).setdefault(policy, Decimal(0))
                by_folder[folder][policy] += cost
        elapsed = time.perf_counter() - started
        none = totals["none"].cost or Decimal(1)
        print(f"\n{model} ({provider} cache rules, input cost; {elapsed:.1f} s, {skipped} skipped)")
        print(
            f"{'policy':<14}{'input $':>11}{'vs none':>9}{'cached %':>10}{'retention':>11}"
            f"{'peak tok':>10}{'compactions':>13}{'> none':>8}"
        )
        for policy in POLICIES:
            t = totals[policy]
            cached = t.usage.cache_read_tokens / max(t.usage.input_tokens, 1)
            share = t.retention.share
            print(
                f"{policy:<14}{t.cost:>11.2f}{float(t.cost / none):>8.2f}x{cached:>9.1%}"
                f"{(share if share is not None else 1.0):>10.1%} {t.peak:>9,}"
                f"{t.compactions:>13}{t.worse_than_none:>8}"
            )
        figures["models"][model] = _figures(totals, by_folder, skipped)
        print("per trace folder, input $ (ctxbudget / none):")
        for folder, costs in sorted(by_folder.items()):
            ratio = costs["ctxbudget"] / (costs["none"] or Decimal(1))
            print(
                f"  {folder:<32} none {costs['none']:>8.2f}  "
                f"ctxbudget {costs['ctxbudget']:>8.2f}  {float(ratio):.2f}x"
            )
    if args.json is not None:
        args.json.write_text(json.dumps({"exact": figures}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
