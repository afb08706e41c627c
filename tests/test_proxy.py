"""``ctxbudget proxy`` served for real (uvicorn) between the real SDK clients and the local
provider server: relay, sessions, modes, spend limits, keys and limits.

Each test starts its own proxy on a free port over a fresh SQLite store; the fleet tests
(two worker processes on one PostgreSQL store) are in ``test_proxy_fleet.py`` and the
real Claude Code / Codex runs in ``test_proxy_clis.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from typer.testing import CliRunner

import ctxbudget.cli.analyze  # (registers the command)
import ctxbudget.cli.simulate  # noqa: F401
from _proxy import running_proxy
from ctxbudget import ContextManager
from ctxbudget.cli import app
from ctxbudget.errors import ConfigError, UsageError
from ctxbudget.proxy import ProxyConfig, ProxyKey, load_keys
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import item_text
from ctxbudget.session.log import Appended, Observed
from ctxbudget.spend import Limit, ledger_for
from ctxbudget.store import decode_event, open_store
from ctxbudget.store.base import SessionStore
from provider_server import ProviderServer, Reply

MODEL = "claude-sonnet-4-5"
TOOLS = [
    {
        "name": "bash",
        "description": "run a shell command",
        "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}},
    }
]


class Agent:
    """A scripted agent loop: one bash call per step, then a final answer."""

    def __init__(self, steps: int, output: str = "a.txt b.txt") -> None:
        self.steps = steps
        self.output = output

    def __call__(self, api: str, body: dict[str, Any]) -> Reply:
        messages = body.get("messages") or body.get("input") or []
        done = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")
        if done < self.steps:
            return Reply(text=f"step {done}", tool_calls=[("bash", {"cmd": f"cat f{done}"})])
        return Reply(text="All done.")


def anthropic_client(url: str, session: str | None = None) -> anthropic.Anthropic:
    """The Anthropic SDK client through ``url`` (``session``: named by the header)."""
    headers = {"x-ctxbudget-session": session} if session else {}
    return anthropic.Anthropic(base_url=url, api_key="test", max_retries=0, default_headers=headers)


def ask(client: anthropic.Anthropic, messages: list[dict[str, Any]]) -> anthropic.types.Message:
    """One streamed call of the agent's list."""
    with client.messages.stream(
        model=MODEL, max_tokens=1000, system="Be brief.", messages=messages, tools=TOOLS
    ) as stream:
        return stream.get_final_message()


def step(
    client: anthropic.Anthropic, messages: list[dict[str, Any]], output: str = "a.txt b.txt"
) -> bool:
    """One agent step: the reply and the results of its tool calls appended to
    ``messages``; False once the model answered without tools."""
    reply = ask(client, messages)
    messages.append(
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]}
    )
    calls = [b for b in reply.content if b.type == "tool_use"]
    if calls:
        results = [{"type": "tool_result", "tool_use_id": c.id, "content": output} for c in calls]
        messages.append({"role": "user", "content": results})
    return bool(calls)


def run_anthropic(
    url: str, steps: int, *, session: str | None = None, output: str = "a.txt b.txt"
) -> list[dict[str, Any]]:
    """Drive an Anthropic SDK agent loop (streamed) through ``url``; the final list."""
    client = anthropic_client(url, session)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Look at the files."}]
    for _ in range(steps + 1):
        if not step(client, messages, output):
            break
    return messages


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    st = open_store(f"sqlite:///{tmp_path / 'proxy.db'}")
    yield st
    st.close()


def _events(store: SessionStore, session_id: str) -> list[Any]:
    """The stored events of a session, as they are (no replay)."""
    return [decode_event(e) for e in store.load(session_id)]


def _config(server: ProviderServer, **changes: Any) -> ProxyConfig:
    return ProxyConfig(
        anthropic_upstream=server.base_url, openai_upstream=server.base_url, **changes
    )


# --- relay ---------------------------------------------------------------------------------


