"""Two ``ctxbudget proxy`` worker processes on one PostgreSQL (or Redis) store: either
serves any session, a spend limit holds across both, and a worker killed mid-call loses no
acknowledged event.

The workers are real processes started with the CLI (``ctxbudget proxy --store
postgresql://...``); the agent's calls alternate between them, so each request finds the
session last written by the other worker and resumes it from the store.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from _proxy import free_port
from _stores import drop, fresh_url
from ctxbudget import ContextManager
from ctxbudget.proxy.exchange import LIMITS_TTL
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.log import Appended, Observed
from ctxbudget.spend import Limit, ledger_for
from ctxbudget.store import decode_event, open_store
from provider_server import ProviderServer, Reply
from test_proxy import MODEL, Agent, anthropic_client, ask, step


def _worker(store_url: str, upstream: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "ctxbudget",
        "proxy",
        "--port",
        str(port),
        "--store",
        store_url,
        "--anthropic-upstream",
        upstream,
    ]
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"worker exited: {log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"worker did not start: {log.read_text(errors='replace')}")


@pytest.fixture(params=["postgresql", "redis"])
def fleet(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, list[str], ProviderServer]]:
    url = fresh_url(request.param, tmp_path)
    open_store(url).close()  # migrate once, before two workers race to
    workers = []
    with ProviderServer(script=Agent(6)) as server:
        try:
            for n in range(2):
                workers.append(_worker(url, server.base_url, tmp_path / f"worker{n}.log"))
            yield url, [u for _, u in workers], server
        finally:
            for process, _ in workers:
                process.terminate()
                process.wait(timeout=10)
            drop(url)


def test_two_workers_serve_one_session_alternately_and_share_a_spend_limit(
    fleet: tuple[str, list[str], ProviderServer],
) -> None:
    url, bases, server = fleet
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Look at the files."}]
    turn = 0
    while step(anthropic_client(bases[turn % 2], "fleet-run"), messages):
        turn += 1
    assert len(server.billed) == 7
    store = open_store(url)
    try:
        (info,) = store.sessions()  # one session, never split between the workers
        assert info.session_id.startswith("fleet-run/")
        assert info.session_id.endswith("-o1")
        manager = ContextManager.open(info.session_id, store)
        items = [e.item for e in manager.log.events if isinstance(e, Appended)]
        assert [i.role for i in items] == ["system", *[m["role"] for m in messages]]
        assert not find_orphans(items)
        observed = [e.usage for e in manager.log.events if isinstance(e, Observed)]
        assert [u.input_tokens for u in observed] == [b.input_tokens for b in server.billed]
        ledger = ledger_for(store)
        spent = sum(
            (
                t.spent
                for b, t in ledger.totals().items()
                if (b.scope, b.period) == ("global", "day")
            ),
            Decimal(0),
        )
        assert spent > 0  # both workers settled into the one ledger
        ledger.set_limit(Limit(scope="global", key="*", period="day", usd=spent, action="refuse"))
    finally:
        store.close()
    time.sleep(LIMITS_TTL + 0.2)  # a worker reads the limits again at most a second later
    for base in bases:  # the limit, set once, holds on both workers
        refused = httpx.post(
            f"{base}/v1/messages",
            json={"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]},
        )
        assert refused.status_code == 400, refused.text
        assert "limit" in refused.json()["error"]["message"]
    assert len(server.billed) == 7


class _Stalling(Agent):
    """The agent's script, but the call after ``stall_at`` steps waits for ``go_on``."""

    def __init__(self, steps: int, stall_at: int) -> None:
        super().__init__(steps)
        self.stall_at = stall_at
        self.stalled = threading.Event()
        self.go_on = threading.Event()

    def __call__(self, api: str, body: dict[str, Any]) -> Reply:
        done = sum(1 for m in body["messages"] if m.get("role") == "assistant")
        if done == self.stall_at and not self.go_on.is_set():
            self.stalled.set()
            self.go_on.wait(30)
        return super().__call__(api, body)


def test_a_worker_killed_mid_call_loses_no_acknowledged_event(tmp_path: Path) -> None:
    url = fresh_url("postgresql", tmp_path)
    open_store(url).close()
    script = _Stalling(5, stall_at=3)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with ProviderServer(script=script) as server:
            first, base_a = _worker(url, server.base_url, tmp_path / "a.log")
            second, base_b = _worker(url, server.base_url, tmp_path / "b.log")
            processes += [first, second]
            messages: list[dict[str, Any]] = [{"role": "user", "content": "Look at the files."}]
            for _ in range(3):
                step(anthropic_client(base_a, "fleet-run"), messages)
            failed: list[BaseException] = []
            caller = threading.Thread(target=_expect_failure, args=(base_a, messages, failed))
            caller.start()
            assert script.stalled.wait(20)
            store = open_store(url)
            (info,) = store.sessions()
            before = store.load(info.session_id)
            first.kill()  # mid-call: the request was synced and forwarded, no reply yet
            first.wait(10)
            script.go_on.set()
            caller.join(20)
            assert failed, "the call through the killed worker should have failed"
            while step(anthropic_client(base_b, "fleet-run"), messages):  # retried on B
                pass
            # the last reply is recorded just after its stream ends: wait for it
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                after = store.load(info.session_id)
                if sum(1 for e in after if e.kind == "appended") > len(messages):
                    break
                time.sleep(0.05)
            sessions = store.sessions()
            store.close()
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(10)
        drop(url)
    assert [s.session_id for s in sessions] == [info.session_id]  # the same session went on
    assert after[: len(before)] == before  # every acknowledged event is still there, as it was
    items = [decode_event(e).item for e in after if e.kind == "appended"]
    roles = [i.role for i in items]
    assert roles == ["system", *[m["role"] for m in messages]]  # nothing twice, nothing lost


def _expect_failure(base: str, messages: list[dict[str, Any]], failed: list[BaseException]) -> None:
    try:
        ask(anthropic_client(base, "fleet-run"), list(messages))
    except Exception as exc:  # the worker died under the call
        failed.append(exc)
