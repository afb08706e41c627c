"""Loading sessions from a file or a directory of logs, whatever their format."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ctxbudget.errors import CtxBudgetError, TraceError
from ctxbudget.traces import (
    claude_code,
    codex,
    mini_swe_agent,
    openai_chat,
    openhands,
    swe_agent,
    terminus,
)
from ctxbudget.traces._detect import EXPECTED, detect
from ctxbudget.traces._read import Document, read_document
from ctxbudget.traces.session import Session

__all__ = ["Skipped", "detect_format", "iter_sessions", "load_sessions", "skip_reason"]

SUFFIXES = (".json", ".jsonl", ".ndjson", ".traj")
"""File names a directory walk looks at."""

_Reader = Callable[[Document, str], list[Session]]

_READERS: dict[str, _Reader] = {
    swe_agent.FORMAT: swe_agent.read,
    mini_swe_agent.FORMAT: mini_swe_agent.read,
    openhands.FORMAT: openhands.read,
    openai_chat.FORMAT: openai_chat.read,
    terminus.FORMAT: terminus.read,
    claude_code.FORMAT: lambda doc, name: claude_code.read(doc, name, stream=False),
    claude_code.STREAM_FORMAT: lambda doc, name: claude_code.read(doc, name, stream=True),
    codex.FORMAT: codex.read,
}


def detect_format(path: str | Path) -> str:
    """The format of one log file (one of ``FORMATS``); :class:`TraceError` if none."""
    path = Path(path)
    doc = read_document(path)
    found = detect(doc)
    if found is None:
        raise doc.error or TraceError(f"not a recognised agent log; {EXPECTED}", file=str(path))
    return found


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file a directory walk passed over, and why (shown to the user, never silent)."""

    path: str
    """The file, relative to the directory walked."""
    reason: str
    """Why: unreadable, not UTF-8, not JSON, not an agent log, or the importer's error."""
    log: bool = True
    """False for JSON files that are simply not agent logs (expected in run folders)."""


def load_sessions(path: str | Path, *, skipped: list[Skipped] | None = None) -> list[Session]:
    """Every session in a log file, or in the logs under a directory (walked recursively,
    in sorted order; files that are not agent logs are skipped there).

    A named file that is not a recognised log, a directory without any, or a log that
    cannot be read raise :class:`TraceError` naming the file, the line and what was
    expected. Inside a directory, sessions are named by their path relative to it.

    ``skipped``: a list that receives every file a directory walk passed over, with the
    reason; a recognised log that cannot be imported is then skipped (and listed) instead
    of failing the walk. A directory where nothing could be read still raises, naming what
    was skipped and why.
    """
    return list(_sessions_at(Path(path), skipped))


def iter_sessions(paths: Iterable[str | Path]) -> Iterator[Session]:
    """The sessions of every path (files and directories), lazily, file by file."""
    for path in paths:
        yield from _sessions_at(Path(path), None)


def _sessions_at(path: Path, skipped: list[Skipped] | None) -> Iterator[Session]:
    if path.is_dir():
        yield from _walk(path, skipped)
    elif path.exists():
        yield from _load(read_document(path), path.name)
    else:
        raise TraceError("no such file or directory", file=str(path))


def _walk(root: Path, skipped: list[Skipped] | None) -> Iterator[Session]:
    read_any = False
    passed: list[Skipped] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.suffix not in SUFFIXES or not path.is_file():
            continue
        if any(part.startswith(".") for part in relative.parts[:-1]):
            continue
        name = relative.as_posix()
        companion = claude_code.companion_of(path)
        if companion is not None:  # read with its session: never a second session
            passed.append(Skipped(name, companion, log=False))
            continue
        try:
            doc = read_document(path)
        except TraceError as exc:  # unreadable, not UTF-8, empty or not JSON
            passed.append(Skipped(name, skip_reason(exc)))
            continue
        fmt = detect(doc)
        if fmt is None and doc.error is not None:  # a JSONL line that does not parse
            passed.append(Skipped(name, skip_reason(doc.error)))
            continue
        if fmt is None:
            passed.append(Skipped(name, "not a recognised agent log", log=False))
            continue
        if fmt == terminus.FORMAT and terminus.looks_like_response(doc.value, doc.path):
            read_any = True
            continue  # read with its prompt.json
        if skipped is None:
            yield from _load(doc, name, fmt)
        else:
            try:
                sessions = _load(doc, name, fmt)
            except TraceError as exc:
                passed.append(Skipped(name, skip_reason(exc)))
                continue
            yield from sessions
        read_any = True
    if skipped is not None:
        skipped.extend(passed)
    if read_any:
        return
    broken = [s for s in passed if s.log]
    if not broken:
        raise TraceError(f"no agent logs found in this directory; {EXPECTED}", file=str(root))
    listed = "; ".join(f"{s.path}: {s.reason}" for s in broken[:3])
    more = f"; and {len(broken) - 3} more" if len(broken) > 3 else ""
    raise TraceError(
        f"no agent logs found that could be read: skipped {len(broken)} file(s) that could "
        f"not be read: {listed}{more}; fix or remove them, or pass the logs that can be read",
        file=str(root),
    )


def skip_reason(exc: TraceError) -> str:
    """The message of ``exc`` without its ``file[:line]: `` prefix (line kept in words)."""
    where = f"{exc.file}:{exc.line}" if exc.line is not None else exc.file
    text = str(exc)
    reason = text[len(where) + 2 :] if text.startswith(where + ": ") else text
    return reason if exc.line is None else f"line {exc.line}: {reason}"


def _load(doc: Document, name: str, fmt: str | None = None) -> list[Session]:
    fmt = fmt or detect(doc)
    if fmt is None:  # a line that does not parse says more than "unknown format"
        raise doc.error or TraceError(f"not a recognised agent log; {EXPECTED}", file=str(doc.path))
    try:
        return _READERS[fmt](doc, name)
    except TraceError:
        raise
    except (CtxBudgetError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # a shape no check above foresaw: still one error naming the file, never a traceback
        detail = str(exc) if isinstance(exc, CtxBudgetError) else f"{type(exc).__name__}: {exc}"
        raise TraceError(f"cannot read this {fmt} log: {detail}", file=str(doc.path)) from exc
