"""How an upstream response comes back to the client: relayed, and read along to record.

A stream is relayed chunk by chunk as it arrives; with the recall tool offered (manage
mode, Anthropic) it is relayed event by event through a :class:`~.splice.Splice`, which
hides recall calls and continues the message with the next round. A whole JSON response
is returned as it is (or without its recall calls, after the hidden rounds). An upstream
error comes back with its status and body unchanged, except a "too long" in manage mode,
which is prepared again under the limit it implies and sent once more.

A reply is recorded before its response ends (the stream's last bytes wait for it): the
client's next call, which may reach another worker of a fleet, then finds it in the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ctxbudget.integrations.apis import Collector, is_overflow
from ctxbudget.integrations.recall import without_recall
from ctxbudget.proxy.call import Call, Reply
from ctxbudget.proxy.gate import Refused
from ctxbudget.proxy.metrics import ProxyMetrics
from ctxbudget.proxy.recall import Round, settle_round
from ctxbudget.proxy.splice import Splice
from ctxbudget.proxy.sse import EventReader, event_bytes
from ctxbudget.proxy.upstream import relay, response_headers
from ctxbudget.proxy.wire import Wire

T = TypeVar("T")


class Exchange(Protocol):
    """What sending and answering need of the proxy's call handler
    (:class:`ctxbudget.proxy.exchange.Exchange`)."""

    client: httpx.AsyncClient
    metrics: ProxyMetrics

    async def run(self, fn: Callable[..., T], *args: Any) -> T: ...

    def upstream_request(self, call: Call, request: Request, payload: bytes) -> httpx.Request: ...

    def again(self, call: Call, error: str | None = None) -> bytes: ...

    def finish(
        self, call: Call, lock: asyncio.Lock, reply: Reply | None, closing: Any = None
    ) -> asyncio.Task[None]: ...

    async def release(self, call: Call, lock: asyncio.Lock) -> None: ...

    def settle_spend(self, call: Call, answered: bool, usage: Any) -> None: ...


__all__ = ["Exchange", "error_response", "send", "unreachable"]


def error_response(wire: Wire, refused: Refused) -> Response:
    """The provider-shaped error the proxy answers itself."""
    status, body = wire.error(refused.kind, refused.message)
    return JSONResponse(body, status_code=status, headers={"x-ctxbudget-refused": refused.kind})


def unreachable(exc: httpx.HTTPError) -> Refused:
    """The error a client gets when the upstream cannot be reached."""
    return Refused(
        "unreachable",
        f"ctxbudget proxy could not reach the upstream ({type(exc).__name__}: {exc}); check "
        "--anthropic-upstream / --openai-upstream and the network",
    )


async def send(
    exchange: Exchange, call: Call, request: Request, payload: bytes, lock: asyncio.Lock
) -> Response:
    """Send ``payload`` upstream and answer the client with what comes back."""
    try:
        response = await exchange.client.send(
            exchange.upstream_request(call, request, payload), stream=True
        )
    except httpx.HTTPError as exc:
        await exchange.release(call, lock)
        return error_response(call.wire, unreachable(exc))
    mode = "manage" if call.managed else "observe"
    if not call.retried:
        exchange.metrics.overhead(call.wire.name, mode, time.perf_counter() - call.started)
    headers = response_headers(response.headers)
    if response.status_code >= 400:
        data = await response.aread()
        await response.aclose()
        text = data.decode("utf-8", "replace")
        if call.managed and not call.retried and is_overflow(response.status_code, text):
            call.retried = True  # compact harder and send once more, unseen by the client
            try:
                payload = await exchange.run(exchange.again, call, text)
            except Refused as refused:
                await exchange.release(call, lock)
                return error_response(call.wire, refused)
            return await send(exchange, call, request, payload, lock)
        exchange.metrics.request(call.wire.name, mode, response.status_code)
        exchange.finish(call, lock, None)
        return Response(data, status_code=response.status_code, headers=headers)
    exchange.metrics.request(call.wire.name, mode, response.status_code)
    if "text/event-stream" not in response.headers.get("content-type", ""):
        return await _whole(exchange, call, request, lock, response=response, headers=headers)
    body = (
        _spliced(exchange, call, request, lock, response)
        if call.recall
        else _relayed(exchange, call, lock, response)
    )
    return StreamingResponse(body, status_code=response.status_code, headers=headers)


async def _relayed(
    exchange: Exchange, call: Call, lock: asyncio.Lock, response: httpx.Response
) -> AsyncIterator[bytes]:
    """Every chunk as it arrives; the events read along to record the reply at the end."""
    reader, collector = EventReader(), Collector(call.wire.adapter)

    def read_along(chunk: bytes) -> None:
        for event in reader.feed(chunk):
            collector.feed(event)

    recording: asyncio.Task[None] | None = None
    try:
        async for chunk in relay(response, read_along):
            yield chunk
        recording = exchange.finish(call, lock, Reply(collector), response)
        await asyncio.shield(recording)  # recorded before the stream ends
    finally:
        if recording is None:  # the client left: the reply is recorded if it was whole
            exchange.finish(call, lock, Reply(collector) if collector.stopped else None, response)


async def _spliced(
    exchange: Exchange, call: Call, request: Request, lock: asyncio.Lock, response: httpx.Response
) -> AsyncIterator[bytes]:
    """Event by event as they arrive, recall calls hidden and answered, rounds joined."""
    splice, rounds, recorded = Splice(), 0, False
    current: httpx.Response = response
    recording: asyncio.Task[None] | None = None
    try:
        while True:
            reader, collector = EventReader(), Collector(call.wire.adapter)
            async for chunk in current.aiter_raw():
                for raw, data in reader.blocks(chunk):
                    if data is not None:
                        collector.feed(data)
                    out = splice.take(raw, data)
                    if out:
                        yield out
            await current.aclose()
            reply, usage = collector.result()
            outcome = await _round(exchange, call, reply, usage, rounds)
            recorded = not outcome.again
            if not outcome.again:
                yield splice.close()
                recording = exchange.finish(call, lock, Reply(recorded=True), current)
                await asyncio.shield(recording)
                return
            payload = await exchange.run(exchange.again, call)
            current = await exchange.client.send(
                exchange.upstream_request(call, request, payload), stream=True
            )
            if current.status_code >= 400:
                text = (await current.aread()).decode("utf-8", "replace")
                yield event_bytes({"type": "error", "error": _upstream_error(text)})
                return
            splice.next_round()
            rounds += 1
    finally:
        if recording is None:  # the last round is in the log already if it ended
            exchange.finish(call, lock, Reply(recorded=True) if recorded else None, current)


async def _round(
    exchange: Exchange, call: Call, reply: list[dict[str, Any]], usage: Any, rounds: int
) -> Round:
    """Record one round and settle its spend (bookkeeping thread)."""
    session = call.session
    if session is None:
        return Round(again=False, hid=False)

    def settle() -> Round:
        outcome = settle_round(session, reply, usage, rounds, call.wire.adapter.format)
        exchange.settle_spend(call, True, usage)
        return outcome

    return await exchange.run(settle)


async def _whole(
    exchange: Exchange,
    call: Call,
    request: Request,
    lock: asyncio.Lock,
    *,
    response: httpx.Response,
    headers: dict[str, str],
) -> Response:
    """A JSON response: returned as it is, after any hidden recall rounds."""
    data = await response.aread()
    await response.aclose()
    try:
        final: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        exchange.finish(call, lock, None)
        return Response(data, status_code=response.status_code, headers=headers)
    if not call.recall or call.session is None:
        await asyncio.shield(exchange.finish(call, lock, Reply(final=final)))
        return Response(data, status_code=response.status_code, headers=headers)
    adapter, rounds = call.wire.adapter, 0
    recording: asyncio.Task[None] | None = None
    try:
        while True:
            outcome = await _round(
                exchange, call, adapter.reply(final), adapter.usage(final), rounds
            )
            if not outcome.again:
                break
            payload = await exchange.run(exchange.again, call)
            again = await exchange.client.send(exchange.upstream_request(call, request, payload))
            if again.status_code >= 400:
                return Response(again.content, status_code=again.status_code, headers=headers)
            final, rounds = again.json(), rounds + 1
        recording = exchange.finish(call, lock, Reply(recorded=True))
        await asyncio.shield(recording)
    finally:
        if recording is None:
            exchange.finish(call, lock, Reply(recorded=True))
    if outcome.hid:
        final = without_recall(final, adapter.format)
    return Response(orjson.dumps(final), status_code=200, headers=headers)


def _upstream_error(text: str) -> dict[str, Any]:
    """The error object of an upstream error body (for an SSE ``error`` event)."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return dict(body["error"])
    return {"type": "api_error", "message": text[:2000]}
