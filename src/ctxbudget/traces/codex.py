"""Codex CLI rollouts (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``).

Each line is a ``RolloutLine``: ``{"timestamp", "type", "payload"}`` with ``type``
``session_meta`` (first line: id, cwd, ``base_instructions``...), ``response_item`` (a
Responses API item: ``message``, ``reasoning``, ``function_call`` /
``function_call_output``, ``custom_tool_call`` / ``custom_tool_call_output``,
``local_shell_call``...), ``turn_context`` (the turn's ``model``...), ``event_msg``
(UI events; ``token_count`` carries ``info.last_token_usage`` of one model call) and
``compacted`` (a compaction's summary). The older layout without the wrapper (until
about September 2025: a first line ``{"id", "timestamp", "instructions"}``, then bare
Responses items and ``{"record_type": "state"}`` markers) is read too; it has no usage.

How lines become items (``from_openai_responses``): consecutive model outputs (reasoning,
assistant message, tool calls) are ONE assistant item = one model call, answered by the
outputs that follow. ``local_shell_call`` becomes a ``local_shell`` function call (its
arguments: the action) so its output pairs with it; ``ghost_snapshot`` items (local undo
points) and ``event_msg`` records other than ``token_count`` (they repeat the messages
for the UI) are not sent to the model and are skipped. A ``compacted`` record becomes a
user message with the summary; the history it replaced stays before it (limitation).

Usage: each ``token_count`` with new figures (``total_token_usage`` grew; repeats from
rate-limit refreshes are skipped) belongs to one model call: to the last call since the
previous count if that call has none, else to the next call (the count was written
before its output, as older versions did). ``last_token_usage`` is the Responses usage
flattened (``input_tokens`` already include ``cached_input_tokens``, the cache reads;
``output_tokens`` include ``reasoning_output_tokens``) and is read, key by key, by the
library's Responses mapper; a usage it rejects (more cached tokens than input tokens) is
a :class:`~ctxbudget.errors.TraceError` naming the line. The call's model is the
``turn_context`` model in force. :attr:`Session.totals` holds the last
``total_token_usage`` and the number of counted calls. The system prompt is
``session_meta.base_instructions.text`` when recorded; tool schemas are not recorded.
"""

from __future__ import annotations

import json
from typing import Any

from ctxbudget.billing.usage import Usage, usage_from_openai_responses
from ctxbudget.convert.openai_responses import from_openai_responses
from ctxbudget.traces._common import CallInfo, recorded_calls
from ctxbudget.traces._read import Document, Where, converting
from ctxbudget.traces.session import RecordedTotals, Session

__all__ = ["FORMAT", "is_legacy_meta", "is_record", "read"]

FORMAT = "codex"

_LINE_TYPES = ("session_meta", "response_item", "event_msg", "turn_context", "compacted")
_SKIPPED_ITEMS = ("ghost_snapshot",)


def is_record(value: Any) -> bool:
    """A ``RolloutLine`` of the current layout."""
    return (
        isinstance(value, dict)
        and value.get("type") in _LINE_TYPES
        and isinstance(value.get("payload"), dict)
    )


def is_legacy_meta(value: Any) -> bool:
    """The first line of the older, unwrapped layout."""
    return (
        isinstance(value, dict)
        and "type" not in value
        and isinstance(value.get("id"), str)
        and isinstance(value.get("timestamp"), str)
        and ("instructions" in value or "git" in value)
    )


def _is_output(item: dict[str, Any]) -> bool:
    """Whether a Responses item is model output (the converter's own grouping rule)."""
    kind = item.get("type")
    if kind == "message" or (kind is None and "role" in item):
        return item.get("role") == "assistant" and item.get("content") != []
    return kind == "reasoning" or (isinstance(kind, str) and kind.endswith("_call"))


