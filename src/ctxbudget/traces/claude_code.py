"""Claude Code logs: session files (``~/.claude/projects/<project>/<session-id>.jsonl``) and
the ``claude -p --output-format stream-json`` output.

Session files hold one record per line: ``type`` ``user`` / ``assistant`` with an Anthropic
``message``, plus ``uuid``, ``parentUuid``, ``isSidechain``, ``sessionId``; ``system``
records (compaction boundaries, notices) and ``cost-state`` (the session's
``totalCostUSD``) are read for what they say; ``summary``, ``file-history-snapshot``,
``queue-operation`` are bookkeeping; any other type (``attachment``, ``api-request``...: new
ones appear every release) is passed over and counted in :attr:`Session.skipped`.
Stream-json has a ``system`` ``init`` record (model, tool names), ``assistant`` / ``user``
records, ``stream_event`` records (``--include-partial-messages``) and a ``result`` per
turn (``total_cost_usd``, the turn's ``usage``).

How records become items (one Anthropic message each, via ``from_anthropic``):

- One API response is written as several ``assistant`` records (one per content block)
  sharing ``message.id``: they are ONE assistant item (blocks in order) and ONE call.
- Consecutive ``user`` records (the results of parallel tool calls, one per line) merge
  into one user message, so every ``tool_use`` of a turn is answered by the next message.
- Sub-agent threads are skipped: ``isSidechain: true`` (session files) or a non-null
  ``parent_tool_use_id`` (stream-json) — unless the file holds nothing else (a sub-agent's
  own transcript, ``<session>/subagents/agent-*.jsonl``), then it is the session, with
  :attr:`Session.parent` naming the session that started it. A folder walk passes over
  compaction transcripts (``subagents/agent-acompact-*.jsonl``: copies of the session's
  messages; :func:`companion_of`), so nothing is counted twice. Records repeated with the
  same ``uuid`` are read once. Synthetic assistant messages (model ``<synthetic>``: API
  errors, "No response requested.") were never model calls and are skipped.
- Records are taken in file order: a conversation rewound and branched (``parentUuid``
  forks) keeps both branches. A ``/compact`` (``compact_boundary`` record, or a summary
  marked ``isCompactSummary``) restarts the context there (:attr:`Session.resets`).

Usage per call: the usage of the response's complete record (``stop_reason`` set; else
its last), or the final usage its ``message_delta`` event gave. Stream-json records carry
the usage of the stream's first event (a token of output): without stream events, the
output the ``result`` records add up to and the calls lack is spread evenly over them (the
input and cache figures stay exact). ``input_tokens + cache_creation_input_tokens +
cache_read_input_tokens`` is the whole prompt; cache writes split into 5-minute / 1-hour
from ``cache_creation`` (all 5-minute without it). Older versions' per-record ``costUSD``
becomes the call's cost; the last ``total_cost_usd`` (stream-json; it includes sub-agents'
calls and, on a resumed session, the earlier runs') or ``cost-state`` ``totalCostUSD`` is
:attr:`Session.totals` ``.cost``. The system prompt and the tool schemas are not in these
logs: no system item, no tools. Stream-json does not echo the prompt given to ``claude
-p``, so its sessions start with the model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ctxbudget.billing.usage import Usage, usage_from_anthropic
from ctxbudget.convert.anthropic import from_anthropic
from ctxbudget.traces._common import CallInfo, recorded_calls
from ctxbudget.traces._read import Document, Line, Where, converting, sub
from ctxbudget.traces.session import RecordedTotals, Session

__all__ = ["FORMAT", "STREAM_FORMAT", "companion_of", "is_record", "is_stream_record", "read"]

FORMAT = "claude-code"
STREAM_FORMAT = "claude-code-stream"

_SESSION_ONLY_TYPES = ("summary", "file-history-snapshot", "queue-operation", "custom-title", "tag")
_MESSAGE_TYPES = ("user", "assistant")
_READ_TYPES = (
    *_MESSAGE_TYPES,
    *_SESSION_ONLY_TYPES,
    "system",
    "result",
    "stream_event",
    "cost-state",
)
"""Record types read; any other is counted in ``Session.skipped`` (never fatal)."""
_SUBAGENTS = "subagents"
_COMPACTION_PREFIX = "agent-acompact-"


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


def companion_of(path: Path) -> str | None:
    """Why a folder walk passes over ``path``: a compaction transcript
    (``<session>/subagents/agent-acompact-*.jsonl``, copies of that session's messages
    sent for summarising; its cost is in the session's own recorded total), else None."""
    if path.parent.name == _SUBAGENTS and path.name.startswith(_COMPACTION_PREFIX):
        return (
            f"Claude Code compaction transcript of session {path.parent.parent.name} "
            "(copies of that session's messages; read with the session, not counted twice)"
        )
    return None


class _Reset:
    """A ``/compact`` boundary between records: the client's context restarts here."""


_RESET = _Reset()


class _Scan:
    """What a walk over the records collects besides the messages."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self.model: str | None = None
        self.cost: Any = None
        self.usage: dict[str, int] = {}  # the result records' usage, added up
        self.chosen: list[tuple[Line | _Reset, bool]] = []
        self.finals: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, int] = {}
        self.seen: set[str] = set()
        self.current: tuple[str, dict[str, Any]] | None = None

    def take(self, line: int | None, record: dict[str, Any]) -> None:
        kind = record.get("type")
        subtype = record.get("subtype")
        if kind == "system" and subtype == "init" and isinstance(record.get("model"), str):
            self.model = record["model"]
        elif kind == "system" and subtype == "compact_boundary":
            self.chosen.append((_RESET, False))
        elif kind == "result":
            found = [record[k] for k in ("total_cost_usd", "cost_usd") if k in record]
            self.cost = found[0] if found else self.cost
            for key, value in sub(record, "usage").items():
                if isinstance(value, int) and not isinstance(value, bool):
                    self.usage[key] = self.usage.get(key, 0) + value
        elif kind == "cost-state":
            self.cost = record.get("totalCostUSD", self.cost)
        elif kind == "stream_event":
            self.current = _stream_event(sub(record, "event"), self.current, self.finals)
        elif not isinstance(kind, str) or kind not in _READ_TYPES:
            key = kind if isinstance(kind, str) else "unknown"
            self.skipped[key] = self.skipped.get(key, 0) + 1
        if kind in _MESSAGE_TYPES:
            self.message(line, record)

    def message(self, line: int | None, record: dict[str, Any]) -> None:
        uuid = record.get("uuid")
        if isinstance(uuid, str):
            if uuid in self.seen:
                return
            self.seen.add(uuid)
        if self.stream:
            side = record.get("parent_tool_use_id") is not None
        else:
            side = record.get("isSidechain") is True
        after_reset = bool(self.chosen) and self.chosen[-1][0] is _RESET
        if record.get("isCompactSummary") is True and not after_reset:
            self.chosen.append((_RESET, side))
        self.chosen.append(((line, record), side))

    def totals(self, where: Where) -> RecordedTotals | None:
        if self.cost is None and not self.usage:
            return None
        inputs = [self.usage.get(k) for k in ("input_tokens", *_CACHE_KEYS)]
        return RecordedTotals(
            input_tokens=sum(n or 0 for n in inputs) if inputs[0] is not None else None,
            output_tokens=self.usage.get("output_tokens"),
            cost=where.money(self.cost, "total_cost_usd"),
        )


_CACHE_KEYS = ("cache_creation_input_tokens", "cache_read_input_tokens")


def read(doc: Document, name: str, *, stream: bool) -> list[Session]:
    """The one session of a Claude Code session file or stream-json output."""
    where = doc.where
    records = [(line, where.at(line).obj(value, "the record")) for line, value in doc.records()]
    scan = _Scan(stream)
    for line, record in records:
        scan.take(line, record)
    main = [entry for entry, side in scan.chosen if not side]
    alone = not any(isinstance(e, tuple) for e in main)
    picked = [entry for entry, _ in scan.chosen] if alone else main
    messages, lines, info, resets, partial = _messages(picked, where, scan.finals)
    if not messages:
        return []
    result_output = scan.usage.get("output_tokens")
    if stream and result_output is not None and partial:
        info = _spread_output(info, partial, result_output)
    with converting(where, lines=lines):
        items = from_anthropic(messages)
    first_model = next((c.model for c in info.values() if c.model), None)
    parent = None
    if alone or doc.path.parent.name == _SUBAGENTS:
        ids = {r.get("sessionId") for _, r in records if isinstance(r.get("sessionId"), str)}
        parent = ids.pop() if len(ids) == 1 else None
    return [
        Session(
            name=name,
            source=str(doc.path),
            format=STREAM_FORMAT if stream else FORMAT,
            items=tuple(items),
            calls=recorded_calls(items, info),
            model=scan.model or first_model,
            totals=scan.totals(where),
            skipped=scan.skipped,
            resets=tuple(r for r in resets if 0 < r < len(items)),
            parent=parent,
        )
    ]


def _stream_event(
    event: dict[str, Any],
    current: tuple[str, dict[str, Any]] | None,
    finals: dict[str, dict[str, Any]],
) -> tuple[str, dict[str, Any]] | None:
    """``--include-partial-messages`` events: ``message_start`` names the message and its
    input usage, ``message_delta`` carries the final (complete) usage of that message."""
    kind = event.get("type")
    if kind == "message_start":
        message = sub(event, "message")
        mid = message.get("id")
        return (mid, sub(message, "usage")) if isinstance(mid, str) else None
    if kind == "message_delta" and current is not None:
        mid, start = current
        finals[mid] = {**start, **sub(event, "usage")}
    return current


def _messages(
    records: list[Line | _Reset], where: Where, finals: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[int | None], dict[int, CallInfo], list[int], set[int]]:
    """Anthropic messages (assistant records merged by id, user records by adjacency),
    the line of each, the call figures by message index, the reset message indexes and
    the calls whose usage is partial (no complete record: stream-json output).

    A response written over several records keeps the usage of its complete record
    (``stop_reason`` set; else the last), or the final usage its stream events gave."""
    messages: list[dict[str, Any]] = []
    lines: list[int | None] = []
    info: dict[int, CallInfo] = {}
    complete: set[int] = set()
    resets: list[int] = []
    by_id: dict[str, int] = {}
    fresh = False
    for entry in records:
        if isinstance(entry, _Reset):
            fresh = True
            continue
        line, record = entry
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
            call = _call(record, message, here, finals.get(mid) if isinstance(mid, str) else None)
            done = message.get("stop_reason") is not None or (
                isinstance(mid, str) and mid in finals
            )
            if index is not None:
                messages[index]["content"].extend(blocks)
                old = info[index]
                newer = done or index not in complete
                info[index] = CallInfo(
                    usage=(call.usage or old.usage) if newer else (old.usage or call.usage),
                    cost=call.cost if call.cost is not None else old.cost,
                    model=old.model or call.model,
                )
                if done:
                    complete.add(index)
                continue
            if isinstance(mid, str):
                by_id[mid] = len(messages)
            info[len(messages)] = call
            if done:
                complete.add(len(messages))
        elif messages and messages[-1]["role"] == "user" and not fresh:
            messages[-1]["content"].extend(blocks)
            continue
        if fresh:
            resets.append(len(messages))
            fresh = False
        messages.append({"role": role, "content": blocks})
        lines.append(line)
    return messages, lines, info, resets, set(info) - complete


def _blocks(content: Any, where: Where) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(where.arr(content, "message.content"))


def _call(
    record: dict[str, Any], message: dict[str, Any], where: Where, final: dict[str, Any] | None
) -> CallInfo:
    usage: Usage | None = None
    raw = final if final is not None else message.get("usage")
    if isinstance(raw, dict) and "input_tokens" in raw:
        with converting(where, "message.usage"):
            usage = usage_from_anthropic(raw)
    model = message.get("model")
    return CallInfo(
        usage=usage,
        cost=where.money(record.get("costUSD"), "costUSD"),
        model=model if isinstance(model, str) else None,
    )


def _spread_output(info: dict[int, CallInfo], partial: set[int], total: int) -> dict[int, CallInfo]:
    """Stream-json without ``--include-partial-messages``: each assistant record carries
    the usage of the stream's first event (a token or so of output). The output tokens
    the ``result`` records add up to and the calls do not are spread evenly over those
    calls (an estimate: the input and cache figures are exact, the split of output is not)."""
    known = sum(c.usage.output_tokens for c in info.values() if c.usage is not None)
    missing = total - known
    targets = sorted(i for i in partial if info[i].usage is not None)
    if missing <= 0 or not targets:
        return info
    share, extra = divmod(missing, len(targets))
    out = dict(info)
    for n, i in enumerate(targets):
        old = info[i]
        if old.usage is None:
            continue
        add = share + (extra if n == len(targets) - 1 else 0)
        usage = replace(old.usage, output_tokens=old.usage.output_tokens + add)
        out[i] = CallInfo(usage=usage, cost=old.cost, model=old.model)
    return out
