"""ContextManager: the call an agent loop makes before every LLM request.

Thin orchestration: messages are appended to the session log and the view; the accountant
keeps the per-component ledger current; when use crosses the high watermark the planner
runs the compaction cascade down to the low watermark; the renderer serializes the view;
and the rendered body is counted again before ``prepare`` returns, so a prepared request
plus the output reserve always fits the window (or a typed error says why it cannot).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ctxbudget.accounting import Accountant
from ctxbudget.cache.rules import Ttl, cache_rules
from ctxbudget.cache.session import RequestCache, SessionCache
from ctxbudget.convert.anthropic import from_anthropic, from_anthropic_tools, to_anthropic
from ctxbudget.convert.openai_chat import from_openai_chat, from_openai_chat_tools
from ctxbudget.convert.openai_responses import from_openai_responses, from_openai_responses_tools
from ctxbudget.convert.request import Format, has_anthropic_blocks, has_anthropic_tools
from ctxbudget.cost import ZERO, Cost, price
from ctxbudget.cost_planner import CostGate, RentMeter, expected_turns, proposal_effect
from ctxbudget.errors import ConfigError, ContextOverflow, UsageError
from ctxbudget.handoff import HandoffBrief, write_brief
from ctxbudget.health import ContextHealth
from ctxbudget.items import Component, ComponentKind, Item, ToolSpec, item_text
from ctxbudget.ledger import LedgerSnapshot
from ctxbudget.log import CompactionRecord, SessionLog
from ctxbudget.models import ModelSpec, resolve_model
from ctxbudget.planner import CascadeOutcome, Runner, Trigger, run_cascade, trigger
from ctxbudget.policy import Policy, preset
from ctxbudget.render import (
    AnthropicRenderer,
    OpenAIChatRenderer,
    OpenAIResponsesRenderer,
    RenderedCounter,
)
from ctxbudget.squeeze import squeeze_edit
from ctxbudget.strategies import StrategySpec, build_runner
from ctxbudget.strategies._mechanical import is_text_observation
from ctxbudget.strategies.base import CompactionInput, Proposal, derived_kind
from ctxbudget.strategies.clear_tool_results import ClearToolResultsConfig
from ctxbudget.strategies.summarize import SummarizeConfig, is_summary, summary_request
from ctxbudget.summarizers import PreSummarizer, Summarizer
from ctxbudget.telemetry.alerts import AlertRules
from ctxbudget.telemetry.observer import SessionObserver
from ctxbudget.telemetry.signals import (
    SignalActions,
    is_reminder,
)
from ctxbudget.tokens.count import TokenCount
from ctxbudget.usage import Usage
from ctxbudget.view import View

if TYPE_CHECKING:
    from ctxbudget.store.base import SessionStore

__all__ = ["ContextManager", "PrepareReport"]

Provider = Literal["openai", "openai_chat", "openai_responses", "anthropic"]
_FORMATS: dict[str, Format] = {
    "openai": "openai_chat",
    "openai_chat": "openai_chat",
    "openai_responses": "openai_responses",
    "anthropic": "anthropic",
}
_MECHANICAL = ("dedup", "clear_tool_results")
MIN_CLEAR_TOKENS = 2048
"""Least a clearing below the watermark must free: smaller savings are not worth the detail."""
_KEEP_RESULTS = ClearToolResultsConfig().keep_last
"""Newest tool results not counted as clearable: what clear_tool_results keeps by default."""
_ALREADY_SMALL = ("clear", "dedup")
"""Derivations that left a placeholder or pointer: nothing more to clear there."""
"""Strategies the cost planner may run before the high watermark: free of model calls."""
_MAX_RENDER_PASSES = 3
"""How many times prepare re-compacts when the rendered body counts more than the ledger."""
_MAX_SQUEEZES = 16
"""How many last-resort cuts one prepare may make before giving up with ContextOverflow."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepareReport:
    """What one ``prepare`` call did."""

    before: LedgerSnapshot
    """Per-component tokens before compaction."""
    after: LedgerSnapshot
    """Per-component tokens of the prepared request."""
    records: tuple[CompactionRecord, ...]
    """Compactions applied during this call, in order (door truncations included)."""
    input_tokens: TokenCount
    """Input tokens of the rendered request, counted on the rendered body."""
    limit: int
    """The most input tokens the request may have: window − output reserve − margin."""
    reason: str = ""
    """Why compaction ran (empty when it did not)."""
    failures: tuple[str, ...] = ()
    """Strategies that could not run and why (e.g. a summarizer timeout)."""
    brief_paths: tuple[Path, ...] = ()
    """Files the handoff brief was written to, after a reset."""
    cache: RequestCache | None = None
    """Fingerprint, breakpoints, predicted cache use and any cache bust of the request."""
    predicted: Usage | None = None
    """Predicted usage: input tokens and the cache reads/writes the provider should bill."""
    predicted_cost: Cost | None = None
    """Predicted input cost (USD) of the request; None when the model has no prices."""
    deferred: str = ""
    """Why compaction over the high watermark was held back (it would not pay)."""
    billed: Usage | None = None
    """What the provider billed, once :meth:`ContextManager.observe_usage` was called."""
    billed_cost: Cost | None = None
    """What that usage costs at the model's prices."""

    @property
    def freed(self) -> int:
        """Tokens compaction freed during this call."""
        return sum(r.freed for r in self.records)

    @property
    def exact(self) -> bool:
        """Whether ``input_tokens`` is exact."""
        return self.input_tokens.exact


