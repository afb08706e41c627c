"""The compaction session the planner drives: view, ledger and log kept in step.

It owns what compaction changes and decides with: the view, the accountant, the log, the
built strategies and the cost gate. The planner runs the cascade over it; below the high
watermark it clears old tool results once carrying them has cost a rewrite (ski rental);
new tool outputs are cleaned and cut at the door and, once answered, digested; a reset that
still does not fit is squeezed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from decimal import Decimal

from ctxbudget.budget.accounting import Accountant
from ctxbudget.cache.session import SessionCache
from ctxbudget.compaction.cost_planner import CostGate, RentMeter, expected_turns, proposal_effect
from ctxbudget.compaction.extractive import untrusted_source
from ctxbudget.compaction.planner import CascadeOutcome, Trigger, run_cascade, trigger
from ctxbudget.compaction.squeeze import squeeze_edit
from ctxbudget.compaction.strategies._mechanical import is_text_observation
from ctxbudget.compaction.strategies.base import CompactionInput, Proposal
from ctxbudget.compaction.strategies.digest import worth_digesting
from ctxbudget.compaction.strategies.shorten import would_shorten
from ctxbudget.compaction.strategies.summarize import is_summary, summary_request
from ctxbudget.engine.cascade import Cascade
from ctxbudget.engine.clearable import ClearableTokens
from ctxbudget.engine.intake import Intake
from ctxbudget.engine.room import check_room
from ctxbudget.errors import ContextOverflow, UsageError
from ctxbudget.session.items import Component, ComponentKind, Item, item_text
from ctxbudget.session.log import Appended, CompactionRecord, Edit, SessionLog
from ctxbudget.session.view import View
from ctxbudget.telemetry.observer import SessionObserver
from ctxbudget.tokens.backends import Tokenizer

__all__ = ["MIN_CLEAR_TOKENS", "RETRACT", "Compactor"]

RETRACT = "retract"
"""The strategy name of a retraction record (items the caller took back)."""

_MECHANICAL = ("dedup", "clear_tool_results")
"""Strategies the cost planner may run before the high watermark: free of model calls."""
MIN_CLEAR_TOKENS = 2048
"""Least a clearing below the watermark must free: smaller savings are not worth the detail."""
_MAX_SQUEEZES = 16
"""How many last-resort cuts one cascade may make before giving up with ContextOverflow."""


class Compactor:
    """View, ledger and log of one session, and the compactions applied to them."""

    def __init__(
        self,
        *,
        accountant: Accountant,
        cascade: Cascade,
        cache: SessionCache,
        gate: CostGate,
        observer: SessionObserver,
        strict: bool,
        horizon: int | None,
        presummarize_at: float | None,
        repair: bool = False,
    ) -> None:
        self.log = SessionLog()
        self.intake = Intake(repair=repair)
        """Reads messages into items through the door."""
        self.view = View()
        self.accountant = accountant
        self.cascade = cascade
        self.cache = cache
        self.gate = gate
        self.observer = observer
        self.strict = strict
        self.horizon = horizon
        self.presummarize_at = presummarize_at
        self.tokenizer: Tokenizer = accountant.counter.tokenizer
        allocation = accountant.ledger.allocation
        self.kinds = {c: allocation.kind(c) for c in Component}
        self.rent = RentMeter(gate)
        self.pending: list[CompactionRecord] = []
        """Compactions outside a prepare (door truncations, restatements), reported with it."""
        self.sent = 0
        """Input tokens of the view when the last request was prepared (what is cached)."""
        self.turns = 0
        """Requests prepared so far."""
        self.edits = 0
        """Compactions applied so far (what a count over the view must be redone after)."""
        self.fresh: list[str] = []
        """Tool outputs in the view the agent has not answered yet (ids, oldest first)."""
        self.answered: list[str] = []
        """Outputs and messages answered since the last request: what to freeze next."""
        self.reply: str | None = None
        """The agent's latest message (id): shortened once it has a successor."""
        self.exempt: set[str] = set()
        """Call ids of recall answers: the door leaves their results whole."""
        self._clearable = ClearableTokens()

    # -- the CompactionSession the planner drives ------------------------------------------

    def total(self) -> int:
        """Input tokens of the current view (ledger)."""
        return self.accountant.input_tokens.tokens

    def compaction_input(self, need: int, *, last_resort: bool) -> CompactionInput:
        """The view as strategies see it."""
        return CompactionInput(
            items=self.view.items,
            count=self.count,
            need=need,
            kinds=self.kinds,
            task=self.task(),
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
        first = min((p for p in map(self.view.position, removed) if p is not None), default=None)
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
        self.edits += 1
        record = CompactionRecord(
            strategy=strategy,
            edits=proposal.edits,
            tokens_before=before.tokens,
            tokens_after=after.tokens,
            exact=before.exact and after.exact,
            reason=reason,
        )
        self.log.compact(record)
        if strategy == RETRACT:
            self._forget(removed)
        if first is not None:
            tail = self.view.tail(first)
            self.observer.rewrote(record, sum(self.accountant.count(i.id).tokens for i in tail))
        return record

    # -- what enters ------------------------------------------------------------------------

    def retract(self, count: int, reason: str) -> tuple[Item, ...]:
        """Take the last ``count`` appended items back out of the view (a ``retract`` record:
        they stay recallable); the items taken out, as the view held them."""
        appended = [e.item for e in self.log if isinstance(e, Appended)]
        retracted = {i for r in self.log.records() if r.strategy == RETRACT for i in _removed(r)}
        live = [i for i in appended if i.id not in retracted]
        if not 0 < count <= len(live):
            raise UsageError(f"cannot retract {count} items: {len(live)} were appended")
        successors = {
            e.remove[0]: e.insert[0].id
            for r in self.log.records()
            for e in r.edits
            if len(e.remove) == 1 and len(e.insert) == 1
        }
        ids = [self._in_view(item.id, successors) for item in live[-count:]]
        tail = [i.id for i in self.view.tail(len(self.view) - len(ids))]
        if None in ids or sorted(map(str, ids)) != sorted(tail):
            raise UsageError(
                f"cannot retract the last {count} items: a compaction has merged them with "
                "earlier ones, so they are no longer the end of the context; start a new "
                "session, or append a correction instead"
            )
        edit = Edit(kind="retract", remove=tuple(tail), note=reason)
        record = self.apply(RETRACT, Proposal(edits=(edit,)), reason)
        if isinstance(record, str):
            raise UsageError(f"cannot retract the last {count} items: {record}")
        return tuple(self.log.recall(i) for i in tail)

    def _forget(self, removed: set[str]) -> None:
        """After a retraction: the door and the schedule no longer know the items."""
        self.intake.door.forget([self.log.recall(i) for i in removed], self.view.items)
        self.fresh = [i for i in self.fresh if i not in removed]
        self.answered = [i for i in self.answered if i not in removed]
        if self.reply in removed:
            self.reply = None

    def _in_view(self, item_id: str, successors: Mapping[str, str]) -> str | None:
        """The id of what ``item_id`` is in the view now: itself, or what one-for-one edits
        (``successors``: door cleaning, digests) put in its place; None when it was merged
        or dropped."""
        while self.view.position(item_id) is None:
            successor = successors.get(item_id)
            if successor is None:
                return None
            item_id = successor
        return item_id

    def check_room(self, items: Sequence[Item]) -> None:
        """Refuse ``items`` that could never fit the window (:func:`~.room.check_room`)."""
        check_room(
            items,
            usable=self.accountant.ledger.allocation.usable,
            base=lambda: self.fixed_tokens() + sum(self.count(i) for i in self.view if i.pinned),
            count=lambda batch: self.accountant.counter.count_items(batch).tokens,
            fixed=lambda i: i.pinned or self.kinds.get(i.component) is ComponentKind.FIXED,
        )

    def add(self, item: Item) -> int:
        """Append ``item`` to log, view and ledger; its tokens."""
        self.log.append(item)
        self.view.append(item)
        return self.accountant.add(item).tokens

    def at_door(self, item: Item) -> Item:
        """Run the door strategies on a new tool output (recorded, recallable); the version
        of it now in the view. Outputs and messages are then tracked until they are frozen."""
        observation = bool(item.tool_results) or is_text_observation(item)
        if not observation:
            if item.role == "assistant":
                self.answered.extend(self.fresh)  # the agent has read them: digest them next
                self.fresh = []
                if self.reply is not None:
                    self.answered.append(self.reply)  # and moved on from its last message
                self.reply = item.id
            return item
        exempt = item.tool_results and all(r.call_id in self.exempt for r in item.tool_results)
        for name, runner in () if exempt else self.cascade.door:
            view = CompactionInput(items=(item,), count=self.count, need=0, keep_last=0)
            proposal = runner(view)
            if not proposal.edits:
                continue
            record = self.apply(name, proposal, "new tool output, at the door")
            if not isinstance(record, str):
                self.pending.append(record)
                item = record.edits[-1].insert[-1]
        self.fresh.append(item.id)
        return item

    def freeze_answered(self) -> CascadeOutcome:
        """Digest the tool outputs, and shorten the messages, the agent has answered since
        the last request (each once: a frozen block never changes again)."""
        outcome = CascadeOutcome()
        answered, self.answered = self.answered, []
        runners = [
            (name, runner, reason)
            for name, runner, reason in (
                ("shorten", self.cascade.shorten, "message answered: prose lines dropped"),
                ("digest", self.cascade.digest, "tool output answered: frozen as a digest"),
            )
            if runner is not None
        ]
        starts = [p for p in (self.view.position(i) for i in answered) if p is not None]
        if not runners or not starts:
            return outcome
        for name, runner, reason in runners:
            view = CompactionInput(
                items=self.view.tail(min(starts)), count=self.count, need=0, kinds=self.kinds
            )
            proposal = runner(view)
            if not proposal.edits:
                continue
            record = self.apply(name, proposal, reason)
            if isinstance(record, str):
                outcome.failures.append(f"{name}: edits rejected: {record}")
            else:
                outcome.records.append(record)
        return outcome

    def next_edit(self) -> str | None:
        """Id of the first view item the schedule will change on the next request (the
        agent's latest message, or the oldest unanswered output big enough to digest)."""
        short, config = self.cascade.shorten_config, self.cascade.digest_config
        if short is not None and self.reply is not None:
            at = self.view.position(self.reply)
            if at is not None and would_shorten(short, self.view[at]):
                return self.reply
        if config is None:
            return None
        for item_id in self.fresh:
            if self.view.position(item_id) is not None and worth_digesting(
                config, self.accountant.count(item_id).tokens
            ):
                return item_id
        return None

    # -- when and what ------------------------------------------------------------------------

    def plan(self, limit: int, now: float, early: Trigger | None) -> tuple[Trigger | None, str]:
        """Whether to compact now (the trigger) and, if it would not pay, why it waits.

        ``early`` is a trigger of the health actions (history over its share), used when
        the watermarks do not fire.
        """
        allocation = self.accountant.ledger.allocation
        trig = (
            trigger(
                self.total(),
                high=min(allocation.high_watermark, limit),
                low=min(allocation.low_watermark, limit),
                usable=limit,
            )
            or early
        )
        if trig is None or self.total() > limit:
            return trig, ""
        economics = self.gate.judge(
            freed=self.total() - trig.target,
            rewritten=max(trig.target - self.fixed_tokens(), 0),
            cached=self.cache_warm(now),
            horizon=expected_turns(self.turns, self.horizon),
        )
        if not self.gate.pays(economics) and economics is not None:
            return None, economics.describe()
        return trig, ""

    def run(self, trig: Trigger) -> CascadeOutcome:
        """The cascade down to ``trig``'s target; reset, then squeeze, if it still won't fit
        (``strict``: raise :class:`ContextOverflow` instead of resetting)."""
        cascade = self.cascade
        if self.strict:
            outcome = run_cascade(self, cascade.steps, trig, reset=None)
            if self.total() > trig.limit:
                raise self.overflow(self.total(), trig.limit)
            return outcome
        outcome = run_cascade(self, cascade.steps, trig, reset=cascade.reset)
        for _ in range(_MAX_SQUEEZES):
            over = self.total() - trig.limit
            if over <= 0:
                break
            view = self.compaction_input(over, last_resort=True)
            edit = squeeze_edit(dataclasses.replace(view, keep_last=0), self.tokenizer)
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

    def compact_if_pays(self, now: float) -> CascadeOutcome:
        """Below the watermark: clear old tool results once carrying them cost a rewrite.

        Not with digests: what they leave is small and final, and clearing it would rewrite
        the cached suffix for crumbs (and lose the references the digests kept)."""
        outcome = CascadeOutcome()
        if self.gate.prices is None or self.cache.rules.mode == "none":
            return outcome
        if self.cascade.digest is not None:
            return outcome
        clearable = self.clearable()
        self.rent.pay(clearable)
        if clearable < MIN_CLEAR_TOKENS or not self.rent.due():
            return outcome
        cached = self.cache_warm(now)
        new_tokens = max(self.total() - self.sent, 0)  # not cached yet: no rewrite
        best: tuple[float, str, Proposal, Decimal] | None = None
        for name, runner in self.cascade.steps:
            if name not in _MECHANICAL:
                continue
            proposal = runner(self.compaction_input(self.total(), last_resort=False))
            if not proposal.edits:
                continue
            effect = proposal_effect(self.view.items, proposal.edits, self.count)
            if effect.freed < MIN_CLEAR_TOKENS:
                continue  # not worth losing detail for
            rewrite = self.gate.rewrite_cost(max(effect.rewritten - new_tokens, 0), cached=cached)
            ratio = effect.freed / max(effect.rewritten, 1)
            if best is None or ratio > best[0]:
                best = (ratio, name, proposal, rewrite)
        if best is None:
            self.rent.postpone()
            return outcome
        if not self.rent.buys(best[3]):
            return outcome
        _, name, proposal, rewrite = best
        reason = (
            f"clearing pays: ${self.rent.rent:.4f} spent re-reading clearable tokens "
            f">= ${rewrite:.4f} to rewrite the prefix"
        )
        record = self.apply(name, proposal, reason)
        if isinstance(record, str):
            outcome.failures.append(f"{name}: edits rejected: {record}")
        else:
            outcome.records.append(record)
            self.rent.bought()
        return outcome

    def presummarize(self) -> None:
        """Past ``presummarize_at``, start summarizing what the next compaction will need."""
        pre, config = self.cascade.pre, self.cascade.summarize
        if pre is None or config is None or self.presummarize_at is None:
            return
        allocation = self.accountant.ledger.allocation
        if self.total() < self.presummarize_at * allocation.usable:
            return
        # a little more than a compaction from the high watermark needs, so it still covers
        # the selection when the watermark is crossed a few messages later
        need = (allocation.high_watermark - allocation.low_watermark) * 5 // 4
        request = summary_request(config, self.compaction_input(need, last_resort=False))
        if request is not None:
            pre.start(request)

    def overflow(self, tokens: int, limit: int) -> ContextOverflow:
        """The error for a request of ``tokens`` that cannot be brought under ``limit``."""
        snapshot = self.accountant.snapshot()
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

    # -- measures of the view -------------------------------------------------------------

    def count(self, item: Item) -> int:
        """Tokens of ``item`` (the counter's cache; no ledger lookup)."""
        return self.accountant.counter.count_item(item).tokens

    def clearable(self) -> int:
        """Tokens of tool results a clearing could free (all but the newest few); a running
        sum, so asking costs only what changed since the last time."""
        return self._clearable(self.view, self.count, self.accountant.counter.factor)

    def fixed_tokens(self) -> int:
        """Tokens that survive any compaction: fixed components, tools, request overhead."""
        return sum(
            row.used
            for row in self.accountant.snapshot().components
            if self.kinds.get(row.component) is ComponentKind.FIXED
        )

    def cache_warm(self, now: float) -> bool:
        """Whether the provider cache should still hold the last request's prefix."""
        return self.cache.rules.mode != "none" and self.cache.state.is_warm(now)

    def task(self) -> str:
        """The first and the latest user request: what summaries must keep in view."""
        users = [
            i
            for i in self.view
            if i.role == "user" and untrusted_source(i) is None and not is_summary(i)
        ]
        if not users:
            return ""
        first, last = item_text(users[0]), item_text(users[-1])
        return first if first == last else f"{first}\n{last}"


def _removed(record: CompactionRecord) -> tuple[str, ...]:
    return tuple(i for edit in record.edits for i in edit.remove)
