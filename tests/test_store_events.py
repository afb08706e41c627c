"""Events as stored JSON and back: exact, and refusing what JSON would change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.billing.usage import Usage
from ctxbudget.errors import ConfigError, StorageError, UsageError
from ctxbudget.session.items import (
    Component,
    ImagePart,
    Item,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from ctxbudget.session.log import (
    Appended,
    Compacted,
    CompactionRecord,
    Edit,
    Observed,
    Prepared,
    SessionLog,
    ToolsSet,
)
from ctxbudget.store import StoredEvent, decode_event, encode_event, open_store
from ctxbudget.store.url import redact, store_url

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
details = st.dictionaries(st.text(max_size=8), json_values, max_size=3)
texts = st.text()
parts = st.one_of(
    st.builds(TextPart, text=texts, provider_details=details),
    st.builds(ToolCallPart, id=texts, name=texts, arguments=texts, provider_details=details),
    st.builds(
        ToolResultPart,
        call_id=texts,
        content=texts | st.tuples(st.builds(TextPart, text=texts)),
        is_error=st.none() | st.booleans(),
    ),
    st.builds(ReasoningPart, text=texts, signature=st.none() | texts),
    st.builds(ImagePart, url=st.none() | texts, detail=st.none() | texts),
)
items = st.builds(
    Item,
    id=st.text(min_size=1, max_size=10),
    role=st.sampled_from(["system", "user", "assistant", "tool"]),
    component=st.sampled_from(list(Component)),
    parts=st.lists(parts, max_size=3).map(tuple),
    name=st.none() | texts,
    pinned=st.booleans(),
    exchange_id=st.none() | texts,
    provider_details=details,
)


def _roundtrip(event: Any) -> None:
    stored = encode_event(event)
    assert decode_event(stored) == event
    assert encode_event(decode_event(stored)) == stored  # the bytes are canonical


@settings(max_examples=150, deadline=None)
@given(item=items, seq=st.integers(0, 10**9))
def test_appended_items_roundtrip_exactly(item: Item, seq: int) -> None:
    _roundtrip(Appended(seq, item))


@settings(max_examples=50, deadline=None)
@given(inserted=st.lists(items, max_size=2), removed=st.lists(st.text(), max_size=3))
def test_compactions_roundtrip_exactly(inserted: list[Item], removed: list[str]) -> None:
    record = CompactionRecord(
        strategy="summarize",
        edits=(Edit(kind="summarize", remove=tuple(removed), insert=tuple(inserted), note="n"),),
        tokens_before=10,
        tokens_after=3,
        exact=False,
        reason="over high watermark",
    )
    _roundtrip(Compacted(4, record))


def test_other_events_roundtrip_exactly() -> None:
    tools = (ToolSpec(name="bash", description=None, parameters={"type": "object"}),)
    _roundtrip(ToolsSet(0, tools))
    _roundtrip(Prepared(1, "anthropic", 1234.000001, 900, {"temperature": 0.2}))
    _roundtrip(Observed(2, Usage(input_tokens=10, cache_read_tokens=4, output_tokens=3)))


def test_values_json_would_change_are_refused() -> None:
    item = Item(
        id="m0",
        role="user",
        component=Component.HISTORY,
        parts=(TextPart(text="x", provider_details={"tags": ("a", "b")}),),
    )
    with pytest.raises(UsageError, match="tuple cannot be stored exactly"):
        encode_event(Appended(0, item))
    with pytest.raises(UsageError, match="finite"):
        encode_event(Prepared(0, "openai", 0.0, None, {"temperature": float("nan")}))


def test_a_corrupt_event_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="cannot be read"):
        decode_event(StoredEvent(seq=3, kind="appended", body='{"item": {"id": 1}}'))


def test_a_failing_sink_stops_the_log() -> None:
    written: list[int] = []

    def sink(events: Any) -> None:
        if written:
            raise StorageError("disk full")
        written.extend(e.seq for e in events)

    log = SessionLog(sink)
    item = Item(id="a", role="user", component=Component.HISTORY, parts=())
    log.append(item)
    with pytest.raises(StorageError, match="disk full"):
        log.append(item.with_(id="b"))
    assert len(log) == 1
    assert "b" not in log
    with pytest.raises(StorageError, match="reopen"):
        log.append(item.with_(id="c"))


def test_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert store_url(None, {}) == "sqlite:///.ctxbudget/ctxbudget.db"
    assert store_url(None, {"CTXBUDGET_STORE": "redis://x"}) == "redis://x"
    with pytest.raises(ConfigError, match="no known scheme"):
        open_store("mysql://u:pw@h/db")
    with pytest.raises(ConfigError, match="unknown option"):
        open_store(f"sqlite:///{tmp_path}/x.db?journal=off")
    monkeypatch.chdir(tmp_path)
    with open_store(None) as store:  # the project default
        assert store.url == "sqlite:///.ctxbudget/ctxbudget.db"
    assert (tmp_path / ".ctxbudget" / "ctxbudget.db").exists()
    with pytest.raises(StorageError, match="Check the server"):
        open_store("postgresql://nobody@127.0.0.1:1/db")
    with pytest.raises(StorageError, match="Check the server"):
        open_store("redis://127.0.0.1:1/0")
