"""Telemetry: a metrics record per prepared call, decay signals, alerts and exporters.

Beside ``store``: may import ``compaction`` and the core below; never the engine.

The manager publishes one :class:`CallMetrics` per ``prepare`` (again once the billed usage
is observed) to ``manager.metrics``; ``manager.alerts`` judges them; exporters and sinks are
plain callables to ``subscribe``: :class:`JsonLogSink` (standard ``logging``),
:class:`WebhookSink` (alerts as JSON POSTs), and, with their extras installed,
``ctxbudget.telemetry.otel.OTelExporter`` and ``ctxbudget.telemetry.prometheus.PrometheusExporter``.
"""

from ctxbudget.telemetry.alerts import Alert, AlertMonitor, AlertRules, Level
from ctxbudget.telemetry.history import MetricsHistory
from ctxbudget.telemetry.record import CallMetrics, CompactionMetrics, ComponentMetrics
from ctxbudget.telemetry.signals import SignalActions, Signals
from ctxbudget.telemetry.sinks import JsonLogSink, WebhookSink, json_lines_handler

__all__ = [
    "Alert",
    "AlertMonitor",
    "AlertRules",
    "CallMetrics",
    "CompactionMetrics",
    "ComponentMetrics",
    "JsonLogSink",
    "Level",
    "MetricsHistory",
    "SignalActions",
    "Signals",
    "WebhookSink",
    "json_lines_handler",
]
