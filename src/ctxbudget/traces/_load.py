"""Loading sessions from a file or a directory of logs, whatever their format."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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

__all__ = ["detect_format", "iter_sessions", "load_sessions"]

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


def load_sessions(path: str | Path) -> list[Session]:
    """Every session in a log file, or in the logs under a directory (walked recursively,
    in sorted order; files that are not agent logs are skipped there).

    A named file that is not a recognised log, a directory without any, or a log that
    cannot be read raise :class:`TraceError` naming the file, the line and what was
    expected. Inside a directory, sessions are named by their path relative to it.
    """
    return list(_sessions_at(Path(path)))


def iter_sessions(paths: Iterable[str | Path]) -> Iterator[Session]:
    """The sessions of every path (files and directories), lazily, file by file."""
    for path in paths:
        yield from _sessions_at(Path(path))


def _sessions_at(path: Path) -> Iterator[Session]:
    if path.is_dir():
        yield from _walk(path)
    elif path.exists():
        yield from _load(read_document(path), path.name)
    else:
        raise TraceError("no such file or directory", file=str(path))


def _walk(root: Path) -> Iterator[Session]:
    found = False
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.suffix not in SUFFIXES or not path.is_file():
            continue
        if any(part.startswith(".") for part in relative.parts[:-1]):
            continue
        try:
            doc = read_document(path)
        except TraceError:
            continue  # not JSON at all: not a log of ours
        fmt = detect(doc)
        if fmt is None:
            continue
        found = True
        if fmt == terminus.FORMAT and terminus.looks_like_response(doc.value, doc.path):
            continue  # read with its prompt.json
        yield from _load(doc, relative.as_posix(), fmt)
    if not found:
        raise TraceError(f"no agent logs found in this directory; {EXPECTED}", file=str(root))


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