class _SlowStream(BaseHTTPRequestHandler):
    """An upstream that sends one SSE event, then waits until the test says go on."""

    protocol_version = "HTTP/1.1"
    server: Any

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = [
            ("message_start", {"type": "message_start", "message": _message_start()}),
            ("ping", {"type": "ping"}),
        ]
        self._chunk(events[0])
        self.server.go_on.wait(10)
        self.server.finished_after_first = True
        for event in events[1:]:
            self._chunk(event)
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, event: tuple[str, dict[str, Any]]) -> None:
        data = f"event: {event[0]}\ndata: {json.dumps(event[1])}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _message_start() -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }


def test_streamed_events_are_relayed_as_they_arrive(store: SessionStore) -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _SlowStream)
    upstream.go_on = threading.Event()  # type: ignore[attr-defined]
    upstream.finished_after_first = False  # type: ignore[attr-defined]
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{upstream.server_address[1]}"
    body = {
        "model": MODEL,
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    try:
        with (
            running_proxy(ProxyConfig(anthropic_upstream=base), store) as url,
            httpx.stream(
                "POST", f"{url}/v1/messages", json=body, headers={"x-api-key": "k"}, timeout=20
            ) as response,
        ):
            lines = response.iter_lines()
            first = next(lines)
            # the upstream is still holding the rest back: the proxy did not wait for it
            assert first == "event: message_start"
            assert not upstream.finished_after_first  # type: ignore[attr-defined]
            upstream.go_on.set()  # type: ignore[attr-defined]
            rest = list(lines)
        assert "event: ping" in rest  # pings are relayed too, in order
        assert rest.index("event: ping") > 0
    finally:
        upstream.go_on.set()  # type: ignore[attr-defined]
        upstream.shutdown()


class _WholeThenHold(_SlowStream):
    """An upstream that sends a whole reply, then holds the stream open until told."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        text = {"type": "text", "text": ""}
        for event in (
            ("message_start", {"type": "message_start", "message": _message_start()}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": text},
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "done"},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 3},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ):
            self._chunk(event)
        self.server.go_on.wait(10)
        self.wfile.write(b"0\r\n\r\n")


def _roles(store: SessionStore) -> list[str]:
    """The roles of the items appended to the store's one session (none yet: [])."""
    sessions = store.sessions()
    if not sessions:
        return []
    events = _events(store, sessions[0].session_id)
    return [e.item.role for e in events if isinstance(e, Appended)]


def test_a_client_that_leaves_after_the_last_event_still_gets_its_reply_recorded(
    store: SessionStore,
) -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _WholeThenHold)
    upstream.go_on = threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{upstream.server_address[1]}"
    body = {
        "model": MODEL,
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    try:
        with running_proxy(ProxyConfig(anthropic_upstream=base), store) as url:
            with httpx.stream(
                "POST", f"{url}/v1/messages", json=body, headers={"x-api-key": "k"}, timeout=20
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("data:") and '"message_stop"' in line:
                        break  # like a client that stops at the closing event
            # the upstream still holds its stream open: only the proxy seeing the client
            # leave, with the reply whole, records it
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(_roles(store)) < 2:
                time.sleep(0.05)
            roles = _roles(store)
            upstream.go_on.set()  # type: ignore[attr-defined]
        assert roles == ["user", "assistant"]
        (info,) = store.sessions()
        events = _events(store, info.session_id)
        (usage,) = [e.usage for e in events if isinstance(e, Observed)]
        assert (usage.input_tokens, usage.output_tokens) == (10, 3)
    finally:
        upstream.go_on.set()  # type: ignore[attr-defined]
        upstream.shutdown()


def test_upstream_errors_come_back_unchanged(store: SessionStore) -> None:
    with ProviderServer() as server, running_proxy(_config(server), store) as url:
        body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
        server.fail_next("rate_limit")
        direct = httpx.post(f"{server.base_url}/v1/messages", json=body)
        server.fail_next("rate_limit")
        proxied = httpx.post(f"{url}/v1/messages", json=body)
        assert proxied.status_code == direct.status_code == 429
        strip = lambda data: {k: v for k, v in data.items() if k != "request_id"}  # noqa: E731
        assert strip(proxied.json()) == strip(direct.json())  # the wording clients match on
        assert proxied.headers.get("retry-after") == direct.headers.get("retry-after")
        # any other path passes through as it is
        other = httpx.post(f"{url}/v1/nowhere", json={})
        assert other.status_code == 404
        assert other.json() == httpx.post(f"{server.base_url}/v1/nowhere", json={}).json()


def test_headers_go_upstream_but_never_the_proxy_key(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({k.lower(): v for k, v in self.headers.items()})
            data = b'{"error": {"type": "x", "message": "no"}}'
            self.send_response(418)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{upstream.server_address[1]}"
    key = ProxyKey(name="alice", sha256=hashlib.sha256(b"s3cret").hexdigest())
    config = ProxyConfig(host="0.0.0.0", anthropic_upstream=base, keys=(key,))
    st = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        with running_proxy(config, st) as url:
            response = httpx.post(
                f"{url}/v1/messages",
                json={
                    "model": MODEL,
                    "max_tokens": 5,
                    "messages": [{"role": "user", "content": "x"}],
                },
                headers={
                    "x-api-key": "upstream-credential",
                    "anthropic-version": "2023-06-01",
                    "anthropic-beta": "some-beta-2025",
                    "x-ctxbudget-key": "s3cret",
                },
            )
        assert response.status_code == 418
        (headers,) = seen
        assert headers["x-api-key"] == "upstream-credential"
        assert headers["anthropic-beta"] == "some-beta-2025"
        assert headers["anthropic-version"] == "2023-06-01"
        assert not any(name.startswith("x-ctxbudget") for name in headers)
    finally:
        upstream.shutdown()
        st.close()
    # the credential is in no stored event or metadata
    raw = (tmp_path / "p.db").read_bytes()
    assert b"upstream-credential" not in raw


# --- sessions ------------------------------------------------------------------------------


def test_observe_records_every_call_and_sends_the_clients_bytes(store: SessionStore) -> None:
    with ProviderServer(script=Agent(6)) as server, running_proxy(_config(server), store) as url:
        final = run_anthropic(url, 6)
        sent = list(server.requests)
        billed = list(server.billed)
    (info,) = store.sessions()
    assert info.session_id.endswith("-o1")
    assert info.meta["proxy"]["mode"] == "observe"
    events = _events(store, info.session_id)
    appended = [e.item for e in events if isinstance(e, Appended)]
    # the system prompt, every message of the client's final list, once each
    assert [i.role for i in appended] == ["system", *[m["role"] for m in final]]
    assert sum(len(i.tool_calls) for i in appended) == 6
    assert not find_orphans(appended)
    usage = [e.usage for e in events if isinstance(e, Observed)]
    assert [(u.input_tokens, u.output_tokens) for u in usage] == [
        (b.input_tokens, b.output_tokens) for b in billed
    ]
    # observe: the upstream got exactly what the client sent
    assert sent[-1]["messages"] == final[:-1]
    assert sent[-1]["system"] == "Be brief."
    assert sent[-1]["tools"] == TOOLS


def test_a_rewritten_history_starts_a_new_segment(store: SessionStore) -> None:
    with ProviderServer(script=Agent(2)) as server, running_proxy(_config(server), store) as url:
        final = run_anthropic(url, 2, session="edit-me")
        client = anthropic.Anthropic(
            base_url=url,
            api_key="t",
            max_retries=0,
            default_headers={"x-ctxbudget-session": "edit-me"},
        )
        edited = [
            *final[:2],
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": final[1]["content"][-1]["id"],
                        "content": "changed",
                    }
                ],
            },
        ]
        client.messages.create(
            model=MODEL, max_tokens=100, system="Be brief.", messages=edited, tools=TOOLS
        )
    ids = sorted(i.session_id for i in store.sessions())
    assert len(ids) == 2
    assert ids[0].endswith("-o1")
    assert ids[1].endswith("-o2")
    assert ids[0].startswith("edit-me/")


