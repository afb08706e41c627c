"""What the manager hands telemetry on every call: the state the records and signals need.

The :class:`SessionObserver` is the manager's telemetry half: it remembers what the ledger
does not (tokens ever appended, the prefix each compaction rewrote, retrieval usage, the
pending routing decision), turns each prepared call into a :class:`CallMetrics`, publishes it,
and runs the alert rules on the history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from ctxbudget.billing.usage import Usage
from ctxbudget.budget.ledger import LedgerSnapshot
from ctxbudget.errors import UsageError
from ctxbudget.session.log import CompactionRecord
from ctxbudget.telemetry.alerts import AlertMonitor, AlertRules
from ctxbudget.telemetry.history import MetricsHistory
from ctxbudget.telemetry.record import (
    CallMetrics,
    CompactionMetrics,
    ComponentMetrics,
    cache_hit_share,
)
from ctxbudget.telemetry.signals import RetrievalTurn, SignalActions, retrieval_hit_rate

__all__ = ["CallFacts", "Decision", "SessionObserver"]


class Decision(Protocol):
    """A routing decision: anything that can describe itself as a dict."""

    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFacts:
    """What the manager knows about a call it just prepared."""

    turn: int
    time: float
    provider: str
    snapshot: LedgerSnapshot
    input_tokens: int
    exact: bool
    limit: int
    before_tokens: int
    records: tuple[CompactionRecord, ...]
    predicted: Usage | None
    predicted_cost: Decimal | None
    max_output_tokens: int
    constraint_distance: int
    reinjected: bool
    prepare_seconds: float


class SessionObserver:
    """Metrics history, alerts and the signal inputs of one session."""

    def __init__(
        self,
        session_id: str,
        model: str,
        *,
        alerts: AlertRules | None = None,
        actions: SignalActions | None = None,
    ) -> None:
        self.session_id, self.model = session_id, model
        self.metrics = MetricsHistory()
        self.alerts = AlertMonitor(alerts)
        self.actions = actions or SignalActions()
        self.compacted_tokens = 0
        """Tokens compaction took out of the view so far, net of what it inserted."""
        self.retrieval: list[RetrievalTurn] = []
        self._rewritten: dict[int, int] = {}
        self._routing: dict[str, Any] | None = None
        self.spent = Decimal(0)
        """The session's cost so far: billed where known, else predicted input (USD)."""

    # -- inputs ---------------------------------------------------------------------------

    def rewrote(self, record: CompactionRecord, tokens: int) -> None:
        """``record`` changed the view ``tokens`` before its end: that prefix is written again."""
        self._rewritten[id(record)] = tokens

    def note_retrieval(self, retrieved: Sequence[str], used: Sequence[str]) -> None:
        """One turn's retrieved knowledge item ids and the ones its answer used."""
        retrieved, used = _ids("retrieved", retrieved), _ids("used", used)
        stray = sorted(set(used) - set(retrieved))
        if stray:
            raise UsageError(
                f"used ids {stray} were not retrieved this turn; pass the ids of the knowledge "
                "items the answer used, a subset of the retrieved ones"
            )
        self.retrieval.append(RetrievalTurn(retrieved=retrieved, used=used))

    def note_routing(self, decision: Decision | Mapping[str, Any]) -> None:
        """The routing decision for the next prepared call."""
        if isinstance(decision, Mapping):
            self._routing = dict(decision)
        elif callable(getattr(decision, "as_dict", None)):
            self._routing = dict(decision.as_dict())
        else:
            raise UsageError(
                f"note_routing() takes a mapping or an object with as_dict(), got {decision!r}"
            )

    # -- signals --------------------------------------------------------------------------

    def retrieval_hit_rate(self) -> float | None:
        """Used over retrieved knowledge, over the signal window."""
        return retrieval_hit_rate(self.retrieval, self.actions.window)

    def cache_hit_rate(self) -> float | None:
        """Cache-read share of the input over the signal window (billed where known)."""
        return cache_hit_share(self.metrics.window(self.actions.window))

    def unused_knowledge(self) -> set[str]:
        """Knowledge ids retrieved within the window that no answer used."""
        recent = [t for t in self.retrieval if t.retrieved][-self.actions.window :]
        used = {i for t in recent for i in t.used}
        return {i for t in recent for i in t.retrieved} - used

    # -- records --------------------------------------------------------------------------

    def prepared(self, facts: CallFacts) -> CallMetrics:
        """Publish the record of a call just prepared, and judge the alerts."""
        kinds = {row.component: row.kind.value for row in facts.snapshot.components}
        self.compacted_tokens += sum(r.freed for r in facts.records)
        record = CallMetrics(
            session_id=self.session_id,
            turn=facts.turn,
            stage="prepared",
            time=facts.time,
            model=self.model,
            provider=facts.provider,
            components=tuple(
                ComponentMetrics(
                    component=row.component.value,
                    kind=kinds[row.component],
                    used=row.used,
                    budget=row.budget,
                )
                for row in facts.snapshot.components
            ),
            input_tokens=facts.input_tokens,
            exact=facts.exact,
            limit=facts.limit,
            before_tokens=facts.before_tokens,
            compactions=tuple(
                CompactionMetrics(
                    strategy=r.strategy,
                    freed=r.freed,
                    rewritten=self._rewritten.pop(id(r), 0),
                    reason=r.reason,
                )
                for r in facts.records
            ),
            predicted=facts.predicted,
            predicted_cost=facts.predicted_cost,
            max_output_tokens=facts.max_output_tokens,
            compacted_tokens=self.compacted_tokens,
            constraint_distance=facts.constraint_distance,
            retrieval_hit_rate=self.retrieval_hit_rate(),
            reinjected=facts.reinjected,
            routing=self._routing,
            prepare_seconds=facts.prepare_seconds,
        )
        self._routing = None
        self._publish(record)
        return record

    def billed(self, usage: Usage, cost: Decimal | None) -> CallMetrics:
        """Publish the newest record again with what the provider billed."""
        last = self.metrics.last
        if last is None:
            raise UsageError("no prepared call to attach billed usage to; call prepare() first")
        record = dataclasses.replace(last, stage="billed", billed=usage, billed_cost=cost)
        self._publish(record)
        return record

    def _publish(self, record: CallMetrics) -> None:
        previous = self.metrics.last
        if previous is not None and previous.turn == record.turn and previous.cost is not None:
            self.spent -= previous.cost
        if record.cost is not None:
            self.spent += record.cost
        self.metrics.publish(record)
        window = self.metrics.window(self.alerts.rules.window)
        self.alerts.evaluate(window, session_cost=self.spent)


def _ids(name: str, ids: Sequence[str]) -> tuple[str, ...]:
    if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
        raise UsageError(f"{name} must be a sequence of item id strings, got {ids!r}")
    return tuple(ids)
