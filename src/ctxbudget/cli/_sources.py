"""Which sessions a command reads: the paths given, else the user's own agent logs, else
the built-in demo session, so the main job runs on any machine with no setup."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ctxbudget.cli._output import notice
from ctxbudget.convert.openai_chat import from_openai_chat, from_openai_chat_tools
from ctxbudget.demo import demo_session
from ctxbudget.errors import TraceError, UsageError
from ctxbudget.store import open_store
from ctxbudget.traces import discover_user_logs, load_sessions
from ctxbudget.traces._load import Skipped, skip_reason
from ctxbudget.traces.session import RecordedCall, Session
from ctxbudget.traces.stored import stored_session

__all__ = [
    "Sources",
    "StoredOption",
    "demo_as_session",
    "progress",
    "resolve_sources",
    "skipped_records_line",
    "steps",
    "sub_agent_note",
]

DISCOVERED_LIMIT = 20
"""Newest discovered log files read when no path and no ``--limit`` is given."""
DEMO_MODEL = "claude-sonnet-4-5"
"""The model the demo session is said to use (it is generated, not a real log)."""


@dataclass(frozen=True, slots=True)
class Sources:
    """The sessions to read and where they came from (shown to the user)."""

    sessions: list[Session]
    origin: str
    """``paths``, ``your agent logs`` or ``demo``."""
    skipped: list[Skipped] = field(default_factory=list)
    """Files passed over (folder walks, discovered logs), with the reason."""

    def skipped_json(self) -> list[dict[str, str]]:
        """The ``skipped`` list of ``--json`` output."""
        return [{"path": s.path, "reason": s.reason} for s in self.skipped]

    def skipped_lines(self, most: int = 20) -> list[str]:
        """What was skipped, for people: one line per unreadable log, a count of the JSON
        files that are not agent logs."""
        logs = [s for s in self.skipped if s.log]
        other = [s for s in self.skipped if not s.log]
        lines: list[str] = []
        if logs:
            lines.append(f"skipped {len(logs)} log file(s) that could not be read:")
            lines += [f"  {s.path}: {s.reason}" for s in logs[:most]]
            if len(logs) > most:
                lines.append(f"  ... and {len(logs) - most} more (see --json)")
        if other:
            names = ", ".join(s.path for s in other[:3]) + (", ..." if len(other) > 3 else "")
            lines.append(f"skipped {len(other)} JSON file(s) that are not agent logs ({names})")
        return lines


def skipped_records_line(skipped: Iterable[Mapping[str, int]]) -> str | None:
    """Record kinds the importers passed over (a newer agent's), summed over sessions, most
    first: ``skipped record kinds: attachment ×33, mode ×2``; ``None`` when there are none."""
    total: dict[str, int] = {}
    for kinds in skipped:
        for kind, lines in kinds.items():
            total[kind] = total.get(kind, 0) + lines
    if not total:
        return None
    listed = ", ".join(
        f"{kind} ×{lines:,}"
        for kind, lines in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return (
        f"skipped record kinds: {listed} (written by a newer agent than this importer knows; "
        "not counted)"
    )


def sub_agent_note(parent: str | None) -> str:
    """`` (sub-agent of <id>)`` for a sub-agent's own transcript, else empty."""
    return "" if parent is None else f" (sub-agent of {parent})"


def demo_as_session(turns: int | None = None) -> Session:
    """The built-in demo agent session as an imported session (no billed usage), naming
    the model the demo prices as (so nothing is priced as a model the log did not name)."""
    demo = demo_session() if turns is None else demo_session(turns)
    items = tuple(from_openai_chat(list(demo.messages)))
    return Session(
        name="demo",
        source="ctxbudget demo generator",
        format="demo",
        items=items,
        tools=tuple(from_openai_chat_tools(list(demo.tools))),
        calls=tuple(RecordedCall(position=n) for n, i in enumerate(items) if i.role == "assistant"),
        model=DEMO_MODEL,
    )


StoredOption = Annotated[
    list[str] | None,
    typer.Option(
        "--stored",
        help="A session of the store (--store) to read, e.g. one the proxy recorded "
        "(`ctxbudget sessions list`); repeat for more.",
    ),
]


def resolve_sources(
    paths: Sequence[Path],
    *,
    limit: int | None,
    demo: bool,
    min_calls: int = 1,
    stored: Sequence[str] = (),
    store: str | None = None,
) -> Sources:
    """Sessions from ``paths`` and the ``stored`` sessions of ``store``; with neither, the
    user's Claude Code / Codex logs (newest ``limit`` files, default 20), else the demo
    session. ``demo`` forces the demo.

    Folder walks and discovered logs skip files that cannot be read and list them in
    :attr:`Sources.skipped`; falling back to the demo is said on stderr."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if demo:
        return Sources([demo_as_session()], "demo")
    skipped: list[Skipped] = []
    sessions: list[Session] = []
    if stored:
        with open_store(store) as opened:
            sessions.extend(stored_session(opened, session_id) for session_id in stored)
    if paths or stored:
        origin = "paths" if paths else "store"
        for path in paths:
            if not path.exists():
                raise UsageError(
                    f"{path}: no such file or directory; pass agent log files or folders"
                )
            sessions.extend(load_sessions(path, skipped=skipped))
        if limit is not None:
            sessions = sessions[:limit]
    else:
        origin = "your agent logs"
        files = discover_user_logs()[: limit or DISCOVERED_LIMIT]
        if not files:
            notice(
                "no Claude Code or Codex logs found (~/.claude/projects, ~/.codex/sessions); "
                "using the built-in demo session. Pass log files or folders to use yours."
            )
            return Sources([demo_as_session()], "demo")
        for path in files:
            try:
                sessions.extend(load_sessions(path))
            except TraceError as exc:
                skipped.append(Skipped(str(path), skip_reason(exc)))
    kept = [s for s in sessions if len(s.calls) >= min_calls]
    if not kept and origin == "your agent logs":
        notice(
            f"none of your {len(files)} newest Claude Code / Codex log(s) has a session with "
            f"at least {min_calls} model call(s)"
            + (f" ({len(skipped)} could not be read)" if skipped else "")
            + "; using the built-in demo session"
        )
        return Sources([demo_as_session()], "demo", skipped)
    if not kept:
        raise UsageError(
            f"no session with at least {min_calls} model call(s) in "
            f"{', '.join([*map(str, paths), *stored])}"
        )
    return Sources(kept, origin, skipped)


def _bar(what: str) -> Progress:
    """A progress bar on stderr: what, bar, done of total, time, the current unit's name
    (transient; silent when piped)."""
    return Progress(
        TextColumn(f"{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[name]}"),
        console=Console(stderr=True),
        transient=True,
    )


@contextmanager
def steps(total: int, what: str) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr over ``total`` units of work (transient; silent when
    piped). Yields ``start(name)``: call it as each unit begins; the bar counts the units
    finished."""
    bar = _bar(what)
    with bar:
        task = bar.add_task(what, total=total, name="")
        started = [0]

        def start(name: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] += 1
            bar.update(task, name=name[:60])

        yield start
        if started[0]:
            bar.advance(task)


def progress(sessions: Sequence[Session], what: str) -> Iterator[Session]:
    """Iterate ``sessions`` with a progress bar on stderr (transient; silent when piped)."""
    bar = _bar(what)
    with bar:
        task = bar.add_task(what, total=len(sessions), name="")
        for session in sessions:
            bar.update(task, name=session.name[:48])
            yield session
            bar.advance(task)