def test_client_headers_name_the_session_and_sub_agents_link_to_it(store: SessionStore) -> None:
    with ProviderServer() as server, running_proxy(_config(server), store) as url:
        body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
        httpx.post(f"{url}/v1/messages", json=body, headers={"x-claude-code-session-id": "abc-1"})
        httpx.post(
            f"{url}/v1/messages",
            json={**body, "messages": [{"role": "user", "content": "sub task"}]},
            headers={"x-claude-code-session-id": "abc-1", "x-claude-code-agent-id": "ag7"},
        )
        meta = {"user_id": json.dumps({"device_id": "d", "session_id": "meta-9"})}
        httpx.post(f"{url}/v1/messages", json={**body, "metadata": meta})
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "y"}]}
        httpx.post(f"{url}/v1/chat/completions", json=chat, headers={"session_id": "codex-5"})
    infos = {i.session_id.split("/")[0]: i for i in store.sessions()}
    assert set(infos) == {"abc-1", "abc-1.agent-ag7", "meta-9", "codex-5"}
    assert infos["abc-1.agent-ag7"].meta["proxy"]["parent"] == "abc-1"
    assert infos["meta-9"].meta["proxy"]["source"] == "metadata"
    assert infos["codex-5"].meta["proxy"]["source"] == "codex"