class _Reader:
    """State while walking a rollout: inputs, call groups and their figures."""

    def __init__(self, where: Where) -> None:
        self.where = where
        self.inputs: list[dict[str, Any]] = []
        self.lines: list[int | None] = []
        self.groups: list[CallInfo] = []
        self.in_group = False
        self.since_count: list[int] = []  # groups formed since the last token count
        self.pending: Usage | None = None
        self.last_total: Any = None
        self.counted = 0
        self.total: dict[str, Any] | None = None
        self.model: str | None = None
        self.session_model: str | None = None
        self.instructions: str | None = None

    def item(self, item: dict[str, Any], line: int | None) -> None:
        kind = item.get("type")
        if kind is not None and not isinstance(kind, str):
            self.where.at(line).fail(f"response item type: expected a string, got {kind!r}")
        if kind in _SKIPPED_ITEMS:
            return
        if kind == "local_shell_call":
            item = _shell_call(item)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            item = _plain_output(item)
        if _is_output(item):
            if not self.in_group:
                self.groups.append(CallInfo(usage=self.pending, model=self.model))
                self.since_count.append(len(self.groups) - 1)
                self.pending = None
                self.in_group = True
        else:
            self.in_group = False
        self.inputs.append(item)
        self.lines.append(line)

    def token_count(self, payload: dict[str, Any], where: Where) -> None:
        info = payload.get("info")
        if not isinstance(info, dict):
            return
        total = info.get("total_token_usage")
        if total is not None and total == self.last_total:
            return  # the same figures again (a rate-limit refresh)
        self.last_total = total
        self.total = total if isinstance(total, dict) else self.total
        last = where.field(info, "last_token_usage", "token_count.info")
        last = where.obj(last, "token_count.info.last_token_usage")
        usage = _usage(last, where)
        self.counted += 1
        open_groups = [g for g in self.since_count if self.groups[g].usage is None]
        self.since_count = []
        if open_groups:
            g = open_groups[-1]
            old = self.groups[g]
            self.groups[g] = CallInfo(usage=usage, model=old.model)
        else:
            self.pending = usage

    def record(self, record: dict[str, Any], line: int | None) -> None:
        where = self.where.at(line)
        kind, payload = record["type"], record["payload"]
        if kind == "session_meta":
            base = payload.get("base_instructions")
            text = base.get("text") if isinstance(base, dict) else None
            if isinstance(text, str) and self.instructions is None:
                self.instructions = text
        elif kind == "turn_context":
            model = payload.get("model")
            if isinstance(model, str):
                self.model = model
                self.session_model = self.session_model or model
        elif kind == "response_item":
            self.item(payload, line)
        elif kind == "event_msg" and payload.get("type") == "token_count":
            self.token_count(payload, where)
        elif kind == "compacted":
            summary = where.text(payload, "message", "compacted")
            text = {"type": "input_text", "text": summary}
            self.item({"type": "message", "role": "user", "content": [text]}, line)


def _shell_call(item: dict[str, Any]) -> dict[str, Any]:
    call_id = item.get("call_id") or item.get("id")
    return {
        "type": "function_call",
        "name": "local_shell",
        "call_id": call_id,
        "arguments": json.dumps(item.get("action", {}), ensure_ascii=False),
    }


def _plain_output(item: dict[str, Any]) -> dict[str, Any]:
    """Outputs written as ``{"content": ..., "success": ...}`` by some versions → the text."""
    output = item.get("output")
    if isinstance(output, dict) and "content" in output:
        return {**item, "output": output["content"]}
    return item


def _usage(last: dict[str, Any], where: Where) -> Usage:
    """``last_token_usage`` put back, key by key, into the Responses ``usage`` it was
    flattened from, then read by the one Responses mapper (counts are checked here first,
    so a bad one is named by its Codex key)."""
    what = "token_count.info.last_token_usage"
    cached = where.count(last, "cached_input_tokens", what, 0)
    reasoning = where.count(last, "reasoning_output_tokens", what, 0)
    usage = {
        "input_tokens": where.count(last, "input_tokens", what),
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": where.count(last, "output_tokens", what, 0),
        "output_tokens_details": {"reasoning_tokens": reasoning},
    }
    with converting(where, what):
        return usage_from_openai_responses(usage)


def read(doc: Document, name: str) -> list[Session]:
    """The one session of a Codex rollout (either layout)."""
    where = doc.where
    reader = _Reader(where)
    for line, value in doc.records():
        record = where.at(line).obj(value, "the line")
        if "record_type" in record or is_legacy_meta(record):
            continue
        if is_record(record):
            reader.record(record, line)
        elif isinstance(record.get("type"), str) and "payload" not in record:
            reader.item(record, line)  # the older layout: a bare Responses item
        else:
            where.at(line).fail(
                'expected a Codex rollout line {"timestamp", "type", "payload"} with type '
                f"one of {sorted(_LINE_TYPES)}, got type {record.get('type')!r}"
            )
    if not reader.inputs:
        return []
    with converting(where, lines=reader.lines):
        items = from_openai_responses(reader.inputs, instructions=reader.instructions)
    if sum(item.role == "assistant" for item in items) != len(reader.groups):
        where.fail("could not tell the model calls apart (model outputs out of order)")
    totals = None
    if reader.total is not None:
        totals = RecordedTotals(
            calls=reader.counted,
            input_tokens=where.count(reader.total, "input_tokens", "total_token_usage", 0),
            output_tokens=where.count(reader.total, "output_tokens", "total_token_usage", 0),
        )
    return [
        Session(
            name=name,
            source=str(doc.path),
            format=FORMAT,
            items=tuple(items),
            calls=recorded_calls(items, reader.groups),
            model=reader.session_model,
            totals=totals,
        )
    ]
