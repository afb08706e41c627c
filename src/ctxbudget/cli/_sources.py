"""Which sessions a command reads: the paths given, else the user's own agent logs, else
the built-in demo session, so the main job runs on any machine with no setup."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ctxbudget.convert.openai_chat import from_openai_chat, from_openai_chat_tools
from ctxbudget.demo import demo_session
from ctxbudget.errors import UsageError
from ctxbudget.traces import discover_user_logs, load_sessions
from ctxbudget.traces.session import RecordedCall, Session

__all__ = ["Sources", "demo_as_session", "progress", "resolve_sources"]

DISCOVERED_LIMIT = 20
"""Newest discovered log files read when no path and no ``--limit`` is given."""


@dataclass(frozen=True, slots=True)
class Sources:
    """The sessions to read and where they came from (shown to the user)."""

    sessions: list[Session]
    origin: str
    """``paths``, ``your agent logs`` or ``demo``."""


def demo_as_session(turns: int | None = None) -> Session:
    """The built-in demo agent session as an imported session (no billed usage)."""
    demo = demo_session() if turns is None else demo_session(turns)
    items = tuple(from_openai_chat(list(demo.messages)))
    return Session(
        name="demo",
        source="ctxbudget demo generator",
        format="demo",
        items=items,
        tools=tuple(from_openai_chat_tools(list(demo.tools))),
        calls=tuple(RecordedCall(position=n) for n, i in enumerate(items) if i.role == "assistant"),
    )


def resolve_sources(
    paths: Sequence[Path], *, limit: int | None, demo: bool, min_calls: int = 1
) -> Sources:
    """Sessions from ``paths``; with none, the user's Claude Code / Codex logs (newest
    ``limit`` files, default 20), else the demo session. ``demo`` forces the demo."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if demo:
        return Sources([demo_as_session()], "demo")
    if paths:
        files, origin = list(paths), "paths"
    else:
        files, origin = discover_user_logs()[: limit or DISCOVERED_LIMIT], "your agent logs"
        if not files:
            return Sources([demo_as_session()], "demo")
    sessions: list[Session] = []
    for path in files:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory; pass agent log files or folders")
        sessions.extend(load_sessions(path))
    if paths and limit is not None:
        sessions = sessions[:limit]
    kept = [s for s in sessions if len(s.calls) >= min_calls]
    if not kept and origin == "your agent logs":
        return Sources([demo_as_session()], "demo")
    if not kept:
        raise UsageError(
            f"no session with at least {min_calls} model call(s) in {', '.join(map(str, paths))}"
        )
    return Sources(kept, origin)


def progress(sessions: Sequence[Session], what: str) -> Iterator[Session]:
    """Iterate ``sessions`` with a progress bar on stderr (transient; silent when piped)."""
    bar = Progress(
        TextColumn(f"{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[name]}"),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(what, total=len(sessions), name="")
        for session in sessions:
            bar.update(task, name=session.name[:48])
            yield session
            bar.advance(task)
