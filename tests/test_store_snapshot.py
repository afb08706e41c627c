"""Resume from a state snapshot: the next request is the bytes an uninterrupted process sends,
without re-driving the prepares before the snapshot; a log without a usable snapshot
(older stores, an unknown snapshot version) still resumes, by full replay."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from _stores import exchange, start, store_url
from ctxbudget import ContextManager
from ctxbudget.billing.usage import Usage
from ctxbudget.engine import resume
from ctxbudget.engine.snapshot import SNAPSHOT_EVERY, capture
from ctxbudget.session.log import Appended, Event, Snapshot
from ctxbudget.store import encode_event, open_store

__all__ = ["store_url"]

STEPS = 3 * SNAPSHOT_EVERY + 3
"""Exchanges before resuming: several snapshots, and prepares after the latest one."""
CASES = {
    "openai": ("gpt-4o", {"context_window": 4_000, "max_output_tokens": 500}),
    "anthropic": ("claude-sonnet-4-5", {"context_window": 5_000, "max_output_tokens": 500}),
}


class _Clock:
    """Seconds that advance 40 s per reading: cache entries live and expire."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        self.now += 40.0
        return self.now


def _step(mgr: ContextManager, n: int, provider: str) -> bytes:
    import json

    body = mgr.prepare(provider)  # type: ignore[arg-type]
    report = mgr.last_report
    assert report is not None
    cached = report.predicted.cache_read_tokens if report.predicted is not None else 0
    mgr.observe_usage(
        Usage(
            input_tokens=report.input_tokens.tokens + 3 * (n % 4),
            cache_read_tokens=cached,
            output_tokens=20,
        )
    )
    with mgr.log.batch():
        mgr.extend(exchange(n))
    return json.dumps(body, sort_keys=True).encode()


def _straight(provider: str, url: str | None, *, every: int = SNAPSHOT_EVERY) -> ContextManager:
    model, settings = CASES[provider]
    mgr = (
        ContextManager.open("s", url, model, clock=_Clock(), **settings)
        if url
        else ContextManager(model, clock=_Clock(), **settings)
    )
    mgr._snapshots.every = every  # 0: none, as written before snapshots existed
    start(mgr)
    for n in range(STEPS):
        _step(mgr, n, provider)
    return mgr


def _opened(
    url: str, provider: str, clock: _Clock, monkeypatch: pytest.MonkeyPatch
) -> tuple[ContextManager, int]:
    loaded: list[int] = []
    real = resume.restore

    def spy(manager: Any, events: Any) -> int:
        loaded.append(real(manager, events))
        return loaded[-1]

    monkeypatch.setattr(resume, "restore", spy)
    _, settings = CASES[provider]
    mgr = ContextManager.open("s", url, clock=clock, **settings)
    return mgr, loaded[0]


