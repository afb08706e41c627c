"""OpenTelemetry export: GenAI semantic-convention metrics and spans, plus ``ctxbudget.*``.

Subscribe an :class:`OTelExporter` to ``manager.metrics``. Billed calls record
``gen_ai.client.token.usage`` (input and output, ``gen_ai.token.type``) and a ``chat {model}``
client span carrying ``gen_ai.usage.*``; every prepared call records our own instruments
(``ctxbudget.context.*``, ``ctxbudget.compaction.*``, ``ctxbudget.billing.cost``...) and a short
``ctxbudget.prepare`` span. Needs the ``otel`` extra (``opentelemetry-api``); without
providers given, the globally configured ones are used, as OpenTelemetry intends.
"""

from __future__ import annotations

from typing import Any

from ctxbudget.errors import ConfigError
from ctxbudget.telemetry.record import CallMetrics

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError(
        "OpenTelemetry export needs the otel extra: pip install 'ctxbudget[otel]'"
    ) from exc

__all__ = ["OTelExporter"]

_PROVIDERS = {"openai": "openai", "openai_responses": "openai", "anthropic": "anthropic"}
_NS = 1_000_000_000


class OTelExporter:
    """Records each metrics record on OpenTelemetry instruments and spans."""

    def __init__(
        self,
        meter_provider: otel_metrics.MeterProvider | None = None,
        tracer_provider: otel_trace.TracerProvider | None = None,
    ) -> None:
        meter = otel_metrics.get_meter("ctxbudget", meter_provider=meter_provider)
        self._tracer = otel_trace.get_tracer("ctxbudget", tracer_provider=tracer_provider)
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens billed per call (GenAI semantic conventions)",
        )
        self._used = meter.create_gauge(
            "ctxbudget.context.tokens", unit="{token}", description="Tokens per component"
        )
        self._budget = meter.create_gauge(
            "ctxbudget.context.budget", unit="{token}", description="Budget per component"
        )
        self._utilization = meter.create_gauge(
            "ctxbudget.context.utilization", unit="1", description="Input over the input limit"
        )
        self._distance = meter.create_gauge(
            "ctxbudget.constraint.distance",
            unit="{token}",
            description="Tokens since the system constraints were last stated",
        )
        self._cache = meter.create_gauge(
            "ctxbudget.cache.hit_rate", unit="1", description="Cache-read share of the input"
        )
        self._compression = meter.create_gauge(
            "ctxbudget.compression.ratio", unit="1", description="Logged over prepared tokens"
        )
        self._retrieval = meter.create_gauge(
            "ctxbudget.retrieval.hit_rate", unit="1", description="Used share of retrieved"
        )
        self._compactions = meter.create_counter(
            "ctxbudget.compactions", unit="{compaction}", description="Compactions applied"
        )
        self._freed = meter.create_counter(
            "ctxbudget.compaction.freed", unit="{token}", description="Tokens compaction freed"
        )
        self._rewritten = meter.create_counter(
            "ctxbudget.compaction.rewritten",
            unit="{token}",
            description="Cached prefix tokens compaction made the provider write again",
        )
        self._cost = meter.create_counter(
            "ctxbudget.billing.cost", unit="USD", description="Billed cost of the calls"
        )

    def __call__(self, record: CallMetrics) -> None:
        base = _attributes(record)
        if record.stage == "billed":
            self._billed(record, base)
            return
        own = {**base, "ctxbudget.count": "exact" if record.exact else "estimate"}
        for row in record.components:
            at = {**own, "ctxbudget.component": row.component}
            self._used.set(row.used, at)
            if row.budget is not None:
                self._budget.set(row.budget, at)
        self._utilization.set(record.utilization, own)
        self._distance.set(record.constraint_distance, own)
        self._compression.set(record.compression_ratio, own)
        if record.cache_hit_rate is not None:
            self._cache.set(record.cache_hit_rate, {**own, "ctxbudget.billing.usage": "predicted"})
        if record.retrieval_hit_rate is not None:
            self._retrieval.set(record.retrieval_hit_rate, own)
        for c in record.compactions:
            at = {**own, "ctxbudget.strategy": c.strategy}
            self._compactions.add(1, at)
            self._freed.add(c.freed, at)
            self._rewritten.add(c.rewritten, at)
        start = int(record.time * _NS)
        span = self._tracer.start_span("ctxbudget.prepare", start_time=start, attributes=own)
        span.set_attributes(_span_facts(record))
        span.end(end_time=start + int(record.prepare_seconds * _NS))

    def _billed(self, record: CallMetrics, base: dict[str, Any]) -> None:
        usage = record.billed
        if usage is None:
            return
        self._tokens.record(usage.input_tokens, {**base, "gen_ai.token.type": "input"})
        self._tokens.record(usage.output_tokens, {**base, "gen_ai.token.type": "output"})
        if usage.input_tokens:
            rate = usage.cache_read_tokens / usage.input_tokens
            self._cache.set(rate, {**base, "ctxbudget.billing.usage": "billed"})
        if record.billed_cost is not None:
            self._cost.add(float(record.billed_cost), base)
        span = self._tracer.start_span(
            f"chat {record.model}",
            kind=otel_trace.SpanKind.CLIENT,
            start_time=int(record.time * _NS),
            attributes={
                **base,
                "gen_ai.usage.input_tokens": usage.input_tokens,
                "gen_ai.usage.output_tokens": usage.output_tokens,
                "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
                "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
                **_span_facts(record),
            },
        )
        span.end()


def _attributes(record: CallMetrics) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": _PROVIDERS.get(record.provider, record.provider),
        "gen_ai.request.model": record.model,
        "gen_ai.conversation.id": record.session_id,
    }


def _span_facts(record: CallMetrics) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "ctxbudget.turn": record.turn,
        "ctxbudget.input_tokens": record.input_tokens,
        "ctxbudget.count": "exact" if record.exact else "estimate",
        "ctxbudget.utilization": record.utilization,
        "ctxbudget.compactions": len(record.compactions),
        "ctxbudget.constraint_distance": record.constraint_distance,
        "ctxbudget.compression_ratio": record.compression_ratio,
    }
    if record.cost is not None:
        facts["ctxbudget.cost_usd"] = float(record.cost)
    return facts
