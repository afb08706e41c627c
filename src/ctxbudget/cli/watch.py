"""``ctxbudget watch``: a live terminal dashboard over a metrics log (JSON lines)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.live import Live

from ctxbudget.cli import app
from ctxbudget.cli._output import console, print_json
from ctxbudget.errors import UsageError
from ctxbudget.telemetry.alerts import resolved_message
from ctxbudget.telemetry.dashboard import Dashboard

__all__ = ["watch"]


@app.command()
def watch(
    path: Annotated[
        Path,
        typer.Argument(help="Metrics log: JSON lines written by JsonLogSink (see the docs)."),
    ],
    once: Annotated[
        bool, typer.Option("--once", help="Show the dashboard for the log as it is, and exit.")
    ] = False,
    session: Annotated[str | None, typer.Option(help="Show only this session id.")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.", min=0.05)] = 1.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop following after this many seconds.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the dashboard's data as JSON, and exit.")
    ] = False,
) -> None:
    """Tail a metrics log: utilization per component, cache hit rate, cost, alerts."""
    if not path.is_file():
        raise UsageError(
            f"no metrics log at {path}; write one with JsonLogSink and json_lines_handler "
            "(docs/observability.md), then point watch at that file"
        )
    board = Dashboard(session=session)
    with path.open(encoding="utf-8", errors="replace") as handle:
        if once or as_json:
            for line in handle:
                board.feed_line(_restate(line))
            if as_json:
                print_json(board.summary())
            else:
                console(min_width=100).print(board.render())
            return
        out = console(min_width=100)
        if not out.is_terminal:  # piped or redirected: no live redraws, one plain line each
            for lines in _follow(handle, interval, duration):
                for line in lines:
                    fixed = _restate(line)
                    board.feed_line(fixed)
                    text = _plain(fixed, session)
                    if text is not None:
                        sys.stdout.write(text + "\n")
                sys.stdout.flush()
            return
        with Live(board.render(), console=out, refresh_per_second=4) as live:
            for lines in _follow(handle, interval, duration):
                for line in lines:
                    board.feed_line(_restate(line))
                live.update(board.render())


def _restate(line: str) -> str:
    """A resolved alert as logs of earlier versions wrote it keeps the text it fired with
    ("cache served 12% ... (< 50%)"), which reads as firing: give it the message this
    version writes (where the value is now). Any other line is returned as it is."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return line
    if not isinstance(event, dict) or event.get("event") != "alert":
        return line
    if event.get("state") != "resolved":
        return line
    event["message"] = resolved_message(
        str(event.get("name")), event.get("value"), event.get("threshold")
    )
    return json.dumps(event)


def _plain(line: str, only: str | None) -> str | None:
    """One line for a metrics record or an alert (``watch`` when stdout is not a terminal)."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    session = event.get("session_id")
    if only is not None and session != only:
        return None
    if event.get("event") == "alert":
        return (
            f"alert {event.get('state')} [{event.get('level')}] {event.get('name')} · session "
            f"{session} turn {event.get('turn')}: {event.get('message')}"
        )
    if event.get("event") != "metrics":
        return None
    used, limit, share = event.get("input_tokens"), event.get("limit"), event.get("utilization")
    hit = event.get("cache_hit_rate")
    cost = event.get("cost_usd")
    unit = "tokens (estimate)" if event.get("count") == "estimate" else "tokens"
    return (
        f"session {session} turn {event.get('turn')} {event.get('stage', '')}: "
        f"{used if used is not None else '?'} / {limit if limit is not None else '?'} {unit}"
        + (f" ({share:.0%})" if isinstance(share, int | float) else "")
        + (f", cache hit {hit:.0%}" if isinstance(hit, int | float) else "")
        + (f", cost ${cost:.4f}" if isinstance(cost, int | float) else "")
    )


def _follow(handle: IO[str], interval: float, duration: float | None) -> Iterator[list[str]]:
    """Complete lines as they are appended; partial lines wait for their newline, and a
    truncated (rotated) file is read again from the start."""
    deadline = None if duration is None else time.monotonic() + duration
    pending = ""
    try:
        while deadline is None or time.monotonic() < deadline:
            chunk = handle.read()
            if not chunk and handle.tell() > Path(handle.name).stat().st_size:
                handle.seek(0)
                pending = ""
                continue
            *lines, pending = (pending + chunk).split("\n")
            yield lines
            time.sleep(interval)
    except KeyboardInterrupt:
        return
