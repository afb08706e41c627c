"""The metrics history of one session: one record per turn, iterable, with subscribers.

A record is published when its request is prepared and again when its billed usage comes
in; the history keeps the newest version of each turn, subscribers see both. A subscriber
that raises is logged and kept, so a broken exporter never stops the agent.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator

from ctxbudget.errors import ConfigError
from ctxbudget.telemetry.record import CallMetrics

__all__ = ["MetricsHistory", "MetricsSink"]

MetricsSink = Callable[[CallMetrics], None]
_log = logging.getLogger("ctxbudget.telemetry")


class MetricsHistory:
    """Records of the newest ``maxlen`` turns (all of them when ``maxlen`` is None)."""

    def __init__(self, maxlen: int | None = 10_000) -> None:
        if maxlen is not None and (isinstance(maxlen, bool) or maxlen < 1):
            raise ConfigError(f"maxlen must be a positive number of turns or None, got {maxlen!r}")
        self._records: deque[CallMetrics] = deque(maxlen=maxlen)
        self._sinks: list[MetricsSink] = []

    def __iter__(self) -> Iterator[CallMetrics]:
        return iter(tuple(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> CallMetrics:
        return self._records[index]

    @property
    def last(self) -> CallMetrics | None:
        """The newest record, if any."""
        return self._records[-1] if self._records else None

    def window(self, turns: int) -> tuple[CallMetrics, ...]:
        """The newest ``turns`` records, oldest first."""
        start = max(len(self._records) - turns, 0)
        return tuple(self._records[i] for i in range(start, len(self._records)))

    def subscribe(self, sink: MetricsSink) -> None:
        """Call ``sink`` with every record published from now on (both stages)."""
        self._sinks.append(sink)

    def unsubscribe(self, sink: MetricsSink) -> None:
        """Stop calling ``sink``."""
        self._sinks.remove(sink)

    def publish(self, record: CallMetrics) -> None:
        """Add a turn's record, or replace that turn's earlier stage, then tell subscribers."""
        if self._records and self._records[-1].turn == record.turn:
            self._records[-1] = record
        else:
            self._records.append(record)
        for sink in list(self._sinks):
            try:
                sink(record)
            except Exception:  # a broken exporter must not stop the agent; it is logged
                _log.exception("metrics sink %r failed on turn %d", sink, record.turn)