# --- manage --------------------------------------------------------------------------------


def test_manage_keeps_a_long_session_in_a_small_window(tmp_path: Path) -> None:
    window = 6_000
    output = "\n".join(f"line {n}: value {n * 7 % 101} of the log" for n in range(120))
    sent: dict[str, int] = {}
    for mode in ("observe", "manage"):
        st = open_store(f"sqlite:///{tmp_path / f'{mode}.db'}")
        with ProviderServer(script=Agent(14)) as server:
            config = _config(server, mode=mode, context_window=window)
            with running_proxy(config, st) as url:
                run_anthropic(url, 14, output=output)
            sent[mode] = sum(server.count_input("anthropic", b) for b in server.requests)
            if mode == "manage":
                for body in server.requests:
                    tokens = server.count_input("anthropic", body)
                    assert tokens + body["max_tokens"] <= window * 1.1, tokens
                    uses = {
                        b["id"]
                        for m in body["messages"]
                        if isinstance(m["content"], list)
                        for b in m["content"]
                        if b.get("type") == "tool_use"
                    }
                    results = {
                        b["tool_use_id"]
                        for m in body["messages"]
                        if isinstance(m["content"], list)
                        for b in m["content"]
                        if b.get("type") == "tool_result"
                    }
                    assert uses == results
        st.close()
    assert sent["manage"] < sent["observe"]


# --- spend, keys, limits -------------------------------------------------------------------


def test_a_spend_limit_refuses_before_forwarding_in_the_providers_shape(
    store: SessionStore,
) -> None:
    ledger_for(store).set_limit(
        Limit(scope="global", key="*", period="day", usd=Decimal("0.000001"), action="refuse")
    )
    with ProviderServer() as server, running_proxy(_config(server), store) as url:
        body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
        refused = httpx.post(f"{url}/v1/messages", json=body)
        assert refused.status_code == 400
        assert refused.json()["type"] == "error"
        assert "spend limit" in refused.json()["error"]["message"] or "limit" in refused.text
        chat = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
        )
        assert chat.status_code == 429
        assert chat.json()["error"]["code"] == "insufficient_quota"
        assert server.requests == []  # nothing reached the upstream


def _keyed(names: tuple[str, ...]) -> tuple[ProxyKey, ...]:
    return tuple(
        ProxyKey(name=n, sha256=hashlib.sha256(f"secret-{n}".encode()).hexdigest(), user=n)
        for n in names
    )


