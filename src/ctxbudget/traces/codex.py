"""Codex CLI rollouts (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``).

Each line is a ``RolloutLine``: ``{"timestamp", "type", "payload"}`` with ``type``
``session_meta`` (first line: id, cwd, ``base_instructions``, ``forked_from_id``...),
``response_item`` (a Responses API item: ``message``, ``reasoning``, ``function_call`` /
``function_call_output``, ``custom_tool_call`` / ``custom_tool_call_output``,
``local_shell_call``, ``web_search_call``...), ``turn_context`` (the turn's ``model``...),
``event_msg`` (UI events; ``token_count`` carries ``info.last_token_usage`` of one model
call), ``token_usage_record`` (0.17x: the usage of one response), ``world_state`` (0.17x:
the environment, not sent as such) and ``compacted`` (a compaction). Line types this
importer does not know (new ones appear every few releases) are passed over and counted
in :attr:`Session.skipped`. The older layout without the wrapper (until about September
2025: a first line ``{"id", "timestamp", "instructions"}``, then bare Responses items and
``{"record_type": "state"}`` markers) is read too; it has no usage.

How lines become items (``from_openai_responses``): consecutive model outputs (reasoning,
assistant message, tool calls) are ONE assistant item = one model call, answered by the
outputs that follow; two responses written back to back (a turn's last answer, then a
compaction's summary) stay two calls. ``local_shell_call`` becomes a ``local_shell``
function call (its arguments: the action) so its output pairs with it; ``ghost_snapshot``
items (local undo points) and ``event_msg`` records other than ``token_count`` (they repeat
the messages for the UI) are not sent to the model and are skipped. A ``compacted`` record
restarts the context (:attr:`Session.resets`): from its ``replacement_history`` (0.17x),
else from its summary as a user message.

Usage: where ``token_usage_record`` lines exist, each is the usage of the response just
written (exact, one per call). Else each ``token_count`` with new figures
(``total_token_usage`` grew; repeats from rate-limit refreshes and the all-zero count after
a compaction are skipped) belongs to one model call: to the last call since the previous
count if that call has none, else to the next call (the count was written before its
output, as older versions did). A fork (``forked_from_id``) starts with copies of its
parent's counts: they are nobody's call, and the fork's totals leave them out. Usage is the
Responses usage flattened (``input_tokens`` already include ``cached_input_tokens``, the
cache reads; ``output_tokens`` include ``reasoning_output_tokens``), read key by key by the
library's Responses mapper; a usage it rejects (more cached tokens than input tokens) is a
:class:`~ctxbudget.errors.TraceError` naming the line. The call's model is the
``turn_context`` model in force; before any (rollouts of 0.34 and older have none, a fork's
first calls) the model the thread settings, ``session_meta`` or, for a fork, its parent
rollout's last turn name. :attr:`Session.totals` holds the last ``total_token_usage`` and
the number of counted calls. The system prompt is ``session_meta.base_instructions`` when
recorded; tool schemas are not recorded.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from ctxbudget.billing.usage import Usage, usage_from_openai_responses
from ctxbudget.convert.openai_responses import from_openai_responses
from ctxbudget.session.items import Item
from ctxbudget.traces._common import CallInfo, recorded_calls
from ctxbudget.traces._read import Document, Where, converting, sub
from ctxbudget.traces.session import RecordedTotals, Session

__all__ = ["FORMAT", "is_legacy_meta", "is_record", "read"]

FORMAT = "codex"

_LINE_TYPES = ("session_meta", "response_item", "event_msg", "turn_context", "compacted")
"""Line types that identify a rollout (detection)."""
_KNOWN_TYPES = (*_LINE_TYPES, "world_state", "token_usage_record")
"""Line types read or knowingly passed over; any other is counted in ``Session.skipped``."""
_SKIPPED_ITEMS = ("ghost_snapshot",)


def is_record(value: Any) -> bool:
    """A ``RolloutLine`` of the current layout."""
    return (
        isinstance(value, dict)
        and value.get("type") in _KNOWN_TYPES
        and isinstance(value.get("payload"), dict)
    )


def _is_wrapped(value: dict[str, Any]) -> bool:
    """A ``RolloutLine`` of any type, known or not (new kinds appear every few releases)."""
    return isinstance(value.get("type"), str) and isinstance(value.get("payload"), dict)


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
        self.fallback_model: str | None = None  # session_meta / settings: no turn_context
        self.instructions: str | None = None
        self.forked = False
        self.parent: str | None = None
        self.before_context = 0  # calls made before this file's first turn_context
        self.base_total: dict[str, Any] | None = None  # a fork's copy of its parent's total
        self.per_response = False  # token_usage_record lines: one exact usage per response
        self.resets: list[int] = []  # input indexes where a compaction restarted the context
        self.splits: list[int] = []  # input indexes where a response follows another directly
        self.skipped: dict[str, int] = {}

    def skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1

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
                if self.inputs and _is_output(self.inputs[-1]):
                    self.splits.append(len(self.inputs))  # two responses back to back
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
        if all(last.get(k) == 0 for k in ("input_tokens", "output_tokens")):
            return  # a compaction resets the window: a count of no call
        if self.forked and not self.groups:
            self.base_total = self.total  # a fork starts with copies of its parent's counts
            return
        if self.per_response:
            return  # token_usage_record lines say it per response
        self.assign(_usage(last, where, "token_count.info.last_token_usage"))

    def usage_record(self, payload: dict[str, Any], where: Where) -> None:
        """``token_usage_record`` (newer CLIs): the usage of the response just written."""
        raw = where.obj(where.field(payload, "usage", "token_usage_record"), "usage")
        if not self.per_response:  # counts taken from token_count lines so far are dropped
            self.per_response = True
            self.groups = [CallInfo(model=g.model) for g in self.groups]
            self.since_count = list(range(len(self.groups)))
            self.pending = None
            self.counted = 0
        model = payload.get("model")
        if isinstance(model, str) and self.fallback_model is None:
            self.fallback_model = model
        self.assign(_usage(raw, where, "token_usage_record.usage"))
        self.in_group = False  # the response is complete: the next output is another call

    def assign(self, usage: Usage) -> None:
        self.counted += 1
        open_groups = [g for g in self.since_count if self.groups[g].usage is None]
        self.since_count = []
        if open_groups:
            g = open_groups[-1]
            self.groups[g] = CallInfo(usage=usage, model=self.groups[g].model)
        else:
            self.pending = usage

    def record(self, record: dict[str, Any], line: int | None) -> None:
        where = self.where.at(line)
        kind, payload = record["type"], record["payload"]
        if kind == "session_meta":
            self.meta(payload)
        elif kind == "turn_context":
            model = payload.get("model")
            if self.session_model is None:
                self.before_context = len(self.groups)
            if isinstance(model, str):
                self.model = model
                self.session_model = self.session_model or model
        elif kind == "response_item":
            self.item(payload, line)
        elif kind == "event_msg":
            self.event(payload, where)
        elif kind == "token_usage_record":
            self.usage_record(payload, where)
        elif kind == "compacted":
            self.compacted(payload, line)
        elif kind not in _KNOWN_TYPES:
            self.skip(kind)

    def meta(self, payload: dict[str, Any]) -> None:
        base = payload.get("base_instructions")
        text = base.get("text") if isinstance(base, dict) else base
        if isinstance(text, str) and self.instructions is None:
            self.instructions = text
        parent = payload.get("forked_from_id")
        if parent:
            self.forked = True
            self.parent = str(parent)
        self.fallback(payload.get("model"))

    def event(self, payload: dict[str, Any], where: Where) -> None:
        kind = payload.get("type")
        if kind == "token_count":
            self.token_count(payload, where)
        elif kind in ("session_configured", "thread_settings_applied"):
            settings = sub(payload, "thread_settings") if "thread_settings" in payload else payload
            model = settings.get("model")
            if isinstance(model, str) and model:
                if self.session_model is None:  # no turn_context yet (a fork's first calls)
                    self.model = model
                self.fallback(model)

    def fallback(self, model: Any) -> None:
        if isinstance(model, str) and model and self.fallback_model is None:
            self.fallback_model = model

    def compacted(self, payload: dict[str, Any], line: int | None) -> None:
        """A compaction: the context restarts from its replacement history (newer CLIs) or
        from the summary as a user message (older ones)."""
        self.in_group = False
        self.resets.append(len(self.inputs))
        history = payload.get("replacement_history")
        if isinstance(history, list) and history:
            for entry in history:
                if isinstance(entry, dict) and entry.get("type") in ("message", None):
                    self.item(entry, line)
                else:
                    self.skip(f"compacted.{_kind(entry)}")
            return
        summary = self.where.at(line).text(payload, "message", "compacted")
        text = {"type": "input_text", "text": summary}
        self.item({"type": "message", "role": "user", "content": [text]}, line)

    def calls(self) -> list[CallInfo]:
        """The call figures, every call named by a model (the session's when none was)."""
        model = self.session_model or self.fallback_model
        return [g if g.model else CallInfo(usage=g.usage, model=model) for g in self.groups]


def _kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else "unknown"


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


def _usage(last: dict[str, Any], where: Where, what: str) -> Usage:
    """``last_token_usage`` put back, key by key, into the Responses ``usage`` it was
    flattened from, then read by the one Responses mapper (counts are checked here first,
    so a bad one is named by its Codex key)."""
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
        elif _is_wrapped(record):
            reader.skip(record["type"])  # a line type newer than this importer
        elif isinstance(record.get("type"), str) and "payload" not in record:
            reader.item(record, line)  # the older layout: a bare Responses item
        else:
            where.at(line).fail(
                'expected a Codex rollout line {"timestamp", "type", "payload"}, got type '
                f"{record.get('type')!r}"
            )
    if not reader.inputs:
        return []
    items = _convert(reader, len(reader.inputs))
    if sum(item.role == "assistant" for item in items) != len(reader.groups):
        where.fail("could not tell the model calls apart (model outputs out of order)")
    totals = None
    if reader.total is not None:
        base = reader.base_total or {}
        what = "total_token_usage"
        totals = RecordedTotals(
            calls=reader.counted,
            input_tokens=where.count(reader.total, "input_tokens", what, 0)
            - where.count(base, "input_tokens", what, 0),
            output_tokens=where.count(reader.total, "output_tokens", what, 0)
            - where.count(base, "output_tokens", what, 0),
        )
    calls = reader.calls()
    if reader.parent is not None and reader.before_context:
        inherited = _parent_model(doc.path, reader.parent)  # a fork's first calls: the
        if inherited is not None:  # parent's model, which the fork's own lines do not name
            head = [
                CallInfo(usage=c.usage, model=inherited) for c in calls[: reader.before_context]
            ]
            calls = head + calls[reader.before_context :]
    return [
        Session(
            name=name,
            source=str(doc.path),
            format=FORMAT,
            items=tuple(items),
            calls=recorded_calls(items, calls),
            model=reader.session_model or reader.fallback_model,
            totals=totals,
            skipped=dict(reader.skipped),
            resets=_item_positions(reader, len(items)),
        )
    ]


def _parent_model(path: Path, parent: str) -> str | None:
    """The last ``turn_context`` model of the rollout ``parent`` beside ``path`` (Codex
    keeps them under ``sessions/YYYY/MM/DD/``), None when it cannot be found."""
    root = path.parents[3] if len(path.parents) > 3 else path.parent
    model: str | None = None
    for candidate in sorted(root.glob(f"**/rollout-*{parent}.jsonl"))[:1]:
        try:
            lines = candidate.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return None
        for text in lines:
            if '"turn_context"' not in text:
                continue
            try:
                found = json.loads(text).get("payload", {}).get("model")
            except (ValueError, AttributeError):
                continue
            model = found if isinstance(found, str) else model
    return model


def _convert(reader: _Reader, end: int) -> list[Item]:
    """The items of ``reader.inputs[:end]``. Two responses back to back (the compaction
    summary right after a turn's last answer) are converted apart, so that each stays
    its own assistant item and call; the first has no open tool call there."""
    bounds = [0, *(n for n in reader.splits if 0 < n < end), end]
    items: list[Item] = []
    for first, last in itertools.pairwise(bounds):
        with converting(reader.where, lines=reader.lines[first:last]):
            items += from_openai_responses(
                reader.inputs[first:last],
                instructions=reader.instructions if first == 0 else None,
                start=len(items),
            )
    return items


def _item_positions(reader: _Reader, count: int) -> tuple[int, ...]:
    """The item index of each reset (inputs convert to fewer items: calls group)."""
    out = [
        len(_convert(reader, index)) for index in reader.resets if 0 < index < len(reader.inputs)
    ]
    return tuple(sorted({n for n in out if n < count}))
