"""Claude Code logs: session files (``~/.claude/projects/<project>/<session-id>.jsonl``) and
the ``claude -p --output-format stream-json`` output.

Session files hold one record per line: ``type`` ``user`` / ``assistant`` with an Anthropic
``message``, plus ``uuid``, ``parentUuid``, ``isSidechain``, ``sessionId``; other types
(``summary``, ``file-history-snapshot``, ``queue-operation``, ``system`` notices such as
compaction boundaries) are not messages and are skipped. Stream-json has a ``system``
``init`` record (model, tool names), ``assistant`` / ``user`` records and a final
``result`` (``total_cost_usd``, aggregated ``usage``).

How records become items (one Anthropic message each, via ``from_anthropic``):

- One API response is written as several ``assistant`` records (one per content block)
  sharing ``message.id``: they are ONE assistant item (blocks in order) and ONE call, with
  the usage of the last record (the complete one). Thinking blocks keep their signature.
- Consecutive ``user`` records (the results of parallel tool calls, one per line) merge
  into one user message, so every ``tool_use`` of a turn is answered by the next message.
- Sub-agent threads are skipped: ``isSidechain: true`` (session files) or a non-null
  ``parent_tool_use_id`` (stream-json) — unless the file holds nothing else (a sub-agent's
  own transcript), then it is the session. Records repeated with the same ``uuid`` are
  read once. Synthetic assistant messages (model ``<synthetic>``: API errors, "No response
  requested.") were never model calls and are skipped.
- Records are taken in file order: a conversation rewound and branched (``parentUuid``
  forks) keeps both branches, and a ``/compact`` summary follows the history it replaced.

Usage per call: ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``
is the whole prompt; cache writes split into 5-minute / 1-hour from ``cache_creation``
(all 5-minute without it). Older versions' per-record ``costUSD`` becomes the call's
cost; stream-json's ``total_cost_usd`` is :attr:`Session.totals` ``.cost``. The system
prompt and the tool schemas are not in these logs: no system item, no tools. Stream-json
does not echo the prompt given to ``claude -p``, so its sessions start with the model.
"""

from __future__ import annotations

from typing import Any

from ctxbudget.billing.usage import Usage, usage_from_anthropic
from ctxbudget.convert.anthropic import from_anthropic
from ctxbudget.traces._common import CallInfo, recorded_calls
from ctxbudget.traces._read import Document, Line, Where, converting
from ctxbudget.traces.session import RecordedTotals, Session

__all__ = ["FORMAT", "STREAM_FORMAT", "is_record", "is_stream_record", "read"]

FORMAT = "claude-code"
STREAM_FORMAT = "claude-code-stream"

_SESSION_ONLY_TYPES = ("summary", "file-history-snapshot", "queue-operation", "custom-title", "tag")
_MESSAGE_TYPES = ("user", "assistant")


def is_record(value: Any) -> bool:
    """A record of a Claude Code session file."""
    if not isinstance(value, dict):
        return False
    kind = value.get("type")
    if kind in _SESSION_ONLY_TYPES:
        return True
    return kind in (*_MESSAGE_TYPES, "system") and ("sessionId" in value or "parentUuid" in value)


def is_stream_record(value: Any) -> bool:
    """A record of ``claude -p --output-format stream-json`` output."""
    if not isinstance(value, dict) or "sessionId" in value:
        return False
    kind = value.get("type")
    if kind == "system" and value.get("subtype") == "init":
        return True
    return kind in ("user", "assistant", "result", "stream_event") and "session_id" in value


def read(doc: Document, name: str, *, stream: bool) -> list[Session]:
    """The one session of a Claude Code session file or stream-json output."""
    where = doc.where
    records = [(line, where.at(line).obj(value, "the record")) for line, value in doc.records()]
    model: str | None = None
    totals: RecordedTotals | None = None
    chosen: list[tuple[Line, bool]] = []
    seen: set[str] = set()
    for line, record in records:
        kind = record.get("type")
        if kind == "system" and record.get("subtype") == "init":
            model = record.get("model") if isinstance(record.get("model"), str) else model
        elif kind == "result":
            totals = _totals(record, where.at(line))
        if kind not in _MESSAGE_TYPES:
            continue
        uuid = record.get("uuid")
        if isinstance(uuid, str):
            if uuid in seen:
                continue
            seen.add(uuid)
        side = (
            record.get("parent_tool_use_id") is not None
            if stream
            else record.get("isSidechain") is True
        )
        chosen.append(((line, record), side))
    main = [entry for entry, side in chosen if not side]
    messages, lines, info = _messages(main or [entry for entry, _ in chosen], where)
    if not messages:
        return []
    with converting(where, lines=lines):
        items = from_anthropic(messages)
    first_model = next((c.model for c in info.values() if c.model), None)
    return [
        Session(
            name=name,
            source=str(doc.path),
            format=STREAM_FORMAT if stream else FORMAT,
            items=tuple(items),
            calls=recorded_calls(items, info),
            model=model or first_model,
            totals=totals,
        )
    ]


def _messages(
    records: list[Line], where: Where
) -> tuple[list[dict[str, Any]], list[int | None], dict[int, CallInfo]]:
    """Anthropic messages (assistant records merged by id, user records by adjacency),
    the line of each, and the call figures by message index."""
    messages: list[dict[str, Any]] = []
    lines: list[int | None] = []
    info: dict[int, CallInfo] = {}
    by_id: dict[str, int] = {}
    for line, record in records:
        here = where.at(line)
        message = here.obj(here.field(record, "message", "record"), "message")
        role = message.get("role", record["type"])
        if role not in _MESSAGE_TYPES:
            here.fail(f"message.role: expected 'user' or 'assistant', got {role!r}")
        blocks = _blocks(here.field(message, "content", "message"), here)
        if role == "assistant":
            if message.get("model") == "<synthetic>":
                continue
            mid = message.get("id")
            index = by_id.get(mid) if isinstance(mid, str) else None
            call = _call(record, message, here)
            if index is not None:
                messages[index]["content"].extend(blocks)
                old = info[index]
                info[index] = CallInfo(
                    usage=call.usage or old.usage,
                    cost=call.cost if call.cost is not None else old.cost,
                    model=old.model or call.model,
                )
                continue
            if isinstance(mid, str):
                by_id[mid] = len(messages)
            info[len(messages)] = call
        elif messages and messages[-1]["role"] == "user":
            messages[-1]["content"].extend(blocks)
            continue
        messages.append({"role": role, "content": blocks})
        lines.append(line)
    return messages, lines, info


def _blocks(content: Any, where: Where) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(where.arr(content, "message.content"))


def _call(record: dict[str, Any], message: dict[str, Any], where: Where) -> CallInfo:
    usage: Usage | None = None
    raw = message.get("usage")
    if isinstance(raw, dict) and "input_tokens" in raw:
        with converting(where, "message.usage"):
            usage = usage_from_anthropic(raw)
    model = message.get("model")
    return CallInfo(
        usage=usage,
        cost=where.money(record.get("costUSD"), "costUSD"),
        model=model if isinstance(model, str) else None,
    )


def _totals(record: dict[str, Any], where: Where) -> RecordedTotals:
    cost = next((record[k] for k in ("total_cost_usd", "cost_usd") if k in record), None)
    usage: Usage | None = None
    raw = record.get("usage")
    if isinstance(raw, dict) and "input_tokens" in raw:
        with converting(where, "result.usage"):
            usage = usage_from_anthropic(raw)
    return RecordedTotals(
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cost=where.money(cost, "result.total_cost_usd"),
    )
