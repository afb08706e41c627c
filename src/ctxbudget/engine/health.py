"""Context health, the manager's telemetry collaborator.

It publishes a metrics record per prepared call, reports the decay signals, and acts on
them (restating the system constraints, narrowing unused knowledge, compacting history
early) through the :class:`~ctxbudget.engine.compactor.Compactor`, whose view it reads.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ctxbudget.compaction.planner import CascadeOutcome, Trigger
from ctxbudget.compaction.strategies.base import Proposal
from ctxbudget.convert.request import requested_output
from ctxbudget.engine.compactor import Compactor
from ctxbudget.engine.report import PrepareReport
from ctxbudget.session.items import Component, ComponentKind, Item
from ctxbudget.session.log import Edit
from ctxbudget.telemetry.alerts import AlertMonitor
from ctxbudget.telemetry.history import MetricsHistory
from ctxbudget.telemetry.observer import CallFacts, Decision, SessionObserver
from ctxbudget.telemetry.signals import Signals, constraint_distance, is_reminder, reminder_item

__all__ = ["ContextHealth"]


class ContextHealth:
    """Metrics, signals and the actions on them, over one compactor's view."""

    def __init__(self, compactor: Compactor, observer: SessionObserver) -> None:
        self.compactor = compactor
        self.observer = observer
        self._distance: int | None = 0
        """Tokens since the system constraints were last stated (None: recount)."""
        self._edits = compactor.edits
        """Compactions applied when ``_distance`` was last right."""

    @property
    def metrics(self) -> MetricsHistory:
        """One :class:`~ctxbudget.telemetry.CallMetrics` per prepared call; ``subscribe`` a
        callback (or an exporter) to receive each record as it is published."""
        return self.observer.metrics

    @property
    def alerts(self) -> AlertMonitor:
        """Alert state: ``active``, ``history``, and ``subscribe`` for sinks."""
        return self.observer.alerts

    def signals(self) -> Signals:
        """Context health now: occupancy per component, constraint distance, retrieval and
        cache hit rates, and whether compaction, re-injection or narrowing is due."""
        observer, actions = self.observer, self.observer.actions
        allocation = self.compactor.accountant.ledger.allocation
        snapshot = self.compactor.accountant.snapshot()
        occupancy = {row.component.value: row.utilization for row in snapshot.components}
        distance = self.constraint_distance()
        hit_rate = observer.retrieval_hit_rate()
        reasons: list[str] = []
        total = self.compactor.total()
        compact = total > allocation.high_watermark
        if compact:
            reasons.append(f"over the high watermark ({total:,} > {allocation.high_watermark:,})")
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
            utilization=self.compactor.total() / allocation.usable if allocation.usable else 0.0,
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
        self.observer.note_retrieval(retrieved, used)

    def note_routing(self, decision: Decision | Mapping[str, Any]) -> None:
        """The routing decision for the next call (an object with ``as_dict()`` or a dict);
        it is written into that call's metrics record so routing can be reviewed."""
        self.observer.note_routing(decision)

    def record_call(
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
        reserve = self.compactor.accountant.ledger.allocation.output_reserve
        self.observer.prepared(
            CallFacts(
                turn=self.compactor.turns,
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
                constraint_distance=self.constraint_distance(),
                reinjected=reinjected,
                prepare_seconds=time.perf_counter() - started,
            )
        )

    def constraint_distance(self) -> int:
        """Tokens after the last system item or restatement; kept up to date on append,
        counted again after a compaction or a recalibration."""
        if self._distance is None or self._edits != self.compactor.edits:
            self._distance = constraint_distance(self.compactor.view.items, self._counted)
            self._edits = self.compactor.edits
        return self._distance

    def added(self, item: Item, tokens: int) -> None:
        """``item`` (``tokens`` long) entered the view: the constraints are that much further
        back, or just stated."""
        if self._edits != self.compactor.edits:
            self._distance = None  # a compaction changed the view since the last count
        if item.role == "system" or is_reminder(item):
            self._distance, self._edits = 0, self.compactor.edits
        elif self._distance is not None:
            self._distance += tokens

    def recount(self) -> None:
        """Counts were re-scaled (calibration): count the distance again when next asked."""
        self._distance = None

    def _counted(self, item: Item) -> int:
        """An item of the view as the ledger counts it (no tokenization)."""
        return self.compactor.accountant.count(item.id).tokens

    def reinject_constraints(self) -> bool:
        """Restate the system constraints once the generation point drifted past the
        threshold; the earlier restatement leaves the view (it stays in the log)."""
        actions = self.observer.actions
        if actions.reinject_at is None:
            return False
        if self.constraint_distance() <= actions.reinject_at:
            return False
        item = reminder_item(
            self.compactor.view.items, len(self.compactor.log), actions.reminder_chars
        )
        if item is None or item.id in self.compactor.log:
            return False
        old = [i.id for i in self.compactor.view.items if is_reminder(i)]
        self.added(item, self.compactor.add(item))
        if old:
            record = self.compactor.apply(
                "reinject",
                Proposal(edits=(Edit(kind="reinject", remove=tuple(old), note="restated"),)),
                "constraints restated at the generation point",
            )
            if not isinstance(record, str):
                self.compactor.pending.append(record)
        return True

    def narrow_knowledge(self, outcome: CascadeOutcome) -> None:
        """Take retrieved knowledge no answer used out of the view while the hit rate is low."""
        below = self.observer.actions.narrow_knowledge_below
        rate = self.observer.retrieval_hit_rate()
        if below is None or rate is None or rate >= below:
            return
        unused = self.observer.unused_knowledge()
        ids = tuple(
            i.id
            for i in self.compactor.view.items
            if i.component is Component.KNOWLEDGE and i.id in unused
        )
        if not ids:
            return
        record = self.compactor.apply(
            "narrow_knowledge",
            Proposal(edits=(Edit(kind="hide", remove=ids, note="retrieved, never used"),)),
            f"retrieval hit rate {rate:.0%} < {below:.0%}",
        )
        if isinstance(record, str):
            outcome.failures.append(f"narrow_knowledge: {record}")
        else:
            outcome.records.append(record)

    def budget_trigger(self, limit: int) -> Trigger | None:
        """Compact when a prunable component is over its budget (history: over
        ``actions.compact_history_at`` of it, when set): budgets bind, not only the total.

        The component furthest over sets the target: the total less its excess over
        low/high watermark of its budget (the same hysteresis as the window's).
        """
        accountant = self.compactor.accountant
        allocation = accountant.ledger.allocation
        settle = allocation.low_watermark / max(allocation.high_watermark, 1)
        worst: tuple[int, str] | None = None
        for row in accountant.snapshot().components:
            kind = self.compactor.kinds.get(row.component, ComponentKind.PRUNABLE)
            if not row.budget or kind is not ComponentKind.PRUNABLE:
                continue
            share = 1.0
            if row.component is Component.HISTORY:
                share = self.observer.actions.compact_history_at or 1.0
            if row.used <= share * row.budget:
                continue
            excess = row.used - int(share * settle * row.budget)
            if worst is None or excess > worst[0]:
                name = row.component.value
                worst = (
                    excess,
                    f"{name} at {row.used / row.budget:.0%} of its {row.budget:,}-token budget",
                )
        if worst is None:
            return None
        return Trigger(worst[1], target=max(self.compactor.total() - worst[0], 0), limit=limit)
