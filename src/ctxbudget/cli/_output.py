"""Output helpers shared by every command: JSON for machines, rich tables for people."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape

from ctxbudget.errors import UsageError

__all__ = [
    "console",
    "fail",
    "notice",
    "os_error_message",
    "output_dir",
    "output_file",
    "print_json",
]


def console(min_width: int = 0) -> Console:
    """A console on stdout (made per call so tests capturing stdout see the output),
    at least ``min_width`` columns wide when stdout is not a terminal (wide tables)."""
    out = Console(file=sys.stdout, soft_wrap=True)
    if not out.is_terminal and out.width < min_width:
        out = Console(file=sys.stdout, soft_wrap=True, width=min_width)
    return out


def print_json(data: Any) -> None:
    """Print one JSON document, stable key order, to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr, on one line, and exit; never a traceback."""
    line = " ".join(message.split())
    Console(file=sys.stderr, soft_wrap=True, highlight=False).print(
        f"[bold red]error:[/] {escape(line)}", markup=True, emoji=False
    )
    raise SystemExit(code)


def notice(message: str) -> None:
    """One line on stderr that the user should see but that is not an error."""
    line = " ".join(message.split())
    Console(file=sys.stderr, soft_wrap=True, highlight=False).print(
        f"[yellow]note:[/] {escape(line)}", markup=True, emoji=False
    )


def os_error_message(exc: OSError) -> str:
    """What the file system refused, naming the file: one line for :func:`fail`."""
    where = exc.filename if exc.filename is not None else "a file"
    what = exc.strerror or type(exc).__name__
    return f"cannot use {where}: {what}; check the path exists and can be written or read"


def output_file(path: Path, option: str) -> bool:
    """Check, before any long work, that ``path`` can be written by ``option``: its folder
    exists or can be made, and it is not a folder. Returns whether a file is already there
    (the caller says it overwrote it). Raises :class:`UsageError` naming the option."""
    if path.is_dir():
        raise UsageError(
            f"{option} {path}: that is a folder; give a file name, e.g. {path}/report.html"
        )
    _make_folder(path.parent, option, path)
    existed = path.exists()
    if not os.access(path if existed else path.parent, os.W_OK):
        raise UsageError(f"{option} {path}: not writable; choose a file you can write")
    return existed


def output_dir(path: Path, option: str) -> None:
    """Make the folder ``option`` writes into, or raise :class:`UsageError` saying why not."""
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"{option} {path}: that is a file, not a folder; give a folder to write into"
        )
    _make_folder(path, option, path)
    if not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: folder not writable; choose one you can write")


def _make_folder(folder: Path, option: str, target: Path) -> None:
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UsageError(
            f"{option} {target}: {blocker} is a file, not a folder; choose another place"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"{option} {target}: cannot make the folder {folder}: {exc.strerror or exc}"
        ) from exc
