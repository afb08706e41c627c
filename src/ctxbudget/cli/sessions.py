"""``ctxbudget sessions``: the sessions a store holds, one in detail, export, resume brief."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ctxbudget.billing.usage import Usage
from ctxbudget.cli import app
from ctxbudget.cli._output import console, print_json
from ctxbudget.compaction.extractive import extractive_summarizer
from ctxbudget.compaction.summarizers import SummaryRequest
from ctxbudget.session.items import item_text
from ctxbudget.session.log import Compacted, Observed, Prepared, SessionLog
from ctxbudget.session.view import View
from ctxbudget.store import STORE_ENV, SessionInfo, decode_event, open_store

__all__ = ["StoreOption", "sessions"]

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help="Store URL: sqlite:///path, postgresql://..., redis://... "
        f"(default ${STORE_ENV}, else .ctxbudget/ctxbudget.db here).",
    ),
]
"""The ``--store`` option of ``sessions`` and ``spend``."""

sessions = typer.Typer(
    help="Durable sessions: list, show, export, resume brief.", no_args_is_help=True
)
app.add_typer(sessions, name="sessions")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _info_json(info: SessionInfo) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "events": info.events,
        "model": info.meta.get("model"),
        "created": info.created,
        "updated": info.updated,
    }


def _load(store_url: str | None, session_id: str) -> tuple[SessionInfo, SessionLog, str]:
    with open_store(store_url) as store:
        info = store.require(session_id)
        events = [decode_event(e) for e in store.load(session_id)]
        return info, SessionLog.from_events(events), store.url


@sessions.command("list")
def list_sessions(store: StoreOption = None, as_json: AsJson = False) -> None:
    """Every session in the store, most recently updated first."""
    with open_store(store) as opened:
        infos = opened.sessions()
        url = opened.url
    if as_json:
        print_json({"store": url, "sessions": [_info_json(i) for i in infos]})
        return
    table = Table(title=f"sessions in {url}")
    for column in ("session", "model", "events", "updated"):
        table.add_column(column, justify="right" if column == "events" else "left")
    for info in infos:
        model = str(info.meta.get("model", ""))
        table.add_row(info.session_id, model, f"{info.events:,}", _when(info.updated))
    console().print(table)


@sessions.command("show")
def show(session_id: str, store: StoreOption = None, as_json: AsJson = False) -> None:
    """One session: its events by kind, its view now, its compactions and billed usage."""
    info, log, _ = _load(store, session_id)
    kinds = Counter(type(e).__name__ for e in log)
    view = View.replay(log)
    billed = sum((e.usage for e in log if isinstance(e, Observed)), Usage(input_tokens=0))
    records = [e.record for e in log if isinstance(e, Compacted)]
    data = {
        **_info_json(info),
        "event_kinds": dict(sorted(kinds.items())),
        "items_in_log": sum(1 for e in log if type(e).__name__ == "Appended"),
        "items_in_view": len(view),
        "requests_prepared": sum(1 for e in log if isinstance(e, Prepared)),
        "compactions": [
            {"strategy": r.strategy, "freed_tokens": r.freed, "exact": r.exact, "reason": r.reason}
            for r in records
        ],
        "billed_input_tokens": billed.input_tokens,
        "billed_cache_read_tokens": billed.cache_read_tokens,
        "billed_output_tokens": billed.output_tokens,
    }
    if as_json:
        print_json(data)
        return
    out = console()
    out.print(
        f"[bold]{session_id}[/] ({info.meta.get('model', 'model unknown')}), "
        f"{info.events:,} events, updated {_when(info.updated)}"
    )
    out.print(
        f"items: {data['items_in_log']:,} appended, {len(view):,} in the view now; "
        f"{data['requests_prepared']:,} requests prepared"
    )
    out.print(
        f"billed: {billed.input_tokens:,} input tokens ({billed.cache_read_tokens:,} "
        f"from cache), {billed.output_tokens:,} output tokens (as the provider reported)"
    )
    if records:
        table = Table(title="compactions")
        table.add_column("strategy")
        table.add_column("freed tokens", justify="right")
        table.add_column("reason")
        for r in records:
            freed = f"{r.freed:,}" if r.exact else f"{r.freed:,} (estimate)"
            table.add_row(r.strategy, freed, r.reason)
        out.print(table)


@sessions.command("export")
def export(
    session_id: str,
    store: StoreOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default stdout).")
    ] = None,
) -> None:
    """Every event as JSON lines (seq, kind, event): a lossless copy of the session."""
    with open_store(store) as opened:
        opened.require(session_id)
        stored = opened.load(session_id)
    lines = [
        json.dumps(
            {"seq": e.seq, "kind": e.kind, "event": json.loads(e.body)},
            ensure_ascii=False,
            sort_keys=True,
        )
        for e in stored
    ]
    text = "".join(line + "\n" for line in lines)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console().print(f"wrote {len(lines):,} events to {output}")


@sessions.command("resume-brief")
def resume_brief(session_id: str, store: StoreOption = None, as_json: AsJson = False) -> None:
    """A handoff brief of the session's current view (offline, extractive): what a person or
    a fresh agent needs to pick the work up."""
    info, log, _ = _load(store, session_id)
    view = View.replay(log)
    users = [i for i in view if i.role == "user" and not i.tool_results]
    task = item_text(users[0]) if users else ""
    body = extractive_summarizer(SummaryRequest(items=view.items, task=task, covers=()))
    if as_json:
        print_json({**_info_json(info), "task": task, "brief": body})
        return
    console().print(f"# Resume brief: {session_id}\n\n{body}", markup=False)
