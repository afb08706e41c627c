"""Replay one imported session call by call through several policies, and price it.

Each assistant item of the session is one model call whose request was everything before
it, or, after the client compacted its own context (a ``/compact``: ``Session.resets``),
the system prompt and everything since (``Session.request``). Baselines start from what
the client sent; ctxbudget's policies from the whole history (see
:mod:`ctxbudget.simulate.policies`). For every policy the request it would have sent is
rendered for the simulated model's provider, run through the provider's cache rules
(OpenAI: automatic prefix caching; Anthropic: the best breakpoints the rules allow for
baselines, ctxbudget's own marks for ctxbudget), and priced. Calls are one
``STEP_SECONDS`` apart, so cache entries never expire mid-session. Retention is scored on
the view each policy showed; a call whose view had lost references the agent then used is
followed by one priced recall call (the request again, plus the lost items read back), so
a policy cannot look cheap by dropping what the agent needs. Retention is tracked over the
whole history either way: what the client's own compaction dropped and the agent then
reuses counts as lost, but no policy is charged a recall for it (the client as it ran made
no such call: recalls are priced only for what the client's own request still showed).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO

from ctxbudget.billing.cost import price
from ctxbudget.billing.prices import Prices
from ctxbudget.billing.usage import Usage
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import ModelSpec
from ctxbudget.cache.fingerprint import CacheBustWarning
from ctxbudget.cache.rules import CacheRules, cache_rules
from ctxbudget.cache.session import SessionCache
from ctxbudget.convert.request import Format
from ctxbudget.engine.recall import RECALL_MAX_TOKENS
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import Item
from ctxbudget.simulate.policies import PolicyRunner, start_policy, wire_format
from ctxbudget.simulate.results import Compaction, PolicyRun, SessionResult
from ctxbudget.simulate.retention import RetentionTracker, task_length
from ctxbudget.tokens.counter import TokenCounter
from ctxbudget.traces.session import Session

__all__ = ["STEP_SECONDS", "simulate_session"]

STEP_SECONDS = 30.0
"""Simulated seconds between calls (well inside every provider's cache lifetime)."""


class _Lane:
    """One policy's replay of the session: its runner, cache, retention and export."""

    def __init__(
        self, runner: PolicyRunner, spec: ModelSpec, counter: TokenCounter, sink: IO[str] | None
    ) -> None:
        rules = cache_rules(spec) if runner.cached else CacheRules(mode="none")
        self.runner, self.sink, self.counter = runner, sink, counter
        self.cache = SessionCache(rules, counter, enabled=not runner.marks_cache)
        self.fmt: Format = wire_format(spec)
        self.prices = spec.prices
        """The prices of the call being priced (set per call)."""
        self.tracker = RetentionTracker()
        self.run = PolicyRun(policy=runner.name)

    def call(
        self,
        history: Sequence[Item],
        request: Sequence[Item],
        output: Item,
        *,
        call: int,
        now: float,
        prices: Prices | None,
        client_lost: frozenset[str] = frozenset(),
    ) -> None:
        """Price the request the policy sends before ``output`` at ``prices`` and score its
        retention (``request``: what the client sent, see :meth:`PolicyRunner.step`).
        ``client_lost``: references the client's own request had already lost (after its
        compaction); losing them too is scored but not charged a recall call."""
        run, cache = self.run, self.cache
        self.prices = prices
        step = self.runner.step(history, request)
        body, info = cache.on_request(step.body, self.fmt, now=now, planned=True)
        usage = info.prediction.as_usage()
        if cache.rules.mode == "none":
            usage = Usage(input_tokens=usage.input_tokens)
        cost = price(usage, self.prices)
        score = self.tracker.score(output, step.view)
        lost = score.lost - client_lost if score is not None else frozenset()
        recall = self._recall(usage, lost)
        run.context.append(usage.input_tokens)
        run.costs.append(cost.input + recall if cost is not None and recall is not None else None)
        run.usage = run.usage + usage
        run.retention = run.retention.add(score)
        run.compactions.extend(
            Compaction(
                call=call,
                strategy=r.strategy,
                tokens_before=r.tokens_before,
                tokens_after=r.tokens_after,
            )
            for r in step.compactions
        )
        if self.sink is not None:
            line = {"step": call, "kind": "call", "provider": self.fmt, "request": body}
            self.sink.write(json.dumps(line, ensure_ascii=False) + "\n")

    def _recall(self, usage: Usage, lost: frozenset[str]) -> Decimal | None:
        """The input cost of the extra call an agent makes to recall what it lost: this
        request again (what it put in the cache read from it, the rest uncached) plus the
        recalled items, whole up to the recall tool's limit. 0 when nothing was lost."""
        if not lost:
            return Decimal(0)
        recalled = sum(
            min(self.counter.count_item(i).tokens, RECALL_MAX_TOKENS)
            for i in self.tracker.sources(lost)
        )
        cached = usage.cache_read_tokens + usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
        extra = Usage(input_tokens=usage.input_tokens + recalled, cache_read_tokens=cached)
        cost = price(extra, self.prices)
        if cost is None:
            return None
        self.run.recalls += 1
        self.run.recall_cost += cost.input
        return cost.input

    def close(self) -> None:
        self.runner.close()
        if self.sink is not None:
            self.sink.close()


def simulate_session(
    session: Session,
    policies: Sequence[str],
    spec: ModelSpec,
    *,
    export_dir: Path | None = None,
    counter: TokenCounter | None = None,
    prices: Sequence[Prices | None] | None = None,
) -> SessionResult:
    """Every policy over ``session``, priced for ``spec``.

    ``prices``: the prices of each model call, in order (e.g. each call's own model's, for
    a log that switched models mid-way); default ``spec.prices`` for every call.

    ``export_dir``: write each policy's exact request bodies to
    ``export_dir/<policy>/<session>.jsonl``, one line per model call.
    ``counter``: the ``counter_for(spec)`` to count with (default: a fresh one). Pass the
    one the session's composition is counted with, so each item is tokenized once.
    """
    if counter is None:
        counter = counter_for(spec)
    items = session.items
    leading = task_length(items)
    clock = [0.0]
    lanes: list[_Lane] = []
    # what the client's own requests lost: only a log with client compactions loses any
    client = RetentionTracker() if session.resets else None
    try:
        for name, sink in zip(
            policies, _open_exports(export_dir, session.name, policies), strict=True
        ):
            runner = start_policy(name, session.tools, spec, counter, lambda: clock[0])
            lanes.append(_Lane(runner, spec, counter, sink))
        recorded = {c.position: c for c in session.calls}
        output_tokens, call = 0, 0
        output_cost: Decimal | None = Decimal(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CacheBustWarning)  # replays change prefixes on purpose
            for index, item in enumerate(items):
                if item.role == "assistant":
                    clock[0] += STEP_SECONDS
                    listed = _call_prices(prices, call, spec)
                    history = items[:index]
                    request, client_lost = history, frozenset[str]()
                    if client is not None:
                        request = session.request(index)
                        scored = client.score(item, request)
                        client_lost = scored.lost if scored is not None else client_lost
                    for lane in lanes:
                        lane.call(
                            history,
                            request,
                            item,
                            call=call,
                            now=clock[0],
                            prices=listed,
                            client_lost=client_lost,
                        )
                    billed = recorded.get(index)
                    usage = billed.usage if billed is not None else None
                    tokens = (
                        usage.output_tokens
                        if usage is not None
                        else counter.count_item(item).tokens
                    )
                    output_tokens += tokens
                    output_cost = _add_output(output_cost, tokens, listed)
                    call += 1
                for lane in lanes:
                    lane.tracker.observe(item, background=index < leading)
                if client is not None:
                    client.observe(item, background=index < leading)
    finally:
        for lane in lanes:
            lane.close()
    if call == 0 and prices is None:
        output_cost = _add_output(output_cost, 0, spec.prices)
    return SessionResult(
        name=session.name,
        format=session.format,
        calls=call,
        model=session.model,
        runs={lane.run.policy: lane.run for lane in lanes},
        output_tokens=output_tokens,
        output_cost=output_cost,
        skipped_records=dict(session.skipped),
        parent=session.parent,
        resets=len(session.resets),
    )


def _call_prices(
    prices: Sequence[Prices | None] | None, call: int, spec: ModelSpec
) -> Prices | None:
    if prices is None:
        return spec.prices
    if call >= len(prices):
        raise ConfigError(
            f"simulate_session: prices has {len(prices)} entries, fewer than the session's "
            "model calls; pass one per assistant item"
        )
    return prices[call]


def _add_output(total: Decimal | None, tokens: int, prices: Prices | None) -> Decimal | None:
    """The output cost so far plus ``tokens`` at ``prices`` (None once any is unknown)."""
    if total is None or prices is None or prices.output is None:
        return None
    return total + Decimal(tokens) * prices.output / Decimal(1_000_000)


def _open_exports(
    export_dir: Path | None, session: str, policies: Sequence[str]
) -> list[IO[str] | None]:
    if export_dir is None:
        return [None] * len(policies)
    sinks: list[IO[str] | None] = []
    for policy in policies:
        folder = export_dir / _safe(policy)
        folder.mkdir(parents=True, exist_ok=True)
        sinks.append((folder / f"{_safe(session)}.jsonl").open("w", encoding="utf-8"))
    return sinks


def _safe(name: str) -> str:
    """A file name from a session or policy name (``/``, ``#``, ``:`` replaced)."""
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name)