def test_beyond_loopback_a_key_is_required_and_keys_do_not_see_each_other(
    store: SessionStore,
) -> None:
    with pytest.raises(ConfigError, match="open relay"):
        ProxyConfig(host="0.0.0.0")
    config_keys = _keyed(("alice", "bob"))
    with (
        ProviderServer() as server,
        running_proxy(_config(server, host="0.0.0.0", keys=config_keys), store) as url,
    ):
        body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
        same = {"x-ctxbudget-session": "shared-name"}
        assert httpx.post(f"{url}/v1/messages", json=body).status_code == 401
        wrong = httpx.post(f"{url}/v1/messages", json=body, headers={"x-ctxbudget-key": "nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["type"] == "authentication_error"
        assert httpx.get(f"{url}/metrics").status_code == 401
        for name in ("alice", "bob"):
            ok = httpx.post(
                f"{url}/v1/messages",
                json=body,
                headers={**same, "x-ctxbudget-key": f"secret-{name}"},
            )
            assert ok.status_code == 200, ok.text
        assert len(server.requests) == 2
    ids = sorted(i.session_id for i in store.sessions())
    assert [i.split("/")[0] for i in ids] == ["k.alice", "k.bob"]  # one session each
    totals = ledger_for(store).totals()
    users = {b.key for b in totals if b.scope == "user"}
    assert users == {"alice", "bob"}


def test_a_limit_on_every_user_binds_a_keyed_observed_call(store: SessionStore) -> None:
    ledger_for(store).set_limit(
        Limit(scope="user", key="*", period="day", usd=Decimal("0.000001"), action="refuse")
    )
    with (
        ProviderServer() as server,
        running_proxy(_config(server, host="0.0.0.0", keys=_keyed(("alice",))), store) as url,
    ):
        body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
        refused = httpx.post(
            f"{url}/v1/messages", json=body, headers={"x-ctxbudget-key": "secret-alice"}
        )
        assert refused.status_code == 400, refused.text
        assert "limit" in refused.json()["error"]["message"]
        assert server.requests == []


def test_body_size_and_requests_in_flight_are_capped(store: SessionStore) -> None:
    with (
        ProviderServer() as server,
        running_proxy(_config(server, max_body_bytes=2_000), store) as url,
    ):
        big = {
            "model": MODEL,
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "x" * 5000}],
        }
        response = httpx.post(f"{url}/v1/messages", json=big)
        assert response.status_code == 413
        assert "--max-body-bytes" in response.json()["error"]["message"]


