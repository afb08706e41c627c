"""Alerts on context health, with hysteresis so a value hovering at a threshold does not flap.

Each rule watches one value of the metrics history: utilization of the input limit (70% info,
85% warning, 95% critical by default), how often compaction ran over the last turns, the
cache hit rate over the last turns, and the session's cost. An alert fires once when its
value crosses the threshold and resolves only after the value is back past the threshold by
the hysteresis margin; every change of state is published to the subscribed sinks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, Literal

from ctxbudget.errors import ConfigError
from ctxbudget.telemetry.record import CallMetrics, cache_hit_share

__all__ = ["Alert", "AlertMonitor", "AlertRules", "AlertSink", "Level", "resolved_message"]

Level = Literal["info", "warning", "critical"]
_LEVELS: tuple[Level, ...] = ("info", "warning", "critical")
AlertSink = Callable[["Alert"], None]
_log = logging.getLogger("ctxbudget.telemetry")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRules:
    """Thresholds of the built-in alerts (a rule set to None is off)."""

    utilization: tuple[tuple[float, Level], ...] = (
        (0.70, "info"),
        (0.85, "warning"),
        (0.95, "critical"),
    )
    """Shares of the input limit and the level of the alert each one raises."""
    pruning_rate: float | None = 0.20
    """Alert (warning) when compaction ran on more than this share of the last ``window`` turns."""
    cache_hit_rate: float | None = 0.85
    """Alert (warning) when the cache served less than this share of the input over the last
    ``window`` turns."""
    session_cost: Decimal | float | str | None = None
    """Alert (critical) when the session has cost more than this (USD)."""
    window: int = 10
    """Turns the rate rules look back over; they wait until that many turns have run."""
    hysteresis: float = 0.05
    """How far back past its threshold a value must go before its alert resolves (share)."""

    def __post_init__(self) -> None:
        for share, level in self.utilization:
            if not 0.0 < share <= 1.0 or level not in _LEVELS:
                raise ConfigError(
                    f"utilization thresholds are (share in (0, 1], level in {_LEVELS}); "
                    f"got {(share, level)!r}"
                )
        for name in ("pruning_rate", "cache_hit_rate"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be a share in [0, 1] or None, got {value!r}")
        if isinstance(self.window, bool) or self.window < 1:
            raise ConfigError(f"window must be a positive number of turns, got {self.window!r}")
        if not 0.0 <= self.hysteresis < 0.5:
            raise ConfigError(f"hysteresis must be in [0, 0.5), got {self.hysteresis!r}")
        if self.session_cost is not None:
            object.__setattr__(self, "session_cost", _usd(self.session_cost))


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One change of an alert's state."""

    name: str
    """Which rule, e.g. ``utilization_85``, ``pruning_frequency``, ``cache_hit_rate``."""
    level: Level
    state: Literal["firing", "resolved"]
    value: float
    """The watched value when the state changed (shares as 0..1, cost in USD)."""
    threshold: float
    message: str
    """What is wrong and what to look at, in words."""
    session_id: str
    turn: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (one JSON log line)."""
        return {
            "event": "alert",
            "name": self.name,
            "level": self.level,
            "state": self.state,
            "value": round(self.value, 6),
            "threshold": self.threshold,
            "message": self.message,
            "session_id": self.session_id,
            "turn": self.turn,
        }


@dataclass(frozen=True, slots=True)
class _Reading:
    """One rule's view of the history now: None when it cannot judge yet."""

    name: str
    level: Level
    value: float
    threshold: float
    above: bool
    """Fires when the value is above the threshold (else below)."""
    message: Callable[[], str]
    """The alert's text, formatted only when its state changes."""
    strict: bool = False
    """Fires only strictly past the threshold ("more than 20%"), not at it."""


