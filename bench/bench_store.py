"""Session stores: append throughput and resume latency, per backend, on a long real session.

The session is the longest real agent session in ../shared/traces (every format, loaded
with ``ctxbudget.traces.load_sessions``), driven through a
``ContextManager`` (gpt-4o, a 32K window so it compacts): one ``prepare`` before each
recorded model call, then its items. Per backend:

* append: each event written as its own transaction (what an acknowledged append costs),
  events per second; and each exchange written as one batch;
* resume: ``ContextManager.open`` on the stored session (load + decode, the log loaded up to
  its latest state snapshot, the events after it re-driven), median of a few runs, with the
  load + decode share alone;
* resume scaling: a scripted session of 145 and 1,000 prepares in SQLite, resumed from its
  latest snapshot (new, median of 3) and by re-driving every prepare (old,
  ``from_snapshot=False``, once), with the latest snapshot's size and all snapshots' size:
  with a clock advancing 4 s per call (cache entries expire after 5 minutes, as they do),
  with a frozen clock (no entry ever expires: the most cache state a session can hold), and
  with 145 exchanges (292 items) whatever the prepares (isolates the number of prepares
  from the number of items, which a resume reads and renders once).

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

from ctxbudget.billing.usage import Usage
from ctxbudget.engine.resume import open_session
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


STEP_SECONDS = 4.0
"""The scaling sessions' clock: seconds per model call (cache entries live 5 minutes)."""


class Clock:
    """A clock that advances ``step`` seconds per reading (0: frozen, nothing expires)."""

    def __init__(self, step: float) -> None:
        self.step, self.now = step, 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def scripted(url: str, prepares: int, exchanges: int, step: float) -> int:
    """A session of ``exchanges`` agent steps (prepare, bill, one tool exchange) with
    ``prepares`` prepares spread over them (more than one per step: retried calls); its
    length in events."""
    settings = {**SETTINGS, "clock": Clock(step)}
    mgr = ContextManager.open("scaling", url, "gpt-4o", **settings)  # type: ignore[arg-type]
    mgr.extend(
        [{"role": "system", "content": "You are careful."}, {"role": "user", "content": "Go."}]
    )
    for n in range(exchanges):
        for _ in range(prepares * (n + 1) // exchanges - prepares * n // exchanges):
            mgr.prepare()
            report = mgr.last_report
            assert report is not None
            mgr.observe_usage(Usage(input_tokens=report.input_tokens.tokens, output_tokens=20))
        call = {"id": f"c{n}", "type": "function", "function": {"name": "sh", "arguments": "{}"}}
        text = "\n".join(f"step {n} line {k}: value {k * n % 97}" for k in range(30))
        with mgr.log.batch():
            mgr.extend(
                [
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": f"c{n}", "content": text},
                ]
            )
    return len(mgr.log)


def snapshot_bytes(url: str) -> tuple[int, int]:
    """The latest snapshot's size and all snapshots' size in the stored log (bytes)."""
    with open_store(url) as store:
        sizes = [len(e.body.encode()) for e in store.load("scaling") if e.kind == "snapshot"]
    return (sizes[-1] if sizes else 0), sum(sizes)


def resume_scaling(tmp: Path, runs: int, sizes: tuple[int, ...]) -> None:
    """Resume time against the number of prepares: from the latest snapshot and by full
    replay, with an advancing and a frozen clock, and with a fixed number of items."""
    cases = [
        (f"{STEP_SECONDS:g} s/call", STEP_SECONDS, None),
        ("frozen clock", 0.0, None),
        (f"{STEP_SECONDS:g} s/call, {sizes[0]} steps", STEP_SECONDS, sizes[0]),
    ]
    for label, step, steps in cases:
        for prepares in sizes:
            url = f"sqlite:///{tmp / f'scaling-{uuid.uuid4().hex[:8]}.db'}"
            events = scripted(url, prepares, steps or prepares, step)
            latest, total = snapshot_bytes(url)
            times = {}
            for name, snapshot in (("new", True), ("old", False)):
                samples = []
                for _ in range(runs if snapshot else 1):
                    started = time.perf_counter()
                    settings = {**SETTINGS, "clock": Clock(step)}
                    open_session(ContextManager, "scaling", url, from_snapshot=snapshot, **settings)
                    samples.append(time.perf_counter() - started)
                times[name] = statistics.median(samples)
            items = (steps or prepares) * 2 + 2
            print(
                f"{'resume':>10}: {label:<22} {prepares:>5,} prepares, {items:>5,} "
                f"items ({events:,} events): from snapshot {times['new'] * 1e3:,.0f} ms, full "
                f"replay {times['old'] * 1e3:,.0f} ms; snapshot {latest / 1e3:,.1f} kB "
                f"(all {total / 1e6:,.2f} MB)"
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
        resume_scaling(Path(tmp), 1 if args.quick else 3, (20, 60) if args.quick else (145, 1_000))
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
