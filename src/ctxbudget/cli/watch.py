"""``ctxbudget watch``: a live terminal dashboard over a metrics log (JSON lines)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.live import Live

from ctxbudget.cli import app
from ctxbudget.cli._output import console, print_json
from ctxbudget.errors import UsageError
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
                board.feed_line(line)
            if as_json:
                print_json(board.summary())
            else:
                console(min_width=100).print(board.render())
            return
        out = console(min_width=100)
        with Live(board.render(), console=out, refresh_per_second=4) as live:
            for lines in _follow(handle, interval, duration):
                for line in lines:
                    board.feed_line(line)
                live.update(board.render())


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