class AlertMonitor:
    """Evaluates the rules on every metrics record and publishes changes of state."""

    def __init__(self, rules: AlertRules | None = None) -> None:
        self.rules = rules or AlertRules()
        self.history: list[Alert] = []
        """Every change of state, in order."""
        self._active: dict[str, Alert] = {}
        self._sinks: list[AlertSink] = []

    @property
    def active(self) -> tuple[Alert, ...]:
        """Alerts firing now."""
        return tuple(self._active.values())

    def subscribe(self, sink: AlertSink) -> None:
        """Call ``sink`` with every alert that fires or resolves."""
        self._sinks.append(sink)

    def unsubscribe(self, sink: AlertSink) -> None:
        """Stop calling ``sink``."""
        self._sinks.remove(sink)

    def evaluate(
        self, records: Sequence[CallMetrics], *, session_cost: Decimal | None = None
    ) -> list[Alert]:
        """Judge the newest record (``records[-1]``) against the turns before it (at least
        the rules' window of them) and the session's cost so far; returns the changes."""
        if not records:
            return []
        latest, margin = records[-1], self.rules.hysteresis
        changes: list[Alert] = []
        for reading in _readings(self.rules, records, session_cost):
            firing = reading.name in self._active
            if firing == _fires(reading, firing, margin):
                continue
            alert = Alert(
                name=reading.name,
                level=reading.level,
                state="resolved" if firing else "firing",
                value=reading.value,
                threshold=reading.threshold,
                message=(
                    resolved_message(reading.name, reading.value, reading.threshold)
                    if firing
                    else reading.message()
                ),
                session_id=latest.session_id,
                turn=latest.turn,
            )
            if firing:
                del self._active[reading.name]
            else:
                self._active[reading.name] = alert
            changes.append(alert)
        self.history.extend(changes)
        for alert in changes:
            for sink in list(self._sinks):
                try:
                    sink(alert)
                except Exception:  # a broken sink must not stop the agent; it is logged
                    _log.exception("alert sink %r failed on %s", sink, alert.name)
        return changes


def _fires(reading: _Reading, firing: bool, margin: float) -> bool:
    """Whether the alert is firing after this reading: crossing fires, coming back past the
    threshold by ``margin`` resolves, anything between keeps the current state."""
    value, threshold = reading.value, reading.threshold
    if reading.above:
        if firing:
            return value >= threshold - margin
        return value > threshold if reading.strict else value >= threshold
    return value < threshold if not firing else value < threshold + margin


def _readings(
    rules: AlertRules, records: Sequence[CallMetrics], spent: Decimal | None
) -> list[_Reading]:
    latest = records[-1]
    out = [
        _Reading(
            name=f"utilization_{round(share * 100)}",
            level=level,
            value=latest.utilization,
            threshold=share,
            above=True,
            message=partial(_utilization_message, latest, share),
        )
        for share, level in rules.utilization
    ]
    recent = records[-rules.window :]
    full = len(recent) == rules.window
    if rules.pruning_rate is not None and full:
        pruned = sum(1 for r in recent if r.pruned)
        out.append(
            _Reading(
                name="pruning_frequency",
                level="warning",
                value=pruned / len(recent),
                threshold=rules.pruning_rate,
                above=True,
                message=partial(_pruning_message, pruned, len(recent), rules.pruning_rate),
                strict=True,
            )
        )
    hit = cache_hit_share(recent) if rules.cache_hit_rate is not None and full else None
    if rules.cache_hit_rate is not None and hit is not None:
        out.append(
            _Reading(
                name="cache_hit_rate",
                level="warning",
                value=hit,
                threshold=rules.cache_hit_rate,
                above=False,
                message=partial(_cache_message, hit, len(recent), rules.cache_hit_rate),
            )
        )
    if rules.session_cost is not None and spent is not None:
        limit = Decimal(rules.session_cost)
        out.append(
            _Reading(
                name="session_cost",
                level="critical",
                value=float(spent),
                threshold=float(limit),
                above=True,
                message=partial(_cost_message, spent, limit),
                strict=True,
            )
        )
    return out


def resolved_message(name: str, value: object, threshold: object) -> str:
    """The text of an alert that stopped firing: where the value is now (a firing alert's
    text states the breach, which would read as still firing)."""
    return f"resolved: {name} is back at {_figure(name, value)} (alert threshold " + (
        f"{_figure(name, threshold)})"
    )


def _figure(name: str, value: object) -> str:
    if not isinstance(value, int | float | Decimal) or isinstance(value, bool):
        return "n/a"
    return f"${value:.4f}" if name == "session_cost" else f"{value:.0%}"


def _utilization_message(latest: CallMetrics, share: float) -> str:
    return (
        f"context at {latest.utilization:.0%} of its {latest.limit:,}-token input limit "
        f"(>= {share:.0%}); quality decays as the window fills"
    )


def _pruning_message(pruned: int, turns: int, share: float) -> str:
    return (
        f"compaction ran on {pruned} of the last {turns} turns ({pruned / turns:.0%} > "
        f"{share:.0%}); the window or the budgets are too small for this agent, or tool "
        "outputs are too large"
    )


def _cache_message(hit: float, turns: int, share: float) -> str:
    return (
        f"cache served {hit:.0%} of the input over the last {turns} turns "
        f"(< {share:.0%}); the prefix keeps changing"
    )


def _cost_message(spent: Decimal, limit: Decimal) -> str:
    return f"session cost ${spent:.4f} passed its ${limit:.4f} limit"


def _usd(value: Decimal | float | str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ConfigError(f"session_cost must be an amount in USD, got {value!r}") from exc
    if not amount.is_finite() or amount <= 0:
        raise ConfigError(f"session_cost must be a positive amount in USD, got {value!r}")
    return amount
