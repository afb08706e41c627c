"""The session-store contract, run against SQLite, PostgreSQL and Redis alike."""

from __future__ import annotations

import pytest

from _stores import MODEL, SETTINGS, body_bytes, exchange, start, step, store_url
from ctxbudget import ContextManager
from ctxbudget.errors import StorageError, UsageError
from ctxbudget.session.items import Component, Item, TextPart
from ctxbudget.session.log import Appended
from ctxbudget.store import LogConflict, StoredEvent, encode_event, open_store
from ctxbudget.store.migrations import MIGRATIONS_TABLE, latest

__all__ = ["store_url"]


def _event(seq: int, text: str = "hello") -> StoredEvent:
    item = Item(
        id=f"m{seq}", role="user", component=Component.HISTORY, parts=(TextPart(text=text),)
    )
    return encode_event(Appended(seq, item))


def test_migrations_from_a_blank_database(store_url: str) -> None:
    with open_store(store_url) as store:
        from ctxbudget.store import migrations

        table = {"sqlite": migrations.SQLITE, "postgresql": migrations.POSTGRES}
        assert store.schema_version() == latest(table.get(store.backend, migrations.REDIS))
    with open_store(store_url) as again:  # reopening applies nothing twice
        assert again.schema_version() == 3
        if again.backend != "redis":
            rows = again.connection.execute(  # type: ignore[attr-defined]
                f"SELECT version, name FROM {MIGRATIONS_TABLE} ORDER BY version"
            ).fetchall()
            assert [tuple(r) for r in rows] == [
                (1, "session logs"),
                (2, "spend ledger"),
                (3, "spend reservation expiry"),
            ]


def test_create_info_and_listing(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.info("a") is None
        info = store.create("a", {"model": "gpt-4o"})
        assert (info.session_id, info.events, dict(info.meta)) == ("a", 0, {"model": "gpt-4o"})
        assert store.create("a", {"model": "other"}).meta == {"model": "gpt-4o"}  # no-op
        store.create("b")
        store.append("b", [_event(0)])
        assert [i.session_id for i in store.sessions()] == ["b", "a"]
        with pytest.raises(StorageError, match="no session 'zzz'"):
            store.require("zzz")


def test_append_load_and_conflicts(store_url: str) -> None:
    with open_store(store_url) as store:
        store.create("s")
        store.append("s", [_event(0), _event(1, "wörld \u2028 \x00")])
        assert [(e.seq, e.kind) for e in store.load("s")] == [(0, "appended"), (1, "appended")]
        assert store.load("s")[1] == _event(1, "wörld \u2028 \x00")
        assert store.load("s", start=1) == [_event(1, "wörld \u2028 \x00")]
        with pytest.raises(LogConflict) as info:
            store.append("s", [_event(1), _event(2)])  # a stale writer at position 1
        assert (info.value.expected, info.value.actual) == (1, 2)
        assert "reopen the session" in str(info.value)
        assert len(store.load("s")) == 2  # nothing of the losing batch was written
        with pytest.raises(StorageError, match="no session"):
            store.append("nope", [_event(0)])
        with pytest.raises(UsageError, match="consecutive"):
            store.append("s", [_event(2), _event(4)])
        with pytest.raises(UsageError, match="session id"):
            store.create("")


def test_resumed_session_is_byte_identical(store_url: str) -> None:
    original = ContextManager.open("run", store_url, MODEL, **SETTINGS)
    start(original)
    for n in range(12):
        step(original, n)
    assert original.log.records(), "the script must compact, or the test proves little"
    resumed = ContextManager.open("run", store_url, **SETTINGS)  # model read from the store
    original.log.attach(None)  # from here on only the resumed manager writes
    assert resumed.log.events == original.log.events
    assert resumed.model.name == MODEL
    assert body_bytes(resumed) == body_bytes(original)
    for n in range(12, 15):  # and they stay in step
        assert step(resumed, n) == step(original, n)
    # the recall of a cleared result comes from the store too
    cleared = next(e.remove for r in resumed.log.records() for e in r.edits)[0]
    assert resumed.recall(cleared) == original.recall(cleared)


def test_anthropic_breakpoints_survive_resume(store_url: str) -> None:
    settings = dict(SETTINGS, context_window=20_000)
    original = ContextManager.open("a", store_url, "claude-sonnet-4-5", **settings)
    start(original)
    for n in range(6):
        step(original, n, provider="anthropic")
    resumed = ContextManager.open("a", store_url, **settings)
    original.log.attach(None)
    assert body_bytes(resumed, "anthropic") == body_bytes(original, "anthropic")


def test_appends_are_written_before_they_return(store_url: str) -> None:
    mgr = ContextManager.open("w", store_url, MODEL, **SETTINGS)
    with open_store(store_url) as reader:
        mgr.append({"role": "user", "content": "one"})
        assert len(reader.load("w")) == 1
        with mgr.log.batch():
            mgr.extend(exchange(0))
            assert len(reader.load("w")) == 1  # an exchange is written as one batch
        assert len(reader.load("w")) == 3


def test_stale_writer_gets_a_conflict_and_loses_nothing(store_url: str) -> None:
    a = ContextManager.open("c", store_url, MODEL, **SETTINGS)
    b = ContextManager.open("c", store_url, **SETTINGS)
    a.append({"role": "user", "content": "from a"})
    with pytest.raises(LogConflict), b.log.batch():
        b.extend(exchange(1))
    with pytest.raises(StorageError, match="reopen"):
        b.append({"role": "user", "content": "b again"})  # b's state is stale now
    b = ContextManager.open("c", store_url, **SETTINGS)
    with b.log.batch():
        b.extend(exchange(1))
    with open_store(store_url) as store:
        kinds = [e.kind for e in store.load("c")]
    assert kinds == ["appended"] * 3
    assert [e.item.id for e in b.log.events if isinstance(e, Appended)] == ["m0", "m1", "m2"]


def test_a_failing_batch_writes_nothing(store_url: str) -> None:
    mgr = ContextManager.open("f", store_url, MODEL, **SETTINGS)

    def crash_in_the_middle() -> None:
        with mgr.log.batch():
            mgr.extend(exchange(0)[:1])
            raise RuntimeError("the tool crashed")

    with pytest.raises(RuntimeError):
        crash_in_the_middle()
    with open_store(store_url) as store:
        assert store.load("f") == []
    assert ContextManager.open("f", store_url, **SETTINGS).log.events == ()


def test_resume_with_other_settings_is_refused(store_url: str) -> None:
    original = ContextManager.open("r", store_url, MODEL, **SETTINGS)
    start(original)
    for n in range(12):
        step(original, n)
    with pytest.raises(StorageError, match="does not replay"):
        ContextManager.open("r", store_url, **dict(SETTINGS, context_window=3_000))


def test_new_session_needs_a_model(store_url: str) -> None:
    from ctxbudget.errors import ConfigError

    with pytest.raises(ConfigError, match="pass the model"):
        ContextManager.open("new", store_url)
    assert isinstance(ContextManager.open("new", store_url, MODEL), ContextManager)
