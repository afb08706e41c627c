"""The HTTP side: a threaded local server routing provider paths through one pipeline.

Every generation request goes: record body → injected failure → validate → count →
context window → script → cache charge → bill → answer. Billing happens before the
first byte is sent, so a test sees ``billed`` as soon as the SDK call returns.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from ._core import (
    DEFAULT_CONTEXT_WINDOW,
    FAILURE_KINDS,
    JSON,
    Answer,
    Api,
    ApiError,
    Billed,
    FailureKind,
    Reply,
    Usage,
    Wire,
)
from .anthropic_messages import MessagesWire
from .openai_chat import ChatWire
from .openai_common import PrefixCache
from .openai_responses import ResponsesWire

Script = Callable[[str, JSON], Reply]


class ProviderServer:
    """A local OpenAI + Anthropic endpoint the real SDK clients talk to via ``base_url``.

    ``with ProviderServer() as server:`` starts it on a free port (or call start/close).
    ``requests`` holds every body received, ``billed`` every successful call.
    """

    def __init__(
        self,
        *,
        script: Script | None = None,
        context_windows: dict[str, int] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.script: Script | None = script
        self.context_windows: dict[str, int] = dict(context_windows or {})
        self.now: Callable[[], float] = now
        self.requests: list[JSON] = []
        self.billed: list[Billed] = []
        self.base_url = ""
        self._lock = threading.RLock()
        self._failures: deque[FailureKind] = deque()
        openai_cache = PrefixCache()
        self._wires: dict[str, Wire] = {
            "openai_chat": ChatWire(openai_cache),
            "openai_responses": ResponsesWire(openai_cache),
            "anthropic": MessagesWire(),
        }
        self._routes: dict[str, tuple[Wire, bool]] = {
            "/v1/chat/completions": (self._wires["openai_chat"], True),
            "/v1/responses": (self._wires["openai_responses"], True),
            "/v1/responses/input_tokens": (self._wires["openai_responses"], False),
            "/v1/messages": (self._wires["anthropic"], True),
            "/v1/messages/count_tokens": (self._wires["anthropic"], False),
        }
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def openai_base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)``: the SDK appends ``/chat/completions`` etc."""
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For ``anthropic.Anthropic(base_url=...)``: the SDK appends ``/v1/messages``."""
        return self.base_url

    def start(self) -> ProviderServer:
        """Listen on 127.0.0.1 at a free port, serving from a daemon thread."""
        if self._http is not None:
            raise RuntimeError("ProviderServer already started")
        self._http = _HTTPServer(self)
        host, port = self._http.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.01},  # close() waits for one poll
            name="provider-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._http is None:
            return
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http = self._thread = None

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def fail_next(self, kind: FailureKind, count: int = 1) -> None:
        """Make the next ``count`` generation requests (not count endpoints) fail with ``kind``."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {FAILURE_KINDS}")
        with self._lock:
            self._failures.extend([kind] * count)

    def count_input(self, api: str, body: JSON) -> int:
        """The server's own input-token count of ``body`` for ``api`` (cache-independent)."""
        if api not in self._wires:
            raise ValueError(f"unknown api {api!r}; expected one of {sorted(self._wires)}")
        return self._wires[api].prompt(body).tokens

    def context_window(self, model: str) -> int:
        """The model's window: ``context_windows`` or the default 200k."""
        return self.context_windows.get(model, DEFAULT_CONTEXT_WINDOW)

    def handle(self, path: str, raw: bytes) -> Answer:
        """Record the body and answer it; never raises."""
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        body: JSON | None = parsed if isinstance(parsed, dict) else None
        with self._lock:
            self.requests.append(
                body if body is not None else {"__invalid_json__": raw.decode(errors="replace")}
            )
        route = self._routes.get(urlsplit(path).path)
        if route is None:
            unknown = f"Unknown request URL: POST {path}."
            chat = self._wires["openai_chat"]
            return chat.error(404, "invalid_request_error", unknown, code="unknown_url").answer
        wire, generates = route
        try:
            if body is None:
                raise wire.error(
                    400,
                    "invalid_request_error",
                    "We could not parse the JSON body of your request. "
                    "The body must be a JSON object.",
                )
            if generates:
                return self._generate(wire, body)
            wire.validate(body, for_count=True)
            return wire.count_answer(wire.prompt(body).tokens)
        except ApiError as error:
            return error.answer
        except Exception as exc:  # a bug here or in the test's script: show it, don't hang
            traceback.print_exc(file=sys.stderr)
            return wire.error(500, "api_error", f"fake provider crashed: {exc!r}").answer

    def _generate(self, wire: Wire, body: JSON) -> Answer:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None and failure != "overflow":
            raise wire.failure(failure, body)
        wire.validate(body)
        prompt = wire.prompt(body)
        requested = wire.requested_output(body)
        window = self.context_window(str(body["model"]))
        if failure == "overflow" or prompt.tokens + requested > window:
            raise wire.overflow(body, prompt.tokens, requested, window)
        script = self.script
        reply = script(wire.api, body) if script is not None else Reply(text="ok")
        output = wire.output_tokens(reply)
        with self._lock:
            cache = prompt.charge(self.now())
            usage = Usage(prompt.tokens, cache, output, reply.reasoning_tokens)
            answer = wire.respond(body, reply, usage)
            self.billed.append(billed(wire.api, body, usage))
        return answer


def billed(api: Api, body: JSON, usage: Usage) -> Billed:
    """The provider-neutral record of a successful call."""
    return Billed(
        api=api,
        model=str(body["model"]),
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache.read,
        cache_write_5m_tokens=usage.cache.write_5m,
        cache_write_1h_tokens=usage.cache.write_1h,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        stream=bool(body.get("stream")),
    )


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on a free local port that knows its ProviderServer."""

    daemon_threads = True

    def __init__(self, provider: ProviderServer) -> None:
        self.provider = provider
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients dropping pooled keep-alive connections is normal; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive (the SDKs pool connections); SSE sent chunked."""

    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall
    server: _HTTPServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        answer = self.server.provider.handle(self.path, raw)
        try:
            self._send(answer)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
            self.close_connection = True

    def _send(self, answer: Answer) -> None:
        if answer.events is None:
            data = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        for event, event_data in answer.events:
            text = (f"event: {event}\n" if event else "") + f"data: {event_data}\n\n"
            payload = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``requests`` instead of access logs."""
