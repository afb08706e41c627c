"""The three store backends for parametrized tests, each test in its own namespace.

SQLite runs everywhere (a file under ``tmp_path``). PostgreSQL and Redis need servers:
``eval "$(scripts/services.sh start)"`` starts throw-away ones and exports
``CTXBUDGET_TEST_POSTGRES_URL`` / ``CTXBUDGET_TEST_REDIS_URL``. Without them those cases
skip, except under CI (``CI`` set), where they fail: CI must really run them. Each test
gets its own PostgreSQL schema or Redis key prefix, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ("sqlite", "postgresql", "redis")
ENV = {"postgresql": "CTXBUDGET_TEST_POSTGRES_URL", "redis": "CTXBUDGET_TEST_REDIS_URL"}


def server_url(backend: str) -> str:
    """The test server's URL, or skip (fail under CI) with what to do."""
    variable = ENV[backend]
    url = os.environ.get(variable)
    if url:
        return url
    message = (
        f'{backend} tests need a server: set {variable}, e.g. `eval "$(scripts/services.sh start)"`'
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}")
    pytest.skip(message)


def _join(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{option}"


def fresh_url(backend: str, tmp_path: Path) -> str:
    """A store URL no other test uses."""
    tag = uuid.uuid4().hex[:12]
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'store-{tag}.db'}"
    if backend == "postgresql":
        return _join(server_url(backend), f"schema=t_{tag}")
    return _join(server_url(backend), f"prefix=t{tag}:")


def drop(url: str) -> None:
    """Remove what a test left on a server (its schema or its keys)."""
    from ctxbudget.store import open_store

    if url.startswith("sqlite"):
        return
    store = open_store(url)
    try:
        if store.backend == "postgresql":
            schema = store.schema  # type: ignore[attr-defined]
            store.connection.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[attr-defined]
        else:
            client = store.client  # type: ignore[attr-defined]
            keys = list(client.scan_iter(match=store.prefix + "*", count=1000))  # type: ignore[attr-defined]
            if keys:
                client.delete(*keys)
    finally:
        store.close()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL, once per backend."""
    url = fresh_url(request.param, tmp_path)
    yield url
    drop(url)


MODEL = "gpt-4o"
SETTINGS = {"context_window": 4_000, "max_output_tokens": 500, "clock": lambda: 0.0}


def tool_schema() -> dict[str, object]:
    return {
        "type": "function",
        "function": {
            "name": "bash",
            "description": "run a shell command",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
        },
    }


def exchange(step: int) -> list[dict[str, object]]:
    """One agent step: a tool call and its (long) result, as OpenAI chat messages."""
    call = {
        "id": f"call_{step}",
        "type": "function",
        "function": {"name": "bash", "arguments": f'{{"cmd": "cat part{step}.log"}}'},
    }
    lines = "\n".join(f"part{step} line {n}: value {n * step % 97}" for n in range(30))
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": lines},
    ]


def start(mgr: object) -> None:
    """The opening of the scripted session: tools, system prompt, task."""
    from ctxbudget import ContextManager

    assert isinstance(mgr, ContextManager)
    mgr.set_tools([tool_schema()])
    mgr.extend(
        [
            {"role": "system", "content": "You are a careful engineer. Never edit tests."},
            {"role": "user", "content": "Find why test_parse fails."},
        ]
    )


def step(mgr: object, n: int, provider: str = "openai") -> bytes:
    """Prepare the next request, then append one exchange in one batch; the body's bytes."""
    import json

    from ctxbudget import ContextManager
    from ctxbudget.billing.usage import Usage

    assert isinstance(mgr, ContextManager)
    body = mgr.prepare(provider)  # type: ignore[arg-type]
    report = mgr.last_report
    assert report is not None
    mgr.observe_usage(Usage(input_tokens=report.input_tokens.tokens, output_tokens=20))
    with mgr.log.batch():
        mgr.extend(exchange(n))
    return json.dumps(body, sort_keys=True).encode()


def body_bytes(mgr: object, provider: str = "openai") -> bytes:
    import json

    from ctxbudget import ContextManager

    assert isinstance(mgr, ContextManager)
    return json.dumps(mgr.prepare(provider), sort_keys=True).encode()  # type: ignore[arg-type]


