"""Session stores: append throughput and resume latency, per backend, on a long real session.

The session is the longest real agent session in ../shared/traces (every format, loaded
with ``ctxbudget.traces.load_sessions``), driven through a
``ContextManager`` (gpt-4o, a 32K window so it compacts): one ``prepare`` before each
recorded model call, then its items. Per backend:

* append: each event written as its own transaction (what an acknowledged append costs),
  events per second; and each exchange written as one batch;
* resume: ``ContextManager.open`` on the stored session (load + decode + replay of every append,
  prepare and compaction), median of a few runs, with the load + decode share alone.

PostgreSQL and Redis run when ``CTXBUDGET_TEST_POSTGRES_URL`` / ``CTXBUDGET_TEST_REDIS_URL``
name servers (``eval "$(scripts/services.sh start)"``); otherwise a skip line is printed.
Run: ``python bench/bench_store.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ctxbudget.manager import ContextManager
from ctxbudget.session.log import Appended, Event
from ctxbudget.store import decode_event, encode_event, open_store
from ctxbudget.traces import load_sessions
from ctxbudget.traces.session import Session

TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"
SETTINGS = {"context_window": 32_000, "max_output_tokens": 2_000, "clock": lambda: 0.0}


def longest_session(limit: int | None) -> Session:
    sessions = load_sessions(TRACES)
    best = max(sessions, key=lambda s: len(s.items))
    if limit is not None:
        return Session(
            name=best.name,
            source=best.source,
            format=best.format,
            items=_whole_exchanges(best, limit),
            tools=best.tools,
            model=best.model,
        )
    return best


def _whole_exchanges(session: Session, limit: int) -> tuple:  # type: ignore[type-arg]
    items = list(session.items[:limit])
    answered = {r.call_id for i in items for r in i.tool_results}
    while (
        items and items[-1].tool_calls and not all(c.id in answered for c in items[-1].tool_calls)
    ):
        items.pop()
    return tuple(items)


def drive(session: Session) -> tuple[Event, ...]:
    """The session's events as a manager logs them: prepare before each assistant item."""
    mgr = ContextManager("gpt-4o", **SETTINGS)  # type: ignore[arg-type]
    if session.tools:
        mgr.set_tools(list(session.tools))
    for item in session.items:
        if item.role == "assistant" and len(mgr.view):
            mgr.prepare()
        mgr.extend([item])
    return mgr.log.events


def backends(tmp: Path) -> list[tuple[str, str | None]]:
    tag = uuid.uuid4().hex[:10]
    out: list[tuple[str, str | None]] = [("sqlite", f"sqlite:///{tmp / 'bench.db'}")]
    pg = os.environ.get("CTXBUDGET_TEST_POSTGRES_URL")
    out.append(("postgresql", f"{pg}{'&' if '?' in pg else '?'}schema=bench_{tag}" if pg else None))
    rd = os.environ.get("CTXBUDGET_TEST_REDIS_URL")
    out.append(("redis", f"{rd}{'&' if '?' in rd else '?'}prefix=bench{tag}:" if rd else None))
    return out


def cleanup(url: str) -> None:
    store = open_store(url)
    try:
        if store.backend == "postgresql":
            store.connection.execute(f"DROP SCHEMA {store.schema} CASCADE")  # type: ignore[attr-defined]
        elif store.backend == "redis":
            client = store.client  # type: ignore[attr-defined]
            keys = list(client.scan_iter(match=store.prefix + "*", count=1000))  # type: ignore[attr-defined]
            if keys:
                client.delete(*keys)
    finally:
        store.close()


def measure(name: str, url: str, events: tuple[Event, ...], runs: int) -> None:
    stored = [encode_event(e) for e in events]
    with open_store(url) as store:
        store.create("single", {"model": "gpt-4o"})
        started = time.perf_counter()
        for event in stored:
            store.append("single", [event])
        single = time.perf_counter() - started
        # exchanges as batches: an assistant item and everything up to the next one
        batches: list[list] = []  # type: ignore[type-arg]
        for event, raw in zip(events, stored, strict=True):
            if not batches or (isinstance(event, Appended) and event.item.role == "assistant"):
                batches.append([])
            batches[-1].append(raw)
        store.create("batched", {"model": "gpt-4o"})
        started = time.perf_counter()
        for batch in batches:
            store.append("batched", batch)
        batched = time.perf_counter() - started
        loads = []
        for _ in range(runs):
            started = time.perf_counter()
            [decode_event(e) for e in store.load("single")]
            loads.append(time.perf_counter() - started)
        resumes = []
        for _ in range(runs):
            started = time.perf_counter()
            mgr = ContextManager.open("single", store, **SETTINGS)  # type: ignore[arg-type]
            resumes.append(time.perf_counter() - started)
            mgr.log.attach(None)
        assert mgr.log.events == events, "the resumed log differs from the written one"
    print(
        f"{name:>10}: append {len(stored) / single:,.0f} events/s one per transaction "
        f"({single / len(stored) * 1e3:.2f} ms each); {len(batches) / batched:,.0f} exchanges/s "
        f"batched ({len(stored) / batched:,.0f} events/s); resume p50 "
        f"{statistics.median(resumes) * 1e3:,.0f} ms (load + decode "
        f"{statistics.median(loads) * 1e3:,.0f} ms) for {len(stored):,} events"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 200-item prefix, one resume")
    args = parser.parse_args()
    if not TRACES.is_dir():
        print(f"skip: {TRACES} is absent (real traces needed)")
        return
    session = longest_session(200 if args.quick else None)
    events = drive(session)
    prepares = sum(1 for e in events if type(e).__name__ == "Prepared")
    print(
        f"session {session.name[:70]} ({session.format}): {len(session.items):,} items -> "
        f"{len(events):,} events "
        f"({prepares:,} prepares logged; {len(events) - prepares:,} others)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in backends(Path(tmp)):
            if url is None:
                env = (
                    "CTXBUDGET_TEST_POSTGRES_URL"
                    if name == "postgresql"
                    else "CTXBUDGET_TEST_REDIS_URL"
                )
                print(
                    f"{name:>10}: skip (no server: set {env}, "
                    'e.g. eval "$(scripts/services.sh start)")'
                )
                continue
            try:
                measure(name, url, events, 1 if args.quick else 5)
            finally:
                cleanup(url)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