def test_keys_file_and_metrics(tmp_path: Path, store: SessionStore) -> None:
    path = tmp_path / "keys.toml"
    path.write_text('[[key]]\nname = "ci"\nsecret = "abc"\nteam = "infra"\n', encoding="utf-8")
    (key,) = load_keys(path)
    assert key.team == "infra"
    assert key.matches("abc")
    assert not key.matches("abd")
    path.write_text("[[key]]\nname = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="sha256"):
        load_keys(path)
    with ProviderServer() as server, running_proxy(_config(server), store) as url:
        body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
        httpx.post(f"{url}/v1/messages", json=body)
        text = httpx.get(f"{url}/metrics").text
        health = httpx.get(f"{url}/healthz").json()
    assert 'ctxbudget_proxy_requests_total{api="anthropic",mode="observe",status="200"} 1.0' in text
    assert "ctxbudget_proxy_overhead_seconds_bucket" in text
    assert "ctxbudget_prepared_calls_total 1.0" in text
    assert health["status"] == "ok"


def test_openai_chat_and_responses_through_the_proxy(store: SessionStore) -> None:
    with ProviderServer(script=Agent(2)) as server, running_proxy(_config(server), store) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="test", max_retries=0)
        messages: list[Any] = [{"role": "user", "content": "go"}]
        for _ in range(3):
            stream = client.chat.completions.create(
                model="gpt-4o",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = list(stream)
            calls: dict[int, dict[str, Any]] = {}
            for ch in chunks:
                for delta in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
                    empty = {"name": "", "arguments": ""}
                    slot = calls.setdefault(
                        delta.index, {"id": "", "type": "function", "function": empty}
                    )
                    slot["id"] = delta.id or slot["id"]
                    if delta.function is not None:
                        slot["function"]["name"] += delta.function.name or ""
                        slot["function"]["arguments"] += delta.function.arguments or ""
            text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = list(calls.values())
            messages.append(message)
            for call in calls.values():
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": "ok"})
        response = client.responses.create(model="gpt-5", input="hi")
        assert response.output_text
    sessions = store.sessions()
    assert len(sessions) == 2
    chat = next(s for s in sessions if s.meta["proxy"]["api"] == "openai_chat")
    observed = [e for e in _events(store, chat.session_id) if isinstance(e, Observed)]
    assert len(observed) == 3
    # the settings it was recorded with are in its metadata: it reopens with them
    manager = ContextManager.open(chat.session_id, store, **chat.meta["settings"])
    assert len(manager.log) == len(_events(store, chat.session_id))


def test_analyze_and_simulate_read_what_the_proxy_recorded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    st = open_store(url)
    with ProviderServer(script=Agent(5)) as server, running_proxy(_config(server), st) as base:
        run_anthropic(base, 5)
        billed = sum(b.input_tokens for b in server.billed)
    (info,) = st.sessions()
    st.close()
    runner = CliRunner()
    analyzed = runner.invoke(
        app, ["analyze", "--store", url, "--stored", info.session_id, "--json"]
    )
    assert analyzed.exit_code == 0, analyzed.output
    data = json.loads(analyzed.stdout)
    assert data["calls"] == 6
    assert data["models"] == {MODEL: 6}
    simulated = runner.invoke(
        app,
        ["simulate", "--store", url, "--stored", info.session_id, "--policy", "none", "--json"],
    )
    assert simulated.exit_code == 0, simulated.output
    assert json.loads(simulated.stdout)["calls"] == 6
    assert billed > 0
    missing = runner.invoke(app, ["analyze", "--store", url, "--stored", "nope", "--json"])
    assert isinstance(missing.exception, UsageError)  # main() prints it as one line
    assert "no session 'nope'" in str(missing.exception)


def test_manage_compacts_harder_when_the_upstream_says_too_long(store: SessionStore) -> None:
    # the proxy believes the window is 30k; the upstream's real one is 2.6k
    output = " ".join(hashlib.sha256(str(n).encode()).hexdigest()[:12] for n in range(2400))
    with ProviderServer(script=Agent(3), context_windows={MODEL: 2_600}) as server:
        config = _config(server, mode="manage", context_window=30_000)
        with running_proxy(config, store) as url:
            final = run_anthropic(url, 3, output=output)  # the SDK raises on any error
        assert len(final) >= 7
        refused = len(server.requests) - len(server.billed)
        assert refused >= 1  # the upstream did say so, and the proxy sent it again smaller
        assert len(server.billed) == sum(1 for m in final if m["role"] == "assistant")
        sizes = [server.count_input("anthropic", b) + b["max_tokens"] for b in server.requests]
        for before, after in itertools.pairwise(sizes):
            if before > 2_600:  # a refused request is followed by the same call, smaller
                assert after < before


class Recaller(Agent):
    """Like :class:`Agent`, but once a marker names ``recall("mN")`` it recalls that id
    first, alone, with a bit of text (a hidden round), then goes on."""

    def __init__(self, steps: int, output: str) -> None:
        super().__init__(steps, output)
        self.recalled: str | None = None
        self.answer: str | None = None

    def __call__(self, api: str, body: dict[str, Any]) -> Reply:
        text = json.dumps(body.get("messages") or body.get("input"))
        if self.recalled is None:
            found = re.search(r'recall\(\\*"(m\d+)\\*"\)', text)
            if found is not None:
                self.recalled = found.group(1)
                return Reply(
                    text="Let me look again.", tool_calls=[("recall", {"id": self.recalled})]
                )
        elif self.answer is None:
            self.answer = text
        done = text.count('"step ')
        if done < self.steps:
            return Reply(text=f"step {done}", tool_calls=[("bash", {"cmd": f"cat f{done}"})])
        return Reply(text="All done.")


def test_manage_answers_recall_inside_the_proxy_unseen_by_a_streaming_client(
    store: SessionStore,
) -> None:
    output = " ".join(hashlib.sha256(str(n).encode()).hexdigest()[:12] for n in range(900))
    script = Recaller(6, output)
    with ProviderServer(script=script) as server:
        config = _config(server, mode="manage", context_window=12_000)
        with running_proxy(config, store) as url:
            final = run_anthropic(url, 6, output=output)
        sent = list(server.requests)
    assert script.recalled is not None, "no marker named recall(): nothing was compacted"
    # the client never saw the recall call, and its messages pair up as the SDK built them
    client_calls = [
        b
        for m in final
        if m["role"] == "assistant"
        for b in m["content"]
        if b["type"] == "tool_use"
    ]
    assert client_calls
    assert all(b["name"] == "bash" for b in client_calls)
    texts = [
        b["text"]
        for m in final
        if m["role"] == "assistant"
        for b in m["content"]
        if b["type"] == "text"
    ]
    assert "Let me look again." in texts  # the hidden round's text reached the client
    # the upstream was offered the tool and got the answer: the recalled output, whole
    assert any(t.get("name") == "recall" for t in sent[-1]["tools"])
    assert script.answer is not None
    assert output[:200] in script.answer.replace("\\n", "\n")
    # the log holds the hidden round: the recall call, its answer, and one bill per round
    (info,) = store.sessions()
    events = _events(store, info.session_id)
    items = [e.item for e in events if isinstance(e, Appended)]
    assert any(c.name == "recall" for i in items for c in i.tool_calls)
    assert not find_orphans(items)
    observed = [e for e in events if isinstance(e, Observed)]
    assert len(observed) == len(server.billed) == len(sent)


def test_manage_answers_recall_in_a_plain_chat_call(store: SessionStore) -> None:
    output = " ".join(hashlib.sha256(str(n).encode()).hexdigest()[:12] for n in range(900))
    script = Recaller(6, output)
    with ProviderServer(script=script) as server:
        config = _config(server, mode="manage", context_window=12_000)
        with running_proxy(config, store) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="test", max_retries=0)
            messages: list[Any] = [{"role": "user", "content": "go"}]
            for _ in range(10):
                reply = client.chat.completions.create(model="gpt-4o", messages=messages)
                message = reply.choices[0].message
                calls = message.tool_calls or []
                assert all(c.function.name == "bash" for c in calls)  # recall never shows
                messages.append(message.model_dump(exclude_none=True))
                if not calls:
                    break
                for c in calls:
                    messages.append({"role": "tool", "tool_call_id": c.id, "content": output})
        assert script.recalled is not None
        assert len(server.billed) > sum(1 for m in messages if m["role"] == "assistant")


