"""Exporters read back through the real tools: the OpenTelemetry SDK's in-memory reader and
span exporter, a real HTTP scrape of the Prometheus endpoint, ``logging`` to a file, and
webhook alerts received by a local HTTP server."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from _require import require_module  # skips, or fails under CI, before the imports below
from ctxbudget import ContextManager, Usage
from ctxbudget.telemetry import AlertRules, JsonLogSink, WebhookSink, json_lines_handler
from test_manager import agent, exchange, output

# ruff: noqa: E402
require_module("opentelemetry.sdk", "otel")
require_module("prometheus_client", "prometheus")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from prometheus_client.parser import text_string_to_metric_families

from ctxbudget.telemetry.otel import OTelExporter
from ctxbudget.telemetry.prometheus import PrometheusExporter

BILLED = [
    Usage(input_tokens=900, cache_read_tokens=0, output_tokens=50),
    Usage(input_tokens=1500, cache_read_tokens=800, output_tokens=70),
    Usage(input_tokens=2100, cache_read_tokens=1400, output_tokens=90),
]


def session(mgr: ContextManager) -> None:
    """Three calls, each billed, with an exchange appended after each."""
    for step, usage in enumerate(BILLED, start=1):
        mgr.prepare()
        mgr.observe_usage(usage)
        mgr.extend(exchange(step, output(step)))


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_otel_metrics_and_spans_follow_the_genai_conventions() -> None:
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    mgr = agent(window=8_000, session_id="otel-1")
    mgr.metrics.subscribe(OTelExporter(MeterProvider(metric_readers=[reader]), tracer_provider))
    session(mgr)

    usage = {
        p.attributes["gen_ai.token.type"]: p for p in points(reader, "gen_ai.client.token.usage")
    }
    assert usage["input"].sum == sum(u.input_tokens for u in BILLED)
    assert usage["output"].sum == sum(u.output_tokens for u in BILLED)
    assert usage["input"].count == 3
    attributes = usage["input"].attributes
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.conversation.id"] == "otel-1"

    last = mgr.metrics.last
    assert last is not None
    tokens = {
        p.attributes["ctxbudget.component"]: p.value
        for p in points(reader, "ctxbudget.context.tokens")
    }
    assert tokens == {c.component: c.used for c in last.components}
    (utilization,) = points(reader, "ctxbudget.context.utilization")
    assert utilization.value == pytest.approx(last.utilization)
    (cost,) = points(reader, "ctxbudget.billing.cost")
    assert cost.value == pytest.approx(float(mgr.cost.total))  # type: ignore[union-attr]

    finished = spans.get_finished_spans()
    chats = [s for s in finished if s.name == "chat gpt-4o"]
    assert len(chats) == 3
    assert [s.attributes["gen_ai.usage.input_tokens"] for s in chats] == [  # type: ignore[index]
        u.input_tokens for u in BILLED
    ]
    assert chats[1].attributes["gen_ai.usage.cache_read.input_tokens"] == 800  # type: ignore[index]
    prepares = [s for s in finished if s.name == "ctxbudget.prepare"]
    assert len(prepares) == 3
    assert prepares[0].attributes["ctxbudget.turn"] == 1  # type: ignore[index]


@pytest.fixture
def scrape() -> Iterator[PrometheusExporter]:
    exporter = PrometheusExporter()
    server, thread = exporter.serve(0)
    exporter.port = server.server_port  # type: ignore[attr-defined]
    yield exporter
    server.shutdown()
    thread.join(5)


def read_scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_prometheus_endpoint_serves_what_the_records_say(scrape: PrometheusExporter) -> None:
    mgr = agent(window=6_000, session_id="prom-1", alerts=AlertRules(utilization=((0.2, "info"),)))
    mgr.metrics.subscribe(scrape)
    mgr.alerts.subscribe(scrape.alert)
    session(mgr)
    for step in range(4, 14):
        mgr.prepare()
        mgr.extend(exchange(step, output(step)))

    got = read_scrape(scrape.port)  # type: ignore[attr-defined]
    s = (("session", "prom-1"),)
    last = mgr.metrics.last
    assert last is not None
    assert got[("ctxbudget_prepared_calls_total", s)] == 13
    assert got[("ctxbudget_context_utilization_ratio", s)] == pytest.approx(last.utilization)
    history = last.component("history")
    assert history is not None
    key = (("component", "history"), ("count", "exact" if last.exact else "estimate"), *s)
    assert got[("ctxbudget_context_tokens", tuple(sorted(key)))] == history.used
    assert got[("ctxbudget_billed_tokens_total", (*s, ("type", "input")))] == sum(
        u.input_tokens for u in BILLED
    )
    assert got[("ctxbudget_billed_tokens_total", (*s, ("type", "cache_read")))] == 2200
    freed = sum(c.freed for r in mgr.metrics for c in r.compactions)
    assert freed > 0
    assert (
        sum(v for (name, _), v in got.items() if name == "ctxbudget_compaction_freed_tokens_total")
        == freed
    )
    alert_key = ("ctxbudget_alerts_total", (("level", "info"), ("name", "utilization_20"), *s))
    assert got[alert_key] >= 1


def test_json_log_lines_through_logging(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    handler = json_lines_handler(path)
    logger = logging.getLogger("ctxbudget")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        mgr = agent(window=3_000, alerts=AlertRules(utilization=((0.01, "warning"),)))
        sink = JsonLogSink()
        mgr.metrics.subscribe(sink)
        mgr.alerts.subscribe(sink)
        mgr.prepare()
        mgr.observe_usage(BILLED[0])
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["event"], line.get("stage")) for line in lines] == [
        ("metrics", "prepared"),
        ("alert", None),
        ("metrics", "billed"),
    ]
    assert lines[1]["name"] == "utilization_1"
    assert lines[1]["level"] == "warning"
    assert lines[2]["billed"]["input_tokens"] == 900


class _Receiver(BaseHTTPRequestHandler):
    fail_first: ClassVar[int] = 0
    received: ClassVar[list[dict[str, Any]]] = []
    attempts: ClassVar[int] = 0

    def do_POST(self) -> None:
        type(self).attempts += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "fail_first": 2, "attempts": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", handler
    server.shutdown()
    thread.join(5)


def test_webhook_alerts_arrive_after_retries(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    hook = WebhookSink(url, retries=3, backoff=0.01)
    mgr = agent(window=3_000, session_id="hook-1", alerts=AlertRules(utilization=((0.01, "info"),)))
    mgr.alerts.subscribe(hook)
    mgr.prepare()
    assert hook.flush(timeout=10)
    hook.close()
    assert handler.attempts == 3, "two 503s, then delivered"
    (alert,) = handler.received
    assert alert["event"] == "alert"
    assert alert["name"] == "utilization_1"
    assert alert["state"] == "firing"
    assert alert["session_id"] == "hook-1"
    assert hook.delivered == 1
    assert hook.failed == []


def test_webhook_that_cannot_deliver_says_so(caplog: pytest.LogCaptureFixture) -> None:
    hook = WebhookSink("http://127.0.0.1:9/nothing-listens", retries=1, backoff=0.01, timeout=1)
    mgr = agent(window=3_000, alerts=AlertRules(utilization=((0.01, "info"),)))
    mgr.alerts.subscribe(hook)
    mgr.prepare()
    hook.close()
    assert len(hook.failed) == 1
    assert "not delivered" in caplog.text


def test_webhook_url_must_be_http() -> None:
    from ctxbudget.errors import ConfigError

    with pytest.raises(ConfigError, match="http"):
        WebhookSink("ftp://example.invalid/hook")
