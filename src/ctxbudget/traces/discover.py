"""Finding the agent logs a user's own tools wrote: Claude Code and Codex CLI sessions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ctxbudget.traces import claude_code

__all__ = ["discover_user_logs"]


def discover_user_logs(
    home: Path | None = None, environ: Mapping[str, str] | None = None
) -> list[Path]:
    """The session logs of Claude Code and Codex CLI on this machine, newest first.

    Claude Code: ``projects/*/*.jsonl`` under ``$CLAUDE_CONFIG_DIR`` (default
    ``~/.claude``), and the sub-agent transcripts beside them
    (``projects/*/<session>/subagents/agent-*.jsonl``, not the compaction copies).
    Codex CLI: ``sessions/**/rollout-*.jsonl`` under ``$CODEX_HOME``
    (default ``~/.codex``). Sorted by modification time, newest first; folders that do not
    exist give nothing (no error). ``home`` and ``environ`` replace ``Path.home()`` and
    ``os.environ`` (tests, or looking at another account's files).
    """
    env = os.environ if environ is None else environ
    base = Path.home() if home is None else Path(home)
    claude = _root(env.get("CLAUDE_CONFIG_DIR"), base / ".claude", base)
    codex = _root(env.get("CODEX_HOME"), base / ".codex", base)
    subagents = [
        path
        for path in claude.glob("projects/*/*/subagents/agent-*.jsonl")
        if claude_code.companion_of(path) is None  # compaction copies: never a session
    ]
    found = [
        *claude.glob("projects/*/*.jsonl"),
        *subagents,
        *codex.glob("sessions/**/rollout-*.jsonl"),
    ]
    dated: list[tuple[float, str, Path]] = []
    for path in found:
        try:
            if path.is_file():
                dated.append((path.stat().st_mtime, str(path), path))
        except OSError:
            continue  # removed while we looked
    dated.sort(key=lambda entry: (-entry[0], entry[1]))
    return [path for _, _, path in dated]


def _root(value: str | None, default: Path, home: Path) -> Path:
    if not value:
        return default
    if value == "~" or value.startswith("~/"):
        return home / value[2:]
    return Path(value)
