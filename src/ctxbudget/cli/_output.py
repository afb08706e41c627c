"""Output helpers shared by every command: JSON for machines, rich tables for people."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

__all__ = ["console", "fail", "print_json"]


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
    """Print ``error: message`` on stderr and exit; never a traceback for our own errors."""
    Console(file=sys.stderr, soft_wrap=True).print(f"[bold red]error:[/] {message}")
    raise SystemExit(code)
