"""Session events as JSON text and back, exactly: what every store writes and reads.

An event is stored as its ``seq`` (the log position), a ``kind`` and a JSON body. Decoding
an encoded event gives an equal event (items, compaction records, tool specs, usage), so
a resumed session replays to the same view. Free-form values (``provider_details``, tool
``parameters``, prepare ``options``) must be plain JSON: a value JSON would silently
change (a tuple, a set, a non-string key, NaN) is refused when the event is written, not
discovered when it is read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from ctxbudget.billing.usage import Usage
from ctxbudget.errors import StorageError, UsageError
from ctxbudget.session.items import Item, ToolSpec, item_from_dict, item_to_dict
from ctxbudget.session.log import (
    Appended,
    Compacted,
    CompactionRecord,
    Edit,
    Event,
    Marked,
    Observed,
    Prepared,
    Snapshot,
    ToolsSet,
)

__all__ = ["EventKind", "StoredEvent", "decode_event", "encode_event"]

EventKind: TypeAlias = Literal[
    "appended", "compacted", "tools", "prepared", "observed", "snapshot", "marked"
]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """One event as a store holds it."""

    seq: int
    """Position in the session's log (0-based, consecutive)."""
    kind: EventKind
    """What the event is."""
    body: str
    """The event as canonical JSON text."""


def encode_event(event: Event) -> StoredEvent:
    """The stored form of ``event``; refuses values JSON cannot carry exactly."""
    kind, payload = _payload(event)
    return StoredEvent(seq=event.seq, kind=kind, body=_dumps(payload, f"event {event.seq}"))


def decode_event(stored: StoredEvent) -> Event:
    """The event a :class:`StoredEvent` holds; a corrupt one raises ``StorageError``.

    A snapshot's state is read only when it is used (:class:`_LazyState`): a resume reads
    the latest one, so older snapshots cost no JSON parsing, and resuming does not grow
    with the number of prepares."""
    if stored.kind == "snapshot":
        found = _SNAPSHOT_VERSION.search(stored.body)
        if found is not None:
            return Snapshot(stored.seq, int(found.group(1)), _LazyState(stored))
    try:
        data = json.loads(stored.body)
        return _event(stored.seq, stored.kind, data)
    except (ValueError, KeyError, TypeError, UsageError) as exc:
        raise StorageError(
            f"stored event {stored.seq} ({stored.kind}) cannot be read: {exc}; "
            "the store holds data this version of ctxbudget did not write"
        ) from exc


_SNAPSHOT_VERSION = re.compile(r',"version":(\d+)\}$')
"""The version at the end of a snapshot body (keys sorted: ``state`` comes first)."""


class _LazyState(Mapping[str, Any]):
    """A stored snapshot's state, parsed on first use."""

    def __init__(self, stored: StoredEvent) -> None:
        self._stored = stored
        self._state: Mapping[str, Any] | None = None

    def _load(self) -> Mapping[str, Any]:
        if self._state is None:
            try:
                state = json.loads(self._stored.body)["state"]
            except (ValueError, KeyError, TypeError) as exc:
                raise StorageError(
                    f"stored event {self._stored.seq} (snapshot) cannot be read: {exc}"
                ) from exc
            self._state = state if isinstance(state, Mapping) else {}
        return self._state

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def _payload(event: Event) -> tuple[EventKind, dict[str, Any]]:
    if isinstance(event, Appended):
        return "appended", {"item": item_to_dict(event.item)}
    if isinstance(event, Compacted):
        return "compacted", _record_to_dict(event.record)
    if isinstance(event, ToolsSet):
        return "tools", {"tools": [_tool_to_dict(t) for t in event.tools]}
    if isinstance(event, Prepared):
        return "prepared", {
            "provider": event.provider,
            "now": event.now,
            "input_limit": event.input_limit,
            "options": dict(event.options),
        }
    if isinstance(event, Snapshot):
        return "snapshot", {"version": event.version, "state": dict(event.state)}
    if isinstance(event, Marked):
        return "marked", {"name": event.name, "data": dict(event.data)}
    return "observed", {"usage": _usage_to_dict(event.usage)}


def _event(seq: int, kind: str, data: Mapping[str, Any]) -> Event:
    if kind == "appended":
        return Appended(seq, item_from_dict(data["item"]))
    if kind == "compacted":
        return Compacted(seq, _record_from_dict(data))
    if kind == "tools":
        return ToolsSet(seq, tuple(ToolSpec(**t) for t in data["tools"]))
    if kind == "prepared":
        return Prepared(
            seq, str(data["provider"]), float(data["now"]), data["input_limit"], data["options"]
        )
    if kind == "observed":
        return Observed(seq, Usage(**data["usage"]))
    if kind == "snapshot":
        return Snapshot(seq, int(data["version"]), data["state"])
    if kind == "marked":
        return Marked(seq, str(data["name"]), data["data"])
    raise ValueError(f"unknown event kind {kind!r}")


def _record_to_dict(record: CompactionRecord) -> dict[str, Any]:
    return {
        "strategy": record.strategy,
        "edits": [
            {
                "kind": e.kind,
                "remove": list(e.remove),
                "insert": [item_to_dict(i) for i in e.insert],
                "note": e.note,
            }
            for e in record.edits
        ],
        "tokens_before": record.tokens_before,
        "tokens_after": record.tokens_after,
        "exact": record.exact,
        "reason": record.reason,
    }


def _record_from_dict(data: Mapping[str, Any]) -> CompactionRecord:
    edits = tuple(
        Edit(
            kind=e["kind"],
            remove=tuple(e["remove"]),
            insert=tuple(_item(i) for i in e["insert"]),
            note=e["note"],
        )
        for e in data["edits"]
    )
    return CompactionRecord(
        strategy=data["strategy"],
        edits=edits,
        tokens_before=data["tokens_before"],
        tokens_after=data["tokens_after"],
        exact=data["exact"],
        reason=data["reason"],
    )


def _item(data: dict[str, Any]) -> Item:
    return item_from_dict(data)


def _tool_to_dict(tool: ToolSpec) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "provider_details": tool.provider_details,
    }


def _usage_to_dict(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def _dumps(payload: dict[str, Any], where: str) -> str:
    _check_plain(payload, where)
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _check_plain(value: Any, path: str) -> None:
    """Refuse what JSON would not give back unchanged (walks dicts and lists)."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UsageError(f"{path}: {value!r} cannot be stored; use a finite number")
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str):
                raise UsageError(
                    f"{path}: key {key!r} is not a string; stored JSON keys are strings"
                )
            _check_plain(inner, f"{path}.{key}")
        return
    if isinstance(value, list):
        for n, inner in enumerate(value):
            _check_plain(inner, f"{path}[{n}]")
        return
    raise UsageError(
        f"{path}: a {type(value).__name__} cannot be stored exactly (JSON has only objects, "
        "lists, strings, numbers, booleans and null); convert it before appending"
    )
