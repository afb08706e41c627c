"""The proxy's Prometheus metrics, in its own registry (never the process-global one).

Beside the context metrics of every session it serves (the telemetry exporter, unlabelled
by session so a fleet of short sessions does not explode the series), the proxy counts its
requests by API, mode and status, and times what it adds before the upstream is called.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from ctxbudget.telemetry.prometheus import PrometheusExporter

__all__ = ["ProxyMetrics"]

_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ProxyMetrics:
    """Request counts, added latency and the sessions' context metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions = PrometheusExporter(self.registry, session_label=False)
        """Subscribe each session's ``metrics`` and ``alerts`` to it."""
        self._requests = Counter(
            "proxy_requests",
            "Requests answered",
            ["api", "mode", "status"],
            namespace="ctxbudget",
            registry=self.registry,
        )
        self._overhead = Histogram(
            "proxy_overhead_seconds",
            "Time from the request's arrival to the upstream call",
            ["api", "mode"],
            namespace="ctxbudget",
            registry=self.registry,
            buckets=_BUCKETS,
        )

    def request(self, api: str, mode: str, status: int) -> None:
        """Count one answered request."""
        self._requests.labels(api, mode, str(status)).inc()

    def overhead(self, api: str, mode: str, seconds: float) -> None:
        """Record what the proxy added before calling the upstream."""
        self._overhead.labels(api, mode).observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        return bytes(generate_latest(self.registry))
