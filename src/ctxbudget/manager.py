"""ContextManager: the call an agent loop makes before every LLM request.

Thin orchestration over the engine: messages are appended to the session log and the view
(:mod:`~ctxbudget.engine.compactor`); the accountant keeps the per-component ledger
current; when use crosses the high watermark the planner runs the compaction cascade down
to the low watermark; the request writer renders the view; and the rendered body is
counted again before ``prepare`` returns, so a prepared request plus the output reserve
always fits the window (or a typed error says why it cannot). Telemetry is a collaborator
(:class:`~ctxbudget.engine.health.ContextHealth`).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ctxbudget.billing.cost import ZERO, Cost, price
from ctxbudget.billing.usage import Usage
from ctxbudget.budget.accounting import Accountant
from ctxbudget.budget.ledger import LedgerSnapshot
from ctxbudget.budget.models import ModelSpec
from ctxbudget.budget.policy import DEFAULT_POLICY, Policy, preset
from ctxbudget.cache.rules import Ttl, cache_rules
from ctxbudget.cache.session import SessionCache
from ctxbudget.compaction.cost_planner import CostGate
from ctxbudget.compaction.handoff import HandoffBrief, write_brief
from ctxbudget.compaction.planner import Trigger
from ctxbudget.compaction.strategies import StrategySpec
from ctxbudget.compaction.strategies.base import CompactionInput, Proposal
from ctxbudget.compaction.summarizers import Summarizer
from ctxbudget.convert.request import Format, read_tools
from ctxbudget.engine.cascade import build_cascade
from ctxbudget.engine.compactor import Compactor
from ctxbudget.engine.health import ContextHealth
from ctxbudget.engine.recall import (
    RECALL_TOOL,
    read_recall_call,
    recall_result,
    recall_text,
    recall_tool,
)
from ctxbudget.engine.report import PrepareReport
from ctxbudget.engine.request import (
    Provider,
    RequestWriter,
    economic_reason,
    planned_change,
    predicted_usage,
    request_limit,
    wire_format,
)
from ctxbudget.engine.resume import open_session
from ctxbudget.engine.settings import check_settings, model_spec
from ctxbudget.engine.snapshot import Snapshots
from ctxbudget.errors import UsageError
from ctxbudget.render import RenderedCounter
from ctxbudget.session.items import Item, ToolCallPart, ToolSpec
from ctxbudget.session.log import CompactionRecord, SessionLog
from ctxbudget.session.view import View
from ctxbudget.store.base import SessionStore
from ctxbudget.telemetry.alerts import AlertMonitor, AlertRules
from ctxbudget.telemetry.history import MetricsHistory
from ctxbudget.telemetry.observer import Decision, SessionObserver
from ctxbudget.telemetry.signals import SignalActions, Signals
from ctxbudget.tokens.count import TokenCount

__all__ = ["ContextManager", "PrepareReport"]

_MAX_RENDER_PASSES = 3
"""How many times prepare re-compacts when the rendered body counts more than the ledger."""


class ContextManager:
    """Keeps one agent session's context within its window and budget."""

    def __init__(
        self,
        model: str | ModelSpec,
        *,
        context_window: int | None = None,
        max_output_tokens: int | None = None,
        policy: str | Policy = DEFAULT_POLICY,
        strategies: Sequence[StrategySpec] | None = None,
        summarizer: Summarizer | None = None,
        strict: bool = False,
        handoff_dir: str | Path | None = None,
        presummarize_at: float | None = 0.7,
        cost_aware: bool = True,
        horizon: int | None = None,
        cache_ttl: Ttl = "5m",
        cache_breakpoints: bool = True,
        prompt_cache_key: str | None = None,
        clock: Callable[[], float] | None = None,
        session_id: str | None = None,
        alerts: AlertRules | None = None,
        actions: SignalActions | None = None,
        repair: bool = False,
    ) -> None:
        """``strategies`` overrides the policy's cascade (names or strategy configs).

        With a ``summarizer`` (a model call) and ``summarize`` in the cascade, the oldest
        exchanges are summarized in a background thread once use passes
        ``presummarize_at`` of the usable window, so compaction does not wait for the model
        (None: never in the background).

        ``cost_aware``: with the model's prices known, compaction over the high watermark
        waits until it pays for rewriting the cached prefix (the window limit still forces
        it), and old tool results are cleared earlier whenever that pays, projected over
        ``horizon`` more turns (None: as many turns as the session has run, 5 to 100).
        ``cache_breakpoints`` places Anthropic ``cache_control`` marks (TTL ``cache_ttl``);
        ``prompt_cache_key`` is sent to OpenAI. ``clock`` (seconds) dates cache entries.

        Telemetry: every prepared call adds a record to ``metrics`` (labelled with
        ``session_id``, a random id by default), ``alerts`` judges them against ``alerts``
        rules (default :class:`AlertRules`), and ``actions`` says what the manager does on its
        own when a signal crosses a threshold (default: restate the system constraints once
        the generation point is 150K tokens past them).

        ``repair``: input no provider accepts is repaired as stated in
        :mod:`ctxbudget.engine.door` (lone surrogates become U+FFFD, repeated call ids are
        renamed, unanswered calls get an error result) instead of refused.
        """
        check_settings(presummarize_at=presummarize_at, cache_ttl=cache_ttl, horizon=horizon)
        spec = model_spec(model, context_window, max_output_tokens)
        self.model = spec
        """The model: window, output limit, tokenizer, prices."""
        self.policy = preset(policy) if isinstance(policy, str) else policy
        """The budget policy."""
        self.strict = strict
        """Raise ContextOverflow instead of resetting when nothing else fits."""
        self.handoff_dir = Path(handoff_dir) if handoff_dir is not None else None
        """Where handoff briefs are written after a reset (None: not written)."""
        self.accountant = Accountant(spec, self.policy)
        """Per-component token accounting of the view."""
        self.last_report: PrepareReport | None = None
        """What the last ``prepare`` did."""
        self.cache = SessionCache(
            cache_rules(spec), self.accountant.counter, ttl=cache_ttl, enabled=cache_breakpoints
        )
        """The provider cache as this session predicts it; ``cache.busts`` counts busts."""
        self.usage = Usage(input_tokens=0)
        """Billed usage of every call reported with :meth:`observe_usage`."""
        self.cost: Cost | None = ZERO
        """Their cost (USD); None once a call could not be priced."""
        self.session_id = session_id or uuid.uuid4().hex
        """Labels this session's metrics and alerts."""
        specs = list(strategies) if strategies is not None else list(self.policy.strategies)
        cascade = build_cascade(
            specs,
            tokenizer=self.accountant.counter.tokenizer,
            summarizer=summarizer,
            presummarize_at=presummarize_at,
        )
        observer = SessionObserver(self.session_id, spec.name, alerts=alerts, actions=actions)
        self._compactor = Compactor(
            accountant=self.accountant,
            cascade=cascade,
            cache=self.cache,
            gate=CostGate(prices=spec.prices if cost_aware else None, ttl=cache_ttl),
            observer=observer,
            strict=strict,
            horizon=horizon,
            presummarize_at=presummarize_at,
            repair=repair,
        )
        self._health = ContextHealth(self._compactor, observer)
        self._writer = RequestWriter(
            model=spec.name,
            output_reserve=self.accountant.ledger.allocation.output_reserve,
            prompt_cache_key=prompt_cache_key,
        )
        self._verifier = RenderedCounter(self.accountant.counter)
        self._clock = clock or time.monotonic
        self._tools_planned = False
        """The tool list changed on purpose since the last prepare (not a cache bust)."""
        self._snapshots = Snapshots()  # state snapshots in the log: resume in constant time

    @classmethod
    def open(
        cls,
        session_id: str,
        store: SessionStore | str | None = None,
        model: str | ModelSpec | None = None,
        **settings: Any,
    ) -> ContextManager:
        """Resume session ``session_id`` from ``store`` (or start it), writing through to it.

        The stored events are replayed, so the next ``prepare()`` returns the bytes the
        original process would have sent. ``store`` is a store or a URL (None:
        ``$CTXBUDGET_STORE``, else ``.ctxbudget/ctxbudget.db``); ``model`` defaults to the
        one the session was recorded with; ``settings`` are the constructor's and must be
        those the session was recorded with.
        """
        return open_session(cls, session_id, store, model, **settings)

    @property
    def log(self) -> SessionLog:
        """The append-only session log (every item and compaction)."""
        return self._compactor.log

    @property
    def view(self) -> View:
        """The items the model sees now."""
        return self._compactor.view

    # -- what enters the context -----------------------------------------------------------

    def set_tools(
        self, tools: Sequence[Mapping[str, Any] | ToolSpec], *, planned: bool = False
    ) -> TokenCount:
        """Offer tool schemas (OpenAI or Anthropic format, or ``ToolSpec``); returns their cost.

        ``planned``: a deliberate change whose rewrite was priced (tool scoping in remove
        mode): the next ``prepare`` reports its prefix change as planned, not as a cache bust.
        """
        specs = read_tools(tools)
        self.log.set_tools(tuple(specs))
        self._tools_planned = self._tools_planned or planned
        return self.accountant.set_tools(specs)

    def set_system(self, text: str) -> Item:
        """Add a system prompt (fixed component); handy for Anthropic-style callers."""
        (item,) = self._compactor.intake.read([{"role": "system", "content": text}])
        self._add(item)
        return item

    def append(self, message: Mapping[str, Any], *, pinned: bool = False) -> list[Item]:
        """Append one OpenAI or Anthropic message dict; returns the items it became.

        ``pinned`` items reach the model verbatim: no strategy touches them.
        """
        return self.extend([message], pinned=pinned)

    def extend(
        self,
        messages: Iterable[Mapping[str, Any] | Item],
        *,
        pinned: bool = False,
        format: Format | None = None,
    ) -> list[Item]:
        """Append messages; system messages go to ``system``.

        ``format`` says which wire format they are in (``openai_chat``, ``anthropic``,
        ``openai_responses`` input items); by default OpenAI chat or Anthropic, detected.
        Already-converted :class:`Item` objects (an imported log) are appended as they are;
        their ids must be new to this session. What no provider accepts (invalid Unicode, a
        result without its call, a repeated call id, a message while calls are unanswered)
        is refused with a ConversionError before any message of the batch enters, or
        repaired as ``repair=True`` states (:mod:`ctxbudget.engine.door`).
        """
        items = self._compactor.intake.read(messages, format)
        if pinned:
            items = [i.with_(pinned=True) for i in items]
        self._compactor.check_room(items)
        for item in items:
            self._add(item)
            self._compactor.at_door(item)
        return items

    def retract(self, count: int = 1, *, reason: str = "retracted by the caller") -> list[Item]:
        """Take the last ``count`` appended items back out of the context, e.g. when the
        provider refused the request or the user discarded a reply: the next ``prepare``
        sends what was there before them. A record in the log: they stay recallable."""
        return list(self._compactor.retract(count, reason))

    def recall(self, item_id: str) -> Item:
        """Any item ever in this session, exactly as appended (compaction is restorable)."""
        return self.log.recall(item_id)

    def recall_tool(self, provider: Provider = "openai") -> dict[str, Any]:
        """The schema of the ``recall`` tool for ``provider``: offer it to the model so it
        can fetch back what a digest or placeholder names (answer with :meth:`answer_recall`)."""
        return recall_tool(provider)

    def answer_recall(self, call: Mapping[str, Any] | ToolCallPart) -> dict[str, Any]:
        """The tool result answering the model's ``recall`` call, in the call's own format
        (append it like any tool result: the door leaves it whole). An unknown id is
        answered with an error result naming the problem, so the agent's loop goes on."""
        found = read_recall_call(call)
        if found is None:
            raise UsageError(f"not a call of the {RECALL_TOOL!r} tool: {call!r}"[:300])
        self._compactor.exempt.add(found.call_id)
        if found.item_id not in self.log:
            text = f"no item {found.item_id!r} in this session; pass an id named in a marker"
            return recall_result(found, text, is_error=True)
        item = self.log.recall(found.item_id)
        return recall_result(found, recall_text(item, self.accountant.counter.tokenizer))

    # -- the request -------------------------------------------------------------------------

    def snapshot(self) -> LedgerSnapshot:
        """Used / budget / remaining per component for the current view."""
        return self.accountant.snapshot()

    def prepare(
        self,
        provider: Provider = "openai",
        *,
        input_limit: int | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """The request body for the current view, compacted if needed; it always fits.

        ``provider``: ``openai`` (Chat Completions), ``openai_responses`` or ``anthropic``.
        ``input_limit`` lowers the most input tokens this request may have (e.g. after the
        provider said the last one was too long). Raises ContextOverflow (before any API
        call) when even a reset cannot fit, e.g. the fixed components alone or one pinned
        item exceed the window. The body shares its message dicts with earlier bodies and
        the manager's caches (that is what makes a long session cheap): treat it as
        read-only and copy what you change.
        """
        fmt = wire_format(provider)
        compactor, health = self._compactor, self._health
        started, wall = time.perf_counter(), time.time()
        now = self._clock()
        self._snapshots.before_prepare(self)
        self.log.prepared(provider, now=now, input_limit=input_limit, options=options)
        compactor.turns += 1
        reinjected = health.reinject_constraints()
        before = self.snapshot()
        allocation = self.accountant.ledger.allocation
        limit = request_limit(allocation.usable, input_limit)
        early = compactor.freeze_answered()
        health.narrow_knowledge(early)
        trig, deferred = compactor.plan(limit, now, health.budget_trigger(limit))
        if trig is not None:
            outcome = compactor.run(trig)
        else:
            outcome = compactor.compact_if_pays(now)
            compactor.presummarize()
        outcome.records[:0] = early.records
        outcome.failures[:0] = early.failures
        body, counted = self._render(provider, fmt, options)
        for _ in range(_MAX_RENDER_PASSES):
            if counted.tokens <= limit:
                break
            # The rendered body counts more than the ledger (wire framing differs, e.g.
            # merged tool results): aim the ledger lower by the difference and go again.
            delta = counted.tokens - self.total()
            aim = limit - max(delta, 1)
            squeeze = Trigger(
                f"rendered request {counted.tokens:,} > {limit:,} tokens",
                target=min(aim, allocation.low_watermark),
                limit=aim,
            )
            more = compactor.run(squeeze)
            outcome.records.extend(more.records)
            outcome.failures.extend(more.failures)
            outcome.brief = more.brief or outcome.brief
            body, counted = self._render(provider, fmt, options)
        if counted.tokens > limit:
            raise compactor.overflow(counted.tokens, limit)
        writer, view = self._writer, self.view
        writer.note_boundary(outcome.records)
        upcoming = compactor.next_edit() if fmt == "anthropic" else None
        planned, scheduled = planned_change(outcome.records, compactor.pending, self._tools_planned)
        body, cache = self.cache.on_request(
            body,
            fmt,
            now=now,
            planned=planned,
            boundary=writer.boundary_block(fmt, view, body),
            next_edit=writer.block_of(view, body, upcoming) if upcoming else None,
            planned_from=writer.first_block(fmt, view, body, scheduled),
            stable=writer.handed(fmt),
        )
        predicted = predicted_usage(cache, counted.tokens)
        self._tools_planned = False
        compactor.sent = self.total()
        self._snapshots.prepared(self, provider, options)
        paths = self._write_brief(outcome.brief) if outcome.brief is not None else ()
        records = (*compactor.pending, *outcome.records)
        compactor.pending = []
        self.last_report = PrepareReport(
            before=before,
            after=self.snapshot(),
            records=records,
            input_tokens=counted,
            limit=limit,
            reason=trig.reason if trig is not None else economic_reason(outcome),
            failures=tuple(outcome.failures),
            brief_paths=paths,
            cache=cache,
            predicted=predicted,
            predicted_cost=price(predicted, self.model.prices),
            deferred=deferred,
        )
        health.record_call(
            self.last_report,
            provider,
            options=options,
            wall=wall,
            reinjected=reinjected,
            started=started,
        )
        return body

    def observe_usage(self, usage: Usage) -> PrepareReport:
        """Reconcile the last prepared request with what the provider billed for it.

        Call it after the model call and before appending the response: estimated token
        counts are recalibrated against the billed input, and the billed usage and its cost
        are added to ``usage`` / ``cost`` and to ``last_report``.
        """
        report = self.last_report
        if report is None:
            raise UsageError("observe_usage() needs a prepared request: call prepare() first")
        if report.billed is not None:
            raise UsageError("this request's usage was already observed; prepare() the next one")
        self.log.observed(usage)
        self.accountant.observe_billed(usage.input_tokens)
        if self.accountant.calibration is not None:
            self._health.recount()  # estimated counts were re-scaled
        cost = price(usage, self.model.prices)
        self.usage = self.usage + usage
        self.cost = self.cost + cost if self.cost is not None and cost is not None else None
        self.last_report = dataclasses.replace(report, billed=usage, billed_cost=cost)
        self._health.observer.billed(usage, cost.total if cost is not None else None)
        return self.last_report

    # -- the compaction session (what the planner drives) --------------------------------

    def total(self) -> int:
        """Input tokens of the current view (ledger)."""
        return self._compactor.total()

    def compaction_input(self, need: int, *, last_resort: bool) -> CompactionInput:
        """The view as strategies see it."""
        return self._compactor.compaction_input(need, last_resort=last_resort)

    def apply(self, strategy: str, proposal: Proposal, reason: str) -> CompactionRecord | str:
        """Apply a proposal: view, ledger and log stay in step; why not, if rejected."""
        return self._compactor.apply(strategy, proposal, reason)

    # -- health ------------------------------------------------------------------------------

    @property
    def metrics(self) -> MetricsHistory:
        """One :class:`~ctxbudget.telemetry.CallMetrics` per prepared call; ``subscribe`` a
        callback (or an exporter) to receive each record as it is published."""
        return self._health.metrics

    @property
    def alerts(self) -> AlertMonitor:
        """Alert state: ``active``, ``history``, and ``subscribe`` for sinks."""
        return self._health.alerts

    def signals(self) -> Signals:
        """Context health now: occupancy per component, constraint distance, retrieval and
        cache hit rates, and whether compaction, re-injection or narrowing is due."""
        return self._health.signals()

    def note_retrieval(self, retrieved: Sequence[str], used: Sequence[str]) -> None:
        """After a response: the knowledge item ids retrieved for it and those it used.

        Feeds the retrieval hit rate (``signals()``, the metrics records) and, with
        ``actions.narrow_knowledge_below``, which knowledge items leave the view.
        """
        self._health.note_retrieval(retrieved, used)

    def note_routing(self, decision: Decision | Mapping[str, Any]) -> None:
        """The routing decision for the next call (an object with ``as_dict()`` or a dict);
        it is written into that call's metrics record so routing can be reviewed."""
        self._health.note_routing(decision)

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop background work (pending pre-summaries are dropped)."""
        self._compactor.cascade.close()

    def __enter__(self) -> ContextManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _add(self, item: Item) -> None:
        self._health.added(item, self._compactor.add(item))

    def _render(
        self, provider: Provider, fmt: Format, options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], TokenCount]:
        body = self._writer.render(provider, self.view, self.accountant.tools, options)
        return body, self._verifier.count(body, fmt, self._writer.stable)

    def _write_brief(self, brief: HandoffBrief) -> tuple[Path, ...]:
        if self.handoff_dir is None:
            return ()
        stem = f"handoff-{len(self.log.records()):04d}"
        return write_brief(brief, self.handoff_dir, stem)
