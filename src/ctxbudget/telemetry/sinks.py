"""Where records and alerts go: JSON lines through ``logging``, and an HTTP webhook.

``JsonLogSink`` writes one JSON object per record (logger ``ctxbudget.metrics``) or alert
(logger ``ctxbudget.alerts``, at the alert's level). :func:`json_lines_handler` is the
handler that turns those into a JSON-lines file, the format ``ctxbudget watch`` tails.
``WebhookSink`` POSTs each alert as JSON from a background thread, retrying on network
errors, 429 and 5xx with exponential backoff, so a slow receiver never blocks the agent.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctxbudget.errors import ConfigError
from ctxbudget.telemetry.alerts import Alert
from ctxbudget.telemetry.record import CallMetrics

__all__ = ["JsonLogSink", "WebhookSink", "json_lines_handler"]

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_log = logging.getLogger("ctxbudget.telemetry")


class JsonLogSink:
    """Log records and alerts as one JSON object each, through the standard ``logging``."""

    def __init__(
        self,
        metrics_logger: logging.Logger | None = None,
        alerts_logger: logging.Logger | None = None,
    ) -> None:
        self.metrics_logger = metrics_logger or logging.getLogger("ctxbudget.metrics")
        self.alerts_logger = alerts_logger or logging.getLogger("ctxbudget.alerts")

    def __call__(self, event: CallMetrics | Alert) -> None:
        line = json.dumps(event.as_dict(), ensure_ascii=False, sort_keys=True)
        if isinstance(event, Alert):
            self.alerts_logger.log(_LEVELS[event.level], line)
        else:
            self.metrics_logger.info(line)


def json_lines_handler(path: str | Path, level: int = logging.INFO) -> logging.Handler:
    """A file handler writing each log message as it is: attach it to the ``ctxbudget``
    logger and :class:`JsonLogSink` output becomes a JSON-lines file for ``ctxbudget watch``.
    """
    handler = logging.FileHandler(Path(path), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(level)
    return handler


class WebhookSink:
    """POST each alert as JSON to ``url``; delivery runs on a background thread."""

    def __init__(
        self,
        url: str,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook url must start with http:// or https://, got {url!r}")
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise ConfigError("webhook retries and backoff must be >= 0 and timeout > 0")
        self.url, self.retries, self.backoff, self.timeout = url, retries, backoff, timeout
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.delivered = 0
        """Alerts the receiver accepted (2xx)."""
        self.failed: list[str] = []
        """Why each alert that could not be delivered failed (also logged)."""
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ctxbudget-webhook", daemon=True)
        self._thread.start()

    def __call__(self, alert: Alert) -> None:
        self._queue.put(alert.as_dict())

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert was delivered or gave up; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float | None = 10.0) -> None:
        """Deliver what is queued, then stop the thread."""
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            payload = self._queue.get()
            try:
                if payload is None:
                    return
                self._deliver(payload)
            finally:
                self._queue.task_done()

    def _deliver(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        why = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=self.headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                self.delivered += 1
                return
            except urllib.error.HTTPError as exc:
                why = f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    break  # the receiver refused it; retrying will not help
            except (urllib.error.URLError, OSError) as exc:
                why = str(getattr(exc, "reason", exc))
        message = f"alert {payload['name']!r} not delivered to {self.url}: {why}"
        self.failed.append(message)
        _log.error(message)
