"""Prometheus exposition of the metrics records (``prometheus-client``, the ``prometheus`` extra).

Subscribe a :class:`PrometheusExporter` to ``manager.metrics`` (and its :meth:`alert` to
``manager.alerts``); :meth:`PrometheusExporter.serve` starts the scrape endpoint. Metrics
live in the exporter's own registry, never the process-global one, so several exporters
(and tests) do not collide. Series are labelled by session; pass ``session_label=False``
for fleets with many short sessions.
"""

from __future__ import annotations

from threading import Thread
from typing import Any

from ctxbudget.errors import ConfigError
from ctxbudget.telemetry.alerts import Alert
from ctxbudget.telemetry.record import CallMetrics

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
    from prometheus_client.exposition import generate_latest
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        "Prometheus export needs the prometheus extra: pip install 'ctxbudget[prometheus]'"
    ) from exc

__all__ = ["PrometheusExporter"]


class PrometheusExporter:
    """Gauges and counters of context health, tokens and cost, in one registry."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace: str = "ctxbudget",
        session_label: bool = True,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        """The registry the metrics are in (scrape it, or pass it to your own server)."""
        self._session_label = session_label
        labels = ["session"] if session_label else []
        ns = namespace

        def gauge(name: str, doc: str, *more: str) -> Gauge:
            return Gauge(name, doc, [*labels, *more], namespace=ns, registry=self.registry)

        def counter(name: str, doc: str, *more: str) -> Counter:
            return Counter(name, doc, [*labels, *more], namespace=ns, registry=self.registry)

        self._tokens = gauge("context_tokens", "Tokens per component", "component", "count")
        self._budget = gauge("context_budget_tokens", "Budget per component", "component")
        self._utilization = gauge("context_utilization_ratio", "Input over the input limit")
        self._distance = gauge(
            "constraint_distance_tokens", "Tokens since the constraints were last stated"
        )
        self._cache = gauge("cache_hit_ratio", "Cache-read share of the input", "usage")
        self._compression = gauge("compression_ratio", "Logged tokens over prepared tokens")
        self._retrieval = gauge("retrieval_hit_ratio", "Used share of retrieved knowledge")
        self._calls = counter("prepared_calls", "Calls prepared")
        self._compactions = counter("compactions", "Compactions applied", "strategy")
        self._freed = counter("compaction_freed_tokens", "Tokens compaction freed", "strategy")
        self._rewritten = counter(
            "compaction_rewritten_tokens", "Cached prefix tokens written again", "strategy"
        )
        self._billed = counter("billed_tokens", "Tokens billed", "type")
        self._cost = counter("cost_usd", "Billed cost (USD)")
        self._alerts = counter("alerts", "Alerts fired", "name", "level")

    def __call__(self, record: CallMetrics) -> None:
        own = self._labels(record.session_id)
        if record.stage == "billed":
            self._on_billed(record, own)
            return
        _series(self._calls, own).inc()
        count = "exact" if record.exact else "estimate"
        for row in record.components:
            self._tokens.labels(**own, component=row.component, count=count).set(row.used)
            if row.budget is not None:
                self._budget.labels(**own, component=row.component).set(row.budget)
        _series(self._utilization, own).set(record.utilization)
        _series(self._distance, own).set(record.constraint_distance)
        _series(self._compression, own).set(record.compression_ratio)
        if record.cache_hit_rate is not None:
            self._cache.labels(**own, usage="predicted").set(record.cache_hit_rate)
        if record.retrieval_hit_rate is not None:
            _series(self._retrieval, own).set(record.retrieval_hit_rate)
        for c in record.compactions:
            self._compactions.labels(**own, strategy=c.strategy).inc()
            self._freed.labels(**own, strategy=c.strategy).inc(c.freed)
            self._rewritten.labels(**own, strategy=c.strategy).inc(c.rewritten)

    def alert(self, alert: Alert) -> None:
        """Count a fired alert (subscribe this to ``manager.alerts``)."""
        if alert.state == "firing":
            own = self._labels(alert.session_id)
            self._alerts.labels(**own, name=alert.name, level=alert.level).inc()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format, as a scrape would return it."""
        return bytes(generate_latest(self.registry))

    def serve(self, port: int, addr: str = "127.0.0.1") -> tuple[Any, Thread]:
        """Start the ``/metrics`` endpoint on ``addr:port`` (0: any free port); returns the
        server (``server.server_port``; ``server.shutdown()`` stops it) and its thread."""
        server, thread = start_http_server(port, addr=addr, registry=self.registry)
        return server, thread

    def _on_billed(self, record: CallMetrics, own: dict[str, str]) -> None:
        usage = record.billed
        if usage is None:
            return
        for kind, tokens in (
            ("input", usage.input_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
            ("output", usage.output_tokens),
        ):
            self._billed.labels(**own, type=kind).inc(tokens)
        if usage.input_tokens:
            rate = usage.cache_read_tokens / usage.input_tokens
            self._cache.labels(**own, usage="billed").set(rate)
        if record.billed_cost is not None:
            _series(self._cost, own).inc(float(record.billed_cost))

    def _labels(self, session: str) -> dict[str, str]:
        return {"session": session} if self._session_label else {}


def _series(metric: Any, labels: dict[str, str]) -> Any:
    """The metric's child for ``labels``, or the metric itself when it has none."""
    return metric.labels(**labels) if labels else metric