def test_a_proxy_restarted_with_other_settings_goes_on_in_a_new_segment(
    store: SessionStore,
) -> None:
    with ProviderServer(script=Agent(3)) as server:
        for window in (30_000, 40_000):
            config = _config(server, mode="manage", context_window=window)
            with running_proxy(config, store) as url:
                run_anthropic(url, 1, session="restarted")
    ids = sorted(i.session_id for i in store.sessions())
    assert [i.rsplit("-", 1)[1] for i in ids] == ["m1", "m2"]
    windows = [store.require(i).meta["settings"]["context_window"] for i in ids]
    assert windows == [30_000, 40_000]


def test_without_ids_unrelated_string_inputs_are_unrelated_sessions(store: SessionStore) -> None:
    with ProviderServer() as server, running_proxy(_config(server), store) as url:
        for text in ("hello, first task", "help with a second one"):
            response = httpx.post(f"{url}/v1/responses", json={"model": "gpt-5", "input": text})
            assert response.status_code == 200, response.text
    clients = {i.meta["proxy"]["client_session"] for i in store.sessions()}
    assert len(clients) == 2  # hashed from each whole first message, not its first letter


def test_a_stored_session_reads_without_what_was_retracted(store: SessionStore) -> None:
    from ctxbudget.billing.usage import Usage
    from ctxbudget.traces.stored import stored_session

    manager = ContextManager.open("kept", store, "gpt-4o")
    for text, reply, billed in (("one", "a", 10), ("two", "b", 20)):
        manager.extend([{"role": "user", "content": text}])
        manager.prepare("openai")
        manager.extend([{"role": "assistant", "content": reply}])
        manager.observe_usage(Usage(input_tokens=billed, output_tokens=1))
    manager.retract(2)  # the client dropped its last turn and the reply to it
    manager.extend([{"role": "user", "content": "three"}])
    manager.prepare("openai")
    manager.extend([{"role": "assistant", "content": "c"}])
    manager.observe_usage(Usage(input_tokens=30, output_tokens=1))
    session = stored_session(store, "kept")
    assert [item_text(i) for i in session.items] == ["one", "a", "three", "c"]
    assert [(c.position, c.usage.input_tokens if c.usage else None) for c in session.calls] == [
        (1, 10),
        (3, 30),
    ]