class ContextManager(ContextHealth):
    """Keeps one agent session's context within its window and budget."""

    def __init__(
        self,
        model: str | ModelSpec,
        *,
        context_window: int | None = None,
        max_output_tokens: int | None = None,
        policy: str | Policy = "agent",
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
        """
        _check_settings(presummarize_at=presummarize_at, cache_ttl=cache_ttl, horizon=horizon)
        spec = _model_spec(model, context_window, max_output_tokens)
        self.model = spec
        """The model: window, output limit, tokenizer, prices."""
        self.policy = preset(policy) if isinstance(policy, str) else policy
        """The budget policy."""
        self.strict = strict
        """Raise ContextOverflow instead of resetting when nothing else fits."""
        self.handoff_dir = Path(handoff_dir) if handoff_dir is not None else None
        """Where handoff briefs are written after a reset (None: not written)."""
        self.log = SessionLog()
        """The append-only session log (every item and compaction)."""
        self.view = View()
        """The items the model sees now."""
        self.accountant = Accountant(spec, self.policy)
        """Per-component token accounting of the view."""
        self.last_report: PrepareReport | None = None
        """What the last ``prepare`` did."""
        self._build_cascade(strategies, summarizer, presummarize_at)
        self._openai = OpenAIChatRenderer()
        self._anthropic = AnthropicRenderer()
        self._verifier = RenderedCounter(self.accountant.counter)
        allocation = self.accountant.ledger.allocation
        self._kinds = {c: allocation.kind(c) for c in Component}
        self._pending: list[CompactionRecord] = []
        """Door truncations since the last prepare, reported with it."""
        self._next = 0
        self._responses = OpenAIResponsesRenderer()
        self.cache = SessionCache(
            cache_rules(spec), self.accountant.counter, ttl=cache_ttl, enabled=cache_breakpoints
        )
        """The provider cache as this session predicts it; ``cache.busts`` counts busts."""
        self._gate = CostGate(prices=spec.prices if cost_aware else None, ttl=cache_ttl)
        self._rent, self._sent, self._turns = RentMeter(self._gate), 0, 0
        self._horizon, self._prompt_cache_key = horizon, prompt_cache_key
        self._clock = clock or time.monotonic
        self._boundary: str | None = None
        """Id of the item ending the latest compaction (summary or placeholder)."""
        self.usage = Usage(input_tokens=0)
        """Billed usage of every call reported with :meth:`observe_usage`."""
        self.cost: Cost | None = ZERO
        """Their cost (USD); None once a call could not be priced."""
        self.session_id = session_id or uuid.uuid4().hex
        """Labels this session's metrics and alerts."""
        self._tools_planned = False
        """The tool list changed on purpose since the last prepare (not a cache bust)."""
        self._distance: int | None = 0
        """Tokens since the system constraints were last stated (None: recount)."""
        self._observer = SessionObserver(self.session_id, spec.name, alerts=alerts, actions=actions)

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
        from ctxbudget.store.resume import open_session

        return open_session(session_id, store, model, **settings)

    # -- what enters the context -----------------------------------------------------------

    def set_tools(
        self, tools: Sequence[Mapping[str, Any] | ToolSpec], *, planned: bool = False
    ) -> TokenCount:
        """Offer tool schemas (OpenAI or Anthropic format, or ``ToolSpec``); returns their cost.

        ``planned``: a deliberate change whose rewrite was priced (tool scoping in remove
        mode): the next ``prepare`` reports its prefix change as planned, not as a cache bust.
        """
        specs = _read_tools(tools)
        self.log.set_tools(tuple(specs))
        self._tools_planned = self._tools_planned or planned
        return self.accountant.set_tools(specs)

    def set_system(self, text: str) -> Item:
        """Add a system prompt (fixed component); handy for Anthropic-style callers."""
        (item,) = self._convert([{"role": "system", "content": text}])
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
        their ids must be new to this session.
        """
        items = self._convert(list(messages), format)
        if pinned:
            items = [i.with_(pinned=True) for i in items]
        for item in items:
            self._add(item)
            if self._door is not None and item.tool_results:
                self._truncate_at_door(item)
        return items

    def recall(self, item_id: str) -> Item:
        """Any item ever in this session, exactly as appended (compaction is restorable)."""
        return self.log.recall(item_id)

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
        item exceed the window.
        """
        fmt = _FORMATS.get(provider)
        if fmt is None:
            raise UsageError(
                f"unknown provider {provider!r}; expected one of {', '.join(_FORMATS)}"
            )
        started, wall = time.perf_counter(), time.time()
        now = self._clock()
        self.log.prepared(provider, now=now, input_limit=input_limit, options=options)
        self._turns += 1
        reinjected = self._reinject_constraints()
        before = self.snapshot()
        allocation = self.accountant.ledger.allocation
        limit = _input_limit(allocation.usable, input_limit)
        early = CascadeOutcome()
        self._narrow_knowledge(early)
        trig, deferred = self._plan(limit, now)
        if trig is not None:
            outcome = self._cascade(trig)
        else:
            outcome = self._compact_if_pays(now)
            self._presummarize()
        outcome.records[:0] = early.records
        outcome.failures[:0] = early.failures
        body = self._render(provider, options)
        counted = self._verifier.count(body, fmt)
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
            more = self._cascade(squeeze)
            outcome.records.extend(more.records)
            outcome.failures.extend(more.failures)
            outcome.brief = more.brief or outcome.brief
            body = self._render(provider, options)
            counted = self._verifier.count(body, fmt)
        if counted.tokens > limit:
            raise self._overflow(counted.tokens, limit)
        self._note_boundary(outcome.records)
        body, cache = self.cache.on_request(
            body,
            fmt,
            now=now,
            planned=bool(outcome.records or self._pending or self._tools_planned),
            boundary=self._boundary_block(fmt, body),
        )
        predicted = _predicted_usage(cache, counted.tokens)
        self._tools_planned = False
        self._sent = self.total()
        paths = self._write_brief(outcome.brief) if outcome.brief is not None else ()
        records = (*self._pending, *outcome.records)
        self._pending = []
        self.last_report = PrepareReport(
            before=before,
            after=self.snapshot(),
            records=records,
            input_tokens=counted,
            limit=limit,
            reason=trig.reason if trig is not None else _economic_reason(outcome),
            failures=tuple(outcome.failures),
            brief_paths=paths,
            cache=cache,
            predicted=predicted,
            predicted_cost=price(predicted, self.model.prices),
            deferred=deferred,
        )
        self._record_call(
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
            self._distance = None  # estimated counts were re-scaled
        cost = price(usage, self.model.prices)
        self.usage = self.usage + usage
        self.cost = self.cost + cost if self.cost is not None and cost is not None else None
        self.last_report = dataclasses.replace(report, billed=usage, billed_cost=cost)
        self._observer.billed(usage, cost.total if cost is not None else None)
        return self.last_report

    # -- CompactionSession (used by the planner) -------------------------------------------

    def total(self) -> int:
        """Input tokens of the current view (ledger)."""
        return self.accountant.input_tokens.tokens

    def compaction_input(self, need: int, *, last_resort: bool) -> CompactionInput:
        """The view as strategies see it."""
        return CompactionInput(
            items=self.view.items,
            count=self._count,
            need=need,
            kinds=self._kinds,
            task=self._task(),
            last_resort=last_resort,
        )

    def apply(self, strategy: str, proposal: Proposal, reason: str) -> CompactionRecord | str:
        """Apply a proposal: view, ledger and log stay in step; why not, if rejected."""
        inserted = [i.id for e in proposal.edits for i in e.insert]
        taken = [i for i in inserted if i in self.log]
        if taken:
            return f"inserted ids already in the session: {taken}"
        before = self.accountant.input_tokens
        removed = {i for e in proposal.edits for i in e.remove}
        first = next((n for n, i in enumerate(self.view.items) if i.id in removed), None)
        try:
            self.view.apply(proposal.edits)
        except UsageError as exc:
            return str(exc)
        for edit in proposal.edits:
            for item_id in edit.remove:
                self.accountant.remove(item_id)
            for item in edit.insert:
                self.accountant.add(item)
        after = self.accountant.input_tokens
        self._distance = None
        record = CompactionRecord(
            strategy=strategy,
            edits=proposal.edits,
            tokens_before=before.tokens,
            tokens_after=after.tokens,
            exact=before.exact and after.exact,
            reason=reason,
        )
        self.log.compact(record)
        if first is not None:
            tail = self.view.items[first:]
            self._observer.rewrote(record, sum(self.accountant.count(i.id).tokens for i in tail))
        return record

    def close(self) -> None:
        """Stop background work (pending pre-summaries are dropped)."""
        if self._pre is not None:
            self._pre.close()

    def __enter__(self) -> ContextManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _build_cascade(
        self,
        strategies: Sequence[StrategySpec] | None,
        summarizer: Summarizer | None,
        presummarize_at: float | None,
    ) -> None:
        tokenizer = self._tokenizer = self.accountant.counter.tokenizer
        names = list(strategies) if strategies is not None else list(self.policy.strategies)
        self._pre: PreSummarizer | None = None
        self._presummarize_at = presummarize_at
        self._summarize: SummarizeConfig | None = None
        if summarizer is not None and presummarize_at is not None:
            names = [self._with_presummary(s, summarizer) for s in names]
        built = [build_runner(s, tokenizer=tokenizer, summarizer=summarizer) for s in names]
        self._door: Runner | None = next((r for n, r in built if n == "truncate"), None)
        self._steps = [(n, r) for n, r in built if n != "reset"]
        self._reset = next(((n, r) for n, r in built if n == "reset"), None)

    def _with_presummary(self, spec: StrategySpec, summarizer: Summarizer) -> StrategySpec:
        """The summarize strategy wired to a background pre-summarizer; others unchanged."""
        if spec == "summarize":
            spec = SummarizeConfig(summarizer=summarizer)
        if not isinstance(spec, SummarizeConfig) or spec.presummarized is not None:
            return spec
        self._pre = PreSummarizer(spec.summarizer or summarizer, spec.timeout)
        self._summarize = dataclasses.replace(spec, presummarized=self._pre.take)
        return self._summarize

    def _presummarize(self) -> None:
        """Past ``presummarize_at``, start summarizing what the next compaction will need."""
        if self._pre is None or self._summarize is None or self._presummarize_at is None:
            return
        allocation = self.accountant.ledger.allocation
        if self.total() < self._presummarize_at * allocation.usable:
            return
        # a little more than a compaction from the high watermark needs, so it still covers
        # the selection when the watermark is crossed a few messages later
        need = (allocation.high_watermark - allocation.low_watermark) * 5 // 4
        request = summary_request(self._summarize, self.compaction_input(need, last_resort=False))
        if request is not None:
            self._pre.start(request)

    def _cascade(self, trig: Trigger) -> CascadeOutcome:
        if self.strict:
            outcome = run_cascade(self, self._steps, trig, reset=None)
            if self.total() > trig.limit:
                raise self._overflow(self.total(), trig.limit)
            return outcome
        outcome = run_cascade(self, self._steps, trig, reset=self._reset)
        for _ in range(_MAX_SQUEEZES):
            over = self.total() - trig.limit
            if over <= 0:
                break
            view = self.compaction_input(over, last_resort=True)
            edit = squeeze_edit(dataclasses.replace(view, keep_last=0), self._tokenizer)
            if edit is None:
                break
            record = self.apply(
                "squeeze", Proposal(edits=(edit,)), f"{trig.reason}; latest turn too big"
            )
            if isinstance(record, str):
                outcome.failures.append(f"squeeze: {record}")
                break
            outcome.records.append(record)
        return outcome

    def _fixed_tokens(self) -> int:
        """Tokens that survive any compaction: fixed components, tools, request overhead."""
        return sum(
            row.used
            for row in self.snapshot().components
            if self._kinds.get(row.component) is ComponentKind.FIXED
        )

    def _cache_warm(self, now: float) -> bool:
        return self.cache.rules.mode != "none" and self.cache.state.is_warm(now)

    def _compact_if_pays(self, now: float) -> CascadeOutcome:
        """Below the watermark: clear old tool results once carrying them cost a rewrite."""
        outcome = CascadeOutcome()
        if self._gate.prices is None or self.cache.rules.mode == "none":
            return outcome
        clearable = self._clearable()
        self._rent.pay(clearable)
        if clearable < MIN_CLEAR_TOKENS or not self._rent.due():
            return outcome
        cached = self._cache_warm(now)
        new_tokens = max(self.total() - self._sent, 0)  # not cached yet: no rewrite
        best: tuple[float, str, Proposal, Decimal] | None = None
        for name, runner in self._steps:
            if name not in _MECHANICAL:
                continue
            proposal = runner(self.compaction_input(self.total(), last_resort=False))
            if not proposal.edits:
                continue
            effect = proposal_effect(self.view.items, proposal.edits, self._count)
            if effect.freed < MIN_CLEAR_TOKENS:
                continue  # not worth losing detail for
            rewrite = self._gate.rewrite_cost(max(effect.rewritten - new_tokens, 0), cached=cached)
            ratio = effect.freed / max(effect.rewritten, 1)
            if best is None or ratio > best[0]:
                best = (ratio, name, proposal, rewrite)
        if best is None:
            self._rent.postpone()
            return outcome
        if not self._rent.buys(best[3]):
            return outcome
        _, name, proposal, rewrite = best
        reason = (
            f"clearing pays: ${self._rent.rent:.4f} spent re-reading clearable tokens "
            f">= ${rewrite:.4f} to rewrite the prefix"
        )
        record = self.apply(name, proposal, reason)
        if isinstance(record, str):
            outcome.failures.append(f"{name}: edits rejected: {record}")
        else:
            outcome.records.append(record)
            self._rent.bought()
        return outcome

    def _clearable(self) -> int:
        """Tokens of tool results a clearing could free (all but the newest few)."""
        seen, tokens = 0, 0
        for item in reversed(self.view.items):
            observation = item.tool_results or is_text_observation(item)
            if not observation or derived_kind(item.id) in _ALREADY_SMALL:
                continue
            seen += 1
            if seen > _KEEP_RESULTS:
                tokens += self._count(item)
        return tokens

    def _note_boundary(self, records: Sequence[CompactionRecord]) -> None:
        for record in reversed(records):
            inserted = [i.id for e in record.edits for i in e.insert]
            if inserted:
                self._boundary = inserted[-1]
                return

    def _boundary_block(self, fmt: Format, body: Mapping[str, Any]) -> int | None:
        """Block index (tools, system, messages) of the latest compaction boundary."""
        if fmt != "anthropic" or self._boundary is None:
            return None
        items = self.view.items
        index = next((n for n, i in enumerate(items) if i.id == self._boundary), None)
        if index is None:
            self._boundary = None
            return None
        _, messages = to_anthropic(list(items[: index + 1]))
        if not messages:
            return None
        position = len(messages) - 1
        first = body.get("messages") or [{}]
        if first and messages[0].get("role") != "user" and first[0].get("role") == "user":
            position += 1  # the renderer put a user note first
        return position + bool(body.get("tools")) + bool(body.get("system"))

    def _count(self, item: Item) -> int:
        return self.accountant.counter.count_item(item).tokens

    def _plan(self, limit: int, now: float) -> tuple[Trigger | None, str]:
        """Whether to compact now (the trigger) and, if it would not pay, why it waits."""
        allocation = self.accountant.ledger.allocation
        trig = trigger(
            self.total(),
            high=min(allocation.high_watermark, limit),
            low=min(allocation.low_watermark, limit),
            usable=limit,
        ) or self._history_trigger(limit)
        if trig is None or self.total() > limit:
            return trig, ""
        economics = self._gate.judge(
            freed=self.total() - trig.target,
            rewritten=max(trig.target - self._fixed_tokens(), 0),
            cached=self._cache_warm(now),
            horizon=expected_turns(self._turns, self._horizon),
        )
        if not self._gate.pays(economics) and economics is not None:
            return None, economics.describe()
        return trig, ""

    def _add(self, item: Item) -> None:
        self.log.append(item)
        self.view.append(item)
        tokens = self.accountant.add(item).tokens
        if item.role == "system" or is_reminder(item):
            self._distance = 0
        elif self._distance is not None:
            self._distance += tokens

    def _truncate_at_door(self, item: Item) -> None:
        if self._door is None:
            return
        view = CompactionInput(items=(item,), count=self._count, need=0, keep_last=0)
        proposal = self._door(view)
        if proposal.edits:
            record = self.apply("truncate", proposal, "oversized tool result, at the door")
            if not isinstance(record, str):
                self._pending.append(record)

    def _convert(
        self, messages: list[Mapping[str, Any] | Item], fmt: Format | None = None
    ) -> list[Item]:
        start = self._next
        if messages and all(isinstance(m, Item) for m in messages):
            items = [m for m in messages if isinstance(m, Item)]
            self._next = start + len(items)
            return items
        if any(isinstance(m, Item) for m in messages):
            raise UsageError("pass either Item objects or message dicts to extend(), not both")
        dicts = [m for m in messages if not isinstance(m, Item)]
        if fmt == "openai_responses":
            items = from_openai_responses(dicts, start=start)
        elif fmt == "anthropic" or (fmt is None and has_anthropic_blocks(dicts)):
            system = [m for m in dicts if m.get("role") == "system"]
            rest = [m for m in dicts if m.get("role") != "system"]
            items = from_openai_chat(system, start=start) + from_anthropic(
                rest, start=start + len(system)
            )
        elif fmt in (None, "openai_chat"):
            items = from_openai_chat(list(dicts), start=start)
        else:
            raise UsageError(
                f"unknown format {fmt!r}; expected openai_chat, anthropic or openai_responses"
            )
        self._next = start + len(items)
        return items

    def _task(self) -> str:
        users = [
            i
            for i in self.view
            if i.role == "user"
            and not i.tool_results
            and not is_text_observation(i)
            and not is_summary(i)
        ]
        if not users:
            return ""
        first, last = item_text(users[0]), item_text(users[-1])
        return first if first == last else f"{first}\n{last}"

    def _render(self, provider: Provider, options: Mapping[str, Any]) -> dict[str, Any]:
        items, tools = self.view.items, self.accountant.tools
        if provider != "anthropic" and self._prompt_cache_key is not None:
            options = {"prompt_cache_key": self._prompt_cache_key, **options}
        if provider == "openai_responses":
            return self._responses.render(items, tools, model=self.model.name, options=options)
        if provider == "anthropic":
            rest = dict(options)
            reserve = self.accountant.ledger.allocation.output_reserve
            max_tokens = int(rest.pop("max_tokens", reserve))
            return self._anthropic.render(
                items, tools, model=self.model.name, max_tokens=max_tokens, options=rest
            )
        return self._openai.render(items, tools, model=self.model.name, options=options)

    def _overflow(self, tokens: int, limit: int) -> ContextOverflow:
        snapshot = self.snapshot()
        allocation = self.accountant.ledger.allocation
        largest = max(snapshot.components, key=lambda r: r.used)
        pinned = [i for i in self.view if i.pinned]
        name = largest.component.value
        detail = f"; pinned items: {', '.join(i.id for i in pinned)}" if pinned else ""
        return ContextOverflow(
            f"the request needs {tokens:,} input tokens but at most {limit:,} fit "
            f"(window {allocation.context_window:,} − output reserve "
            f"{allocation.output_reserve:,} − margin {allocation.safety_margin:,}); the largest "
            f"component that cannot be compacted further is {name!r} "
            f"({largest.used:,} tokens){detail}. Shorten fixed or pinned "
            "content, or use a model with a larger window.",
            component=name,
            size=tokens,
            limit=limit,
        )

    def _write_brief(self, brief: HandoffBrief) -> tuple[Path, ...]:
        if self.handoff_dir is None:
            return ()
        stem = f"handoff-{len(self.log.records()):04d}"
        return write_brief(brief, self.handoff_dir, stem)


def _check_settings(*, presummarize_at: float | None, cache_ttl: str, horizon: int | None) -> None:
    if cache_ttl not in ("5m", "1h"):
        raise ConfigError(f"cache_ttl must be '5m' or '1h', got {cache_ttl!r}")
    if horizon is not None and (isinstance(horizon, bool) or horizon < 1):
        raise ConfigError(f"horizon must be a positive number of turns or None, got {horizon!r}")
    if presummarize_at is not None and not 0.0 < presummarize_at <= 1.0:
        raise ConfigError(f"presummarize_at must be in (0, 1] or None, got {presummarize_at}")


def _model_spec(
    model: str | ModelSpec, context_window: int | None, max_output_tokens: int | None
) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return dataclasses.replace(
            model,
            context_window=context_window or model.context_window,
            max_output_tokens=max_output_tokens or model.max_output_tokens,
        )
    return resolve_model(model, context_window=context_window, max_output_tokens=max_output_tokens)


def _input_limit(usable: int, input_limit: int | None) -> int:
    """The most input tokens this request may have: the usable window, or less."""
    if input_limit is None:
        return usable
    if isinstance(input_limit, bool) or not isinstance(input_limit, int) or input_limit < 1:
        raise UsageError(f"input_limit must be a positive int (tokens), got {input_limit!r}")
    return min(usable, input_limit)


def _predicted_usage(cache: RequestCache, input_tokens: int) -> Usage:
    """The cache prediction scaled to the verified input count."""
    prediction = cache.prediction
    scale = input_tokens / max(cache.fingerprint.tokens, 1)  # block sums frame differently
    read = min(round(prediction.read_tokens * scale), input_tokens)
    write = min(round(prediction.write_tokens * scale), input_tokens - read)
    one_hour = prediction.ttl == "1h"
    return Usage(
        input_tokens=input_tokens,
        cache_read_tokens=read,
        cache_write_5m_tokens=0 if one_hour else write,
        cache_write_1h_tokens=write if one_hour else 0,
    )


def _economic_reason(outcome: CascadeOutcome) -> str:
    return outcome.records[0].reason if outcome.records else ""


def _read_tools(tools: Sequence[Mapping[str, Any] | ToolSpec]) -> list[ToolSpec]:
    specs = [t for t in tools if isinstance(t, ToolSpec)]
    if len(specs) == len(tools):
        return specs
    if specs:
        raise UsageError("pass either ToolSpec objects or tool schema dicts, not both")
    dicts = [t for t in tools if not isinstance(t, ToolSpec)]
    if any(isinstance(t, Mapping) and "function" not in t and "parameters" in t for t in dicts):
        return from_openai_responses_tools(dicts)
    if has_anthropic_tools(dicts):
        return from_anthropic_tools(dicts)
    return from_openai_chat_tools(dicts)