def _write(url: str, events: list[Event], model: str) -> None:
    with open_store(url) as store:
        store.create("s", {"model": model})
        store.append("s", [encode_event(e) for e in events])


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_resume_from_snapshot_sends_the_same_next_request(
    store_url: str, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = _straight(provider, store_url)
    events = written.log.events
    snapshots = [e for e in events if isinstance(e, Snapshot)]
    assert len(snapshots) >= 3
    assert written.log.records(), "the session must compact, or the test proves little"
    clock = _Clock()
    clock.now = 1_000.0 + 40.0 * STEPS
    resumed, loaded = _opened(store_url, provider, clock, monkeypatch)
    assert loaded == snapshots[-1].seq + 1, "resumed from the latest snapshot"
    assert resumed.log.events == events
    straight = _straight(provider, None)
    assert capture(resumed) == capture(straight)
    for n in range(STEPS, STEPS + SNAPSHOT_EVERY + 2):
        assert _step(resumed, n, provider) == _step(straight, n, provider)
    assert resumed.log.events == straight.log.events
    if provider == "anthropic":
        assert resumed.cache.busts == straight.cache.busts
        assert '"cache_control"' in _step(resumed, 99, provider).decode()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("store_kind", ["no snapshots", "unknown version"])
def test_a_log_without_a_usable_snapshot_resumes_by_full_replay(
    tmp_path: Any, provider: str, store_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = _straight(provider, None, every=0 if store_kind == "no snapshots" else 8)
    events: list[Event] = [
        dataclasses.replace(e, version=999) if isinstance(e, Snapshot) else e
        for e in written.log.events
    ]
    assert any(isinstance(e, Snapshot) for e in events) == (store_kind == "unknown version")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _write(url, events, CASES[provider][0])
    clock = _Clock()
    clock.now = 1_000.0 + 40.0 * STEPS
    resumed, loaded = _opened(url, provider, clock, monkeypatch)
    assert loaded == 0, "nothing to start from: every event is replayed"
    assert [type(e) for e in resumed.log.events] == [type(e) for e in events]
    for n in range(STEPS, STEPS + 3):
        assert _step(resumed, n, provider) == _step(written, n, provider)
    if store_kind == "no snapshots":  # the first prepare after resuming writes one
        assert isinstance(resumed.log.events[len(events)], Snapshot)


def test_full_replay_switch_gives_the_same_state(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = _straight("anthropic", store_url)
    _, settings = CASES["anthropic"]
    fast = ContextManager.open("s", store_url, clock=_Clock(), **settings)
    slow = resume.open_session(
        ContextManager, "s", store_url, clock=_Clock(), from_snapshot=False, **settings
    )
    assert capture(fast) == capture(slow) == capture(written)


def _prepared(mgr: ContextManager, provider: str) -> None:
    """A request prepared and billed, no new items (a retried call)."""
    mgr.prepare(provider)  # type: ignore[arg-type]
    report = mgr.last_report
    assert report is not None
    mgr.observe_usage(Usage(input_tokens=report.input_tokens.tokens, output_tokens=20))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_resume_after_a_retraction_frees_its_call_ids(
    store_url: str, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = _straight(provider, store_url)
    last = f"call_{STEPS - 1}"
    taken = written.retract(2)  # the last exchange: its call and its result
    assert [c.id for i in taken for c in i.tool_calls] == [last]
    retracted = len(written.log) - 1
    while not any(isinstance(e, Snapshot) for e in written.log.events[retracted:]):
        _prepared(written, provider)  # until the retraction lies before the latest snapshot
    _prepared(written, provider)
    written.log.attach(None)  # the resumed manager writes on; this one goes on in memory
    clock = _Clock()
    clock.now = written._clock.real.now  # type: ignore[attr-defined]
    resumed, loaded = _opened(store_url, provider, clock, monkeypatch)
    assert loaded > retracted, "the retraction was loaded from the log, not re-driven"
    door, expected = resumed._compactor.intake.door, written._compactor.intake.door
    assert (door.calls, door.open, door.renamed) == (
        expected.calls,
        expected.open,
        expected.renamed,
    )
    assert last not in door.calls
    assert capture(resumed) == capture(written)
    start = len(resumed.log)
    for n in (STEPS - 1, STEPS):  # the retracted exchange again, with its own call id
        assert _step(resumed, n, provider) == _step(written, n, provider)
    assert resumed.log.events == written.log.events
    again = [
        c.id
        for e in resumed.log.events[start:]
        if isinstance(e, Appended)
        for c in e.item.tool_calls
    ]
    assert again == [last, f"call_{STEPS}"], "the call id was free: not renamed"
    assert _step(resumed, STEPS + 1, provider) == _step(written, STEPS + 1, provider)


def test_an_older_snapshot_is_not_parsed_until_it_is_used() -> None:
    """Resuming reads only the latest snapshot: decoding a stored one costs no JSON parse
    of its state (a broken one fails only when read)."""
    from ctxbudget.errors import StorageError
    from ctxbudget.session.log import Snapshot
    from ctxbudget.store.events import StoredEvent, decode_event, encode_event

    good = encode_event(Snapshot(7, 2, {"next": 3}))
    event = decode_event(good)
    assert isinstance(event, Snapshot)
    assert (event.seq, event.version, dict(event.state)) == (7, 2, {"next": 3})
    broken = decode_event(StoredEvent(seq=8, kind="snapshot", body='{"state":{oops,"version":2}'))
    assert isinstance(broken, Snapshot)
    assert broken.version == 2
    with pytest.raises(StorageError, match="snapshot"):
        dict(broken.state)
