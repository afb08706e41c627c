"""Context health, the telemetry half of :class:`~ctxbudget.manager.ContextManager`.

The manager publishes a metrics record per prepared call, reports its decay signals, and
acts on them (restating the system constraints, narrowing unused knowledge, compacting
history early). Kept apart from the manager's request path so each stays readable; the
manager mixes it in and provides the state declared below.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctxbudget.accounting import Accountant
from ctxbudget.convert.request import requested_output
from ctxbudget.items import Component, Item
from ctxbudget.log import CompactionRecord, Edit, SessionLog
from ctxbudget.planner import CascadeOutcome, Trigger
from ctxbudget.strategies.base import Proposal
from ctxbudget.telemetry.alerts import AlertMonitor
from ctxbudget.telemetry.history import MetricsHistory
from ctxbudget.telemetry.observer import CallFacts, Decision, SessionObserver
from ctxbudget.telemetry.signals import Signals, constraint_distance, is_reminder, reminder_item
from ctxbudget.view import View

if TYPE_CHECKING:
    from ctxbudget.ledger import LedgerSnapshot
    from ctxbudget.manager import PrepareReport

__all__ = ["ContextHealth"]


class ContextHealth:
    """Metrics, signals and the actions on them, for a manager that provides the state."""

    accountant: Accountant
    view: View
    log: SessionLog
    _observer: SessionObserver
    _pending: list[CompactionRecord]
    _turns: int
    _distance: int | None

    def snapshot(self) -> LedgerSnapshot:
        raise NotImplementedError

    def total(self) -> int:
        raise NotImplementedError

    def apply(self, strategy: str, proposal: Proposal, reason: str) -> CompactionRecord | str:
        raise NotImplementedError

    def _add(self, item: Item) -> None:
        raise NotImplementedError

    @property
    def metrics(self) -> MetricsHistory:
        """One :class:`~ctxbudget.telemetry.CallMetrics` per prepared call; ``subscribe`` a
        callback (or an exporter) to receive each record as it is published."""
        return self._observer.metrics

    @property
    def alerts(self) -> AlertMonitor:
        """Alert state: ``active``, ``history``, and ``subscribe`` for sinks."""
        return self._observer.alerts

    def signals(self) -> Signals:
        """Context health now: occupancy per component, constraint distance, retrieval and
        cache hit rates, and whether compaction, re-injection or narrowing is due."""
        observer, actions = self._observer, self._observer.actions
        allocation = self.accountant.ledger.allocation
        snapshot = self.snapshot()
        occupancy = {row.component.value: row.utilization for row in snapshot.components}
        distance = self._constraint_distance()
        hit_rate = observer.retrieval_hit_rate()
        reasons: list[str] = []
        compact = self.total() > allocation.high_watermark
        if compact:
            reasons.append(
                f"over the high watermark ({self.total():,} > {allocation.high_watermark:,})"
            )
        history = occupancy.get(Component.HISTORY.value)
        early = actions.compact_history_at
        if early is not None and history is not None and history >= early:
            compact = True
            reasons.append(f"history at {history:.0%} of its budget (>= {early:.0%})")
        reinject = actions.reinject_at is not None and distance > actions.reinject_at
        if reinject:
            reasons.append(f"constraints {distance:,} tokens back (> {actions.reinject_at:,})")
        below = actions.narrow_knowledge_below
        narrow = below is not None and hit_rate is not None and hit_rate < below
        if narrow:
            reasons.append(f"retrieval hit rate {hit_rate:.0%} (< {below:.0%})")
        return Signals(
            occupancy=occupancy,
            utilization=self.total() / allocation.usable if allocation.usable else 0.0,
            constraint_distance=distance,
            retrieval_hit_rate=hit_rate,
            cache_hit_rate=observer.cache_hit_rate(),
            compact_now=compact,
            reinject_constraints=reinject,
            narrow_knowledge=narrow,
            reasons=tuple(reasons),
        )

    def note_retrieval(self, retrieved: Sequence[str], used: Sequence[str]) -> None:
        """After a response: the knowledge item ids retrieved for it and those it used.

        Feeds the retrieval hit rate (``signals()``, the metrics records) and, with
        ``actions.narrow_knowledge_below``, which knowledge items leave the view.
        """
        self._observer.note_retrieval(retrieved, used)

    def note_routing(self, decision: Decision | Mapping[str, Any]) -> None:
        """The routing decision for the next call (an object with ``as_dict()`` or a dict);
        it is written into that call's metrics record so routing can be reviewed."""
        self._observer.note_routing(decision)

    def _record_call(
        self,
        report: PrepareReport,
        provider: str,
        *,
        options: Mapping[str, Any],
        wall: float,
        reinjected: bool,
        started: float,
    ) -> None:
        """Hand the prepared call to telemetry: the record, then the alert rules."""
        cost = report.predicted_cost
        reserve = self.accountant.ledger.allocation.output_reserve
        self._observer.prepared(
            CallFacts(
                turn=self._turns,
                time=wall,
                provider=provider,
                snapshot=report.after,
                input_tokens=report.input_tokens.tokens,
                exact=report.input_tokens.exact,
                limit=report.limit,
                before_tokens=report.before.total.tokens,
                records=report.records,
                predicted=report.predicted,
                predicted_cost=cost.input if cost is not None else None,
                max_output_tokens=requested_output(options, reserve),
                constraint_distance=self._constraint_distance(),
                reinjected=reinjected,
                prepare_seconds=time.perf_counter() - started,
            )
        )

    def _constraint_distance(self) -> int:
        """Tokens after the last system item or restatement; kept up to date on append,
        counted again after a compaction or a recalibration."""
        if self._distance is None:
            self._distance = constraint_distance(self.view.items, self._counted)
        return self._distance

    def _counted(self, item: Item) -> int:
        """An item of the view as the ledger counts it (no tokenization)."""
        return self.accountant.count(item.id).tokens

    def _reinject_constraints(self) -> bool:
        """Restate the system constraints once the generation point drifted past the
        threshold; the earlier restatement leaves the view (it stays in the log)."""
        actions = self._observer.actions
        if actions.reinject_at is None:
            return False
        if self._constraint_distance() <= actions.reinject_at:
            return False
        item = reminder_item(self.view.items, len(self.log), actions.reminder_chars)
        if item is None or item.id in self.log:
            return False
        old = [i.id for i in self.view.items if is_reminder(i)]
        self._add(item)
        if old:
            record = self.apply(
                "reinject",
                Proposal(edits=(Edit(kind="reinject", remove=tuple(old), note="restated"),)),
                "constraints restated at the generation point",
            )
            if not isinstance(record, str):
                self._pending.append(record)
        return True

    def _narrow_knowledge(self, outcome: CascadeOutcome) -> None:
        """Take retrieved knowledge no answer used out of the view while the hit rate is low."""
        below = self._observer.actions.narrow_knowledge_below
        rate = self._observer.retrieval_hit_rate()
        if below is None or rate is None or rate >= below:
            return
        unused = self._observer.unused_knowledge()
        ids = tuple(
            i.id for i in self.view.items if i.component is Component.KNOWLEDGE and i.id in unused
        )
        if not ids:
            return
        record = self.apply(
            "narrow_knowledge",
            Proposal(edits=(Edit(kind="hide", remove=ids, note="retrieved, never used"),)),
            f"retrieval hit rate {rate:.0%} < {below:.0%}",
        )
        if isinstance(record, str):
            outcome.failures.append(f"narrow_knowledge: {record}")
        else:
            outcome.records.append(record)

    def _history_trigger(self, limit: int) -> Trigger | None:
        """Compact early when history passes ``actions.compact_history_at`` of its budget."""
        share = self._observer.actions.compact_history_at
        if share is None:
            return None
        row = self.snapshot().row(Component.HISTORY)
        if not row.budget or row.used < share * row.budget:
            return None
        allocation = self.accountant.ledger.allocation
        keep = share * allocation.low_watermark / max(allocation.high_watermark, 1)
        excess = row.used - int(keep * row.budget)
        return Trigger(
            f"history at {row.used / row.budget:.0%} of its {row.budget:,}-token budget",
            target=max(self.total() - excess, 0),
            limit=limit,
        )
