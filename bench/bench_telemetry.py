"""What telemetry costs prepare(): metrics collection on and off, side by side in one run.

The same 1,000-message history built from real mini-swe-agent sessions in ../shared/traces
(gpt-4o, exact o200k_base counts, as ``bench_prepare``), then append one message and
prepare, many times.
* ``off``: the manager's telemetry hooks switched off (no record, no alert rules, no
  signal actions): the cost of prepare() alone;
* ``on``: the default manager: a metrics record per call, the alert rules, the signal
  actions (constraint distance for re-injection);

both on one manager, off and on in turn, so each pair of calls sees the same history one
message apart (two managers side by side differ by more than telemetry: their memory
layout and the garbage collector's timing). Then, for information, the same with every
exporter subscribed: JSON log lines through ``logging`` to a file, Prometheus,
OpenTelemetry (in-memory reader).

Goal (issue 6): metrics collection adds under 5% to prepare() latency (median of the
per-step paired differences over the median ``off`` latency).
Run: ``python bench/bench_telemetry.py [--quick] [--json PATH]`` (``--json`` writes the
figures for ``bench/figures.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_prepare import TRACES, history
from ctxbudget.manager import ContextManager
from ctxbudget.telemetry import JsonLogSink, json_lines_handler


def switch_off(mgr: ContextManager) -> Callable[[], None]:
    """Turn the manager's telemetry hooks into no-ops; returns the switch back on."""
    hooks: dict[str, Any] = {
        "_record_call": lambda *args, **kwargs: None,
        "_reinject_constraints": lambda: False,
    }
    for name, hook in hooks.items():
        setattr(mgr, name, hook)

    def on() -> None:
        for name in hooks:
            delattr(mgr, name)

    return on


def build(messages: list[dict[str, Any]]) -> ContextManager:
    mgr = ContextManager("gpt-4o", context_window=2_000_000, max_output_tokens=4_000)
    mgr.extend(messages)
    mgr.prepare()
    return mgr


def alternate(mgr: ContextManager, steps: int) -> tuple[list[float], list[float]]:
    """Append a message and time prepare(), telemetry off and on in turn on one manager:
    both halves see the same history, one message apart. Returns (off, on) latencies."""
    off: list[float] = []
    on: list[float] = []
    for step in range(steps):
        role = "user" if step % 2 == 0 else "assistant"
        mgr.append({"role": role, "content": f"step {step}: continue with the next file"})
        switch_on = switch_off(mgr) if step % 2 == 0 else None
        start = time.perf_counter()
        mgr.prepare()
        elapsed = time.perf_counter() - start
        if switch_on is not None:
            switch_on()
            off.append(elapsed)
        else:
            on.append(elapsed)
    return off, on


def exporters(mgr: ContextManager, log_path: Path) -> Callable[[], None]:
    """Subscribe every exporter; returns the clean-up."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from ctxbudget.telemetry.otel import OTelExporter
    from ctxbudget.telemetry.prometheus import PrometheusExporter

    handler = json_lines_handler(log_path)
    logger = logging.getLogger("ctxbudget")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    sink = JsonLogSink()
    mgr.metrics.subscribe(sink)
    mgr.alerts.subscribe(sink)
    mgr.metrics.subscribe(PrometheusExporter())
    mgr.metrics.subscribe(OTelExporter(MeterProvider(metric_readers=[InMemoryMetricReader()])))

    def close() -> None:
        logger.removeHandler(handler)
        handler.close()

    return close


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not TRACES.is_dir():
        print(f"skipped: {TRACES} not found (real agent logs live beside the project root)")
        return 0
    messages = history(1_000)
    steps = 400 if args.quick else 4_000
    print(
        f"history: {len(messages)} real messages (gpt-4o, exact counts); {steps} x append + "
        "prepare on one manager, telemetry off and on in turn"
    )
    rows: dict[str, tuple[list[float], list[float]]] = {}
    rows["on"] = alternate(build(messages), steps)
    with tempfile.TemporaryDirectory() as tmp:
        mgr = build(messages)
        close = exporters(mgr, Path(tmp) / "metrics.jsonl")
        try:
            rows["on + exporters"] = alternate(mgr, steps)
        finally:
            close()
    timed: dict[str, float] = {}
    for name, (off, on) in rows.items():
        pairs = [b - a for a, b in zip(off, on, strict=False)]
        base = statistics.median(off)
        overhead = statistics.median(pairs) / base
        key = "exporters" if "exporters" in name else "collection"
        timed[f"{key}_overhead"] = overhead
        timed[f"{key}_off_p50_ms"] = base * 1e3
        print(
            f"{name:>15}: prepare p50 off {base * 1e3:.3f} ms, on {statistics.median(on) * 1e3:.3f}"
            f" ms; p90 off {statistics.quantiles(off, n=10)[-1] * 1e3:.3f} ms, on "
            f"{statistics.quantiles(on, n=10)[-1] * 1e3:.3f} ms; overhead {overhead:+.1%} "
            "(median of paired differences)"
        )
        if name == "on":
            verdict = "met" if overhead < 0.05 else "NOT met"
            print(f"{'':>15}  -> goal: collection adds < 5% to prepare(): {verdict}")
    if args.json is not None:
        figures = {"exact": {"messages": len(messages), "steps": steps}, "timed": timed}
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
