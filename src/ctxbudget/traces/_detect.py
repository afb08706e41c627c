"""Telling the log formats apart from their content (and, for terminus pairs, the file name)."""

from __future__ import annotations

from typing import Any

from ctxbudget.traces import (
    claude_code,
    codex,
    mini_swe_agent,
    openai_chat,
    openhands,
    swe_agent,
    terminus,
)
from ctxbudget.traces._read import Document

__all__ = ["EXPECTED", "FORMATS", "detect"]

FORMATS: tuple[str, ...] = (
    swe_agent.FORMAT,
    mini_swe_agent.FORMAT,
    openhands.FORMAT,
    openai_chat.FORMAT,
    terminus.FORMAT,
    claude_code.FORMAT,
    claude_code.STREAM_FORMAT,
    codex.FORMAT,
)
"""Every log format the importers read."""

EXPECTED = (
    "expected an agent log: a JSON object with 'messages' + 'trajectory_format' "
    "(mini-swe-agent), 'history' + 'trajectory' (SWE-agent) or 'messages' (terminus "
    "prompt.json, OpenAI chat); a JSON array of OpenAI chat messages or of tau-bench runs "
    "with 'traj'; or JSONL lines of OpenHands output.jsonl, Claude Code (session file or "
    "stream-json) or Codex CLI rollouts"
)
"""What an unrecognised file was expected to be (the end of the error message)."""

_SCAN = 50
"""JSONL records looked at before giving up on a file."""


def detect(doc: Document) -> str | None:
    """The format of a read document, or ``None`` when it is none we know."""
    if doc.lines is None:
        return _detect_value(doc)
    for n, (_, record) in enumerate(doc.lines[:_SCAN]):
        found = _detect_record(record)
        if found is not None:
            return found
        if n == 0 and len(doc.lines) == 1:
            return _detect_value(Document(doc.path, value=record))
    return None


def _detect_value(doc: Document) -> str | None:
    value, path = doc.value, doc.path
    if swe_agent.looks_like(value):
        return swe_agent.FORMAT
    if mini_swe_agent.looks_like(value):
        return mini_swe_agent.FORMAT
    if openhands.looks_like(value):
        return openhands.FORMAT
    if terminus.looks_like(value, path) or terminus.looks_like_response(value, path):
        return terminus.FORMAT
    if openai_chat.looks_like(value):
        return openai_chat.FORMAT
    return _detect_record(value)


def _detect_record(record: Any) -> str | None:
    if codex.is_record(record) or codex.is_legacy_meta(record):
        return codex.FORMAT
    if claude_code.is_stream_record(record):
        return claude_code.STREAM_FORMAT
    if claude_code.is_record(record):
        return claude_code.FORMAT
    if openhands.looks_like(record):
        return openhands.FORMAT
    return None