def resume_step(mgr: object, total: int, *, ack: bool = False) -> None:
    """Run the scripted session up to ``total`` exchanges, finishing a half-done step first.

    A writer killed mid-step leaves the log ending in a ``Prepared`` (the request was
    prepared, the model not called yet) or an ``Observed`` (billed, the exchange not
    appended yet); the resumed writer continues exactly there, as the original would have.
    With ``ack``, the log length is printed after each durable exchange.
    """
    from ctxbudget import ContextManager
    from ctxbudget.billing.usage import Usage
    from ctxbudget.session.log import Appended, Compacted, Observed, Prepared

    assert isinstance(mgr, ContextManager)
    events = [e for e in mgr.log.events if not isinstance(e, Compacted)]
    if not events:
        start(mgr)
    done = sum(1 for e in mgr.log.events if isinstance(e, Appended) and e.item.role == "assistant")
    last = events[-1] if events else None
    if isinstance(last, Prepared | Observed) and done < total:
        if isinstance(last, Prepared):
            report = mgr.last_report
            assert report is not None
            mgr.observe_usage(Usage(input_tokens=report.input_tokens.tokens, output_tokens=20))
        with mgr.log.batch():
            mgr.extend(exchange(done))
        done += 1
        if ack:
            print(len(mgr.log), flush=True)
    for n in range(done, total):
        step(mgr, n)
        if ack:
            print(len(mgr.log), flush=True)


def writer_main() -> None:
    """A writer process: ``python -c 'import _stores; _stores.writer_main()' URL ID TOTAL``."""
    import sys

    from ctxbudget import ContextManager

    url, session_id, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mgr = ContextManager.open(session_id, url, MODEL, **SETTINGS)
    print(len(mgr.log), flush=True)  # what the resumed log holds
    resume_step(mgr, total, ack=True)


def spend_worker(url: str, worker: int, start: Any, now: float) -> list[int]:
    """One of many processes spending against one team budget until it is refused.

    ``start``: a barrier every worker waits at once connected, so all start at once however
    slowly the machine spawns them. Each call reserves a random projection, is "billed"
    between 40% and 100% of it, and settles; returns the billed nano-dollars of every
    settled call.
    """
    import random
    import time
    from decimal import Decimal

    from ctxbudget.errors import BudgetExceeded
    from ctxbudget.spend import Reservation, SpendGuard, Tags, open_ledger, to_nanos

    rng = random.Random(worker)
    guard = SpendGuard(open_ledger(url), Tags(team="fleet", agent=f"w{worker}"), clock=lambda: now)
    billed: list[int] = []
    refusals = 0
    guard.ledger.totals()  # connected
    start.wait(timeout=120)  # every worker starts at once
    while refusals < 3:
        projected = Decimal(rng.randint(5_000, 40_000)) / Decimal(1_000_000)  # $0.005-0.04
        try:
            held = guard.reserve_amount(projected, 1000, model="m")
        except BudgetExceeded:
            refusals += 1
            continue
        assert isinstance(held, Reservation)
        time.sleep(rng.random() * 0.01)  # the model call, with the reservation in flight
        cost = to_nanos(projected * Decimal(rng.randint(40, 100)) / 100)
        guard.ledger.settle(held.id, nanos=cost, tokens=900)
        billed.append(cost)
    return billed


def session_worker(url: str, worker: int, count: int, start_at: float) -> int:
    """Append ``count`` exchanges to one shared session, reopening on every conflict.

    Returns how many conflicts it lost (and retried).
    """
    import time

    from ctxbudget import ContextManager
    from ctxbudget.store import LogConflict

    time.sleep(max(start_at - time.time(), 0))
    conflicts = 0
    mgr = ContextManager.open("shared", url, MODEL, **SETTINGS)
    for k in range(count):
        messages = exchange(1000 * (worker + 1) + k)
        time.sleep(0.01)  # the model call
        while True:
            try:
                with mgr.log.batch():
                    mgr.extend(messages)
                break
            except LogConflict:
                conflicts += 1
                mgr = ContextManager.open("shared", url, MODEL, **SETTINGS)
    return conflicts
