"""The state behind ``ctxbudget watch``: metrics log lines in, a terminal dashboard out.

Pure: :class:`Dashboard` takes the JSON objects :class:`~ctxbudget.telemetry.JsonLogSink`
wrote (metrics records and alerts), keeps the newest record of each session and the recent
alerts, and renders them with rich: a utilization bar per component, cache hit rate, cost,
constraint distance, and the alerts firing now. Reading the file is the CLI's job.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = ["Dashboard", "bar"]

_BAR = 24


@dataclass(slots=True)
class _Session:
    latest: dict[str, Any]
    cost: dict[int, float] = field(default_factory=dict)
    """Cost per turn (the newest stage of each turn), USD."""
    compactions: int = 0
    turns_counted: set[int] = field(default_factory=set)


class Dashboard:
    """Newest record per session and the recent alerts, from metrics log lines."""

    def __init__(self, *, session: str | None = None, keep_alerts: int = 12) -> None:
        self.session = session
        """Show only this session (None: all)."""
        self.sessions: dict[str, _Session] = {}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=keep_alerts)
        self.firing: dict[tuple[str, str], dict[str, Any]] = {}
        """Alerts firing now, by (session, name)."""
        self.lines = 0
        self.unreadable = 0
        """Lines that were not a metrics record or alert (counted, shown, never silent)."""

    def feed_line(self, line: str) -> None:
        """Take one line of the log."""
        line = line.strip()
        if not line:
            return
        self.lines += 1
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            self.unreadable += 1
            return
        if not isinstance(event, dict) or not self.feed(event):
            self.unreadable += 1

    def feed(self, event: dict[str, Any]) -> bool:
        """Take one decoded event; False when it is neither a record nor an alert."""
        kind, session = event.get("event"), event.get("session_id")
        if not isinstance(session, str) or kind not in ("metrics", "alert"):
            return False
        if self.session is not None and session != self.session:
            return True
        if kind == "alert":
            self.alerts.append(event)
            key = (session, str(event.get("name")))
            if event.get("state") == "firing":
                self.firing[key] = event
            else:
                self.firing.pop(key, None)
            return True
        turn = event.get("turn")
        if not isinstance(turn, int):
            return False
        state = self.sessions.get(session)
        if state is None:
            state = self.sessions[session] = _Session(latest=event)
        if turn >= int(state.latest.get("turn", 0)):
            state.latest = event
        cost = event.get("cost_usd")
        if isinstance(cost, int | float):
            state.cost[turn] = float(cost)
        if turn not in state.turns_counted:
            state.turns_counted.add(turn)
            state.compactions += len(event.get("compactions") or ())
        return True

    def summary(self) -> dict[str, Any]:
        """The dashboard as JSON-ready data (``watch --json``)."""
        return {
            "sessions": {
                name: {
                    "turn": s.latest.get("turn"),
                    "count": s.latest.get("count"),
                    "input_tokens": s.latest.get("input_tokens"),
                    "limit": s.latest.get("limit"),
                    "utilization": s.latest.get("utilization"),
                    "cache_hit_rate": s.latest.get("cache_hit_rate"),
                    "constraint_distance": s.latest.get("constraint_distance"),
                    "cost_usd": round(sum(s.cost.values()), 6),
                    "compactions": s.compactions,
                    "components": s.latest.get("components"),
                }
                for name, s in sorted(self.sessions.items())
            },
            "firing": sorted(self.firing.values(), key=lambda a: (a["session_id"], a["name"])),
            "alerts": list(self.alerts),
            "lines": self.lines,
            "unreadable_lines": self.unreadable,
        }

    def render(self) -> RenderableType:
        """The dashboard for a terminal."""
        parts: list[RenderableType] = []
        if not self.sessions:
            parts.append(Text("waiting for metrics records...", style="dim"))
        for name, state in sorted(self.sessions.items()):
            parts.append(_session_table(name, state))
        parts.append(self._alerts_table())
        if self.unreadable:
            parts.append(
                Text(f"{self.unreadable} unreadable line(s) skipped of {self.lines}", "yellow")
            )
        return Group(*parts)

    def _alerts_table(self) -> Table:
        table = Table(title="alerts (newest last)", expand=True, title_justify="left")
        for column in ("session", "turn", "level", "state", "alert"):
            table.add_column(column)
        for alert in self.alerts:
            style = {"critical": "bold red", "warning": "yellow"}.get(str(alert.get("level")), "")
            table.add_row(
                str(alert.get("session_id")),
                str(alert.get("turn")),
                Text(str(alert.get("level")), style),
                str(alert.get("state")),
                str(alert.get("message")),
            )
        return table


def bar(share: float | None, width: int = _BAR) -> Text:
    """A utilization bar: green under 70%, yellow under 85%, red above."""
    if share is None:
        return Text("no budget".ljust(width), "dim")
    filled = min(round(share * width), width)
    style = "green" if share < 0.70 else "yellow" if share < 0.85 else "bold red"
    return Text("█" * filled + "·" * (width - filled), style)


def _session_table(name: str, state: _Session) -> Table:
    rec = state.latest
    estimate = rec.get("count") == "estimate"
    unit = "tokens (estimate)" if estimate else "tokens"
    cache = rec.get("cache_hit_rate")
    title = (
        f"session {name} · turn {rec.get('turn')} · {rec.get('model')} · "
        f"cost ${sum(state.cost.values()):.4f} · cache hit "
        f"{'n/a' if cache is None else f'{cache:.0%}'} · compactions {state.compactions} · "
        f"constraints {rec.get('constraint_distance', 0):,} {unit} back"
    )
    table = Table(title=title, expand=True, title_justify="left")
    table.add_column("component")
    table.add_column("used / budget", justify="right")
    table.add_column("occupancy")
    total = rec.get("utilization")
    table.add_row(
        Text("input / limit", "bold"),
        f"{rec.get('input_tokens', 0):,} / {rec.get('limit', 0):,} {unit}",
        bar(total if isinstance(total, int | float) else None),
    )
    for row in rec.get("components") or ():
        if not row.get("used") and not row.get("budget"):
            continue
        budget = row.get("budget")
        table.add_row(
            f"{row.get('component')} ({row.get('kind')})",
            f"{row.get('used', 0):,} / {'-' if budget is None else f'{budget:,}'}",
            bar(row.get("occupancy")),
        )
    return table
