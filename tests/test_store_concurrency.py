"""Four processes append exchanges to one session at once: none is lost, none interleaved."""

from __future__ import annotations

import multiprocessing
import time

from _stores import session_worker, store_url
from ctxbudget.store import decode_event, open_store

__all__ = ["store_url"]

WORKERS = 4
EACH = 8


def test_concurrent_writers_never_interleave_or_lose_an_exchange(store_url: str) -> None:
    with open_store(store_url) as store:
        store.create("shared", {"model": "gpt-4o"})
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0
    with context.Pool(WORKERS) as pool:
        conflicts = pool.starmap(
            session_worker, [(store_url, n, EACH, start_at) for n in range(WORKERS)]
        )
    with open_store(store_url) as store:
        events = [decode_event(e) for e in store.load("shared")]
    items = [e.item for e in events if hasattr(e, "item")]  # type: ignore[union-attr]
    calls = [i.tool_calls[0].id for i in items if i.role == "assistant"]
    assert sorted(calls) == sorted(
        f"call_{1000 * (w + 1) + k}" for w in range(WORKERS) for k in range(EACH)
    )
    for n, item in enumerate(items):  # each call is followed at once by its result
        if item.role == "assistant":
            assert items[n + 1].tool_results[0].call_id == item.tool_calls[0].id
    assert len({i.id for i in items}) == len(items)
    assert sum(conflicts) > 0, "the writers never collided: the test proved nothing"
