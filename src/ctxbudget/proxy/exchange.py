"""One proxied model call, from the client's bytes to the recorded reply.

Read the request, find its session, sync the client's list into the log, then either
forward the client's own bytes (observe) or the manager's prepared request (manage);
reserve the call's projected spend first (a refusal is a provider-shaped error), relay the
response chunk by chunk as it arrives while reading the events along, and record the reply
and the billed usage once the stream has ended. The bookkeeping (store I/O, the manager)
runs in one worker thread, never on the event loop; a lock per client thread keeps its
requests in order from sync to record. How responses come back is :mod:`.replies`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ctxbudget.errors import BudgetExceeded, ConfigError, ContextOverflow, CtxBudgetError
from ctxbudget.integrations.apis import shrunk_limit
from ctxbudget.integrations.spending import CallSpend
from ctxbudget.proxy.call import Call, Parsed, Reply
from ctxbudget.proxy.config import ProxyConfig, ProxyKey
from ctxbudget.proxy.gate import Gate, Refused
from ctxbudget.proxy.identity import identify, thread_of
from ctxbudget.proxy.metrics import ProxyMetrics
from ctxbudget.proxy.recall import offered_tools, offers_recall
from ctxbudget.proxy.replies import error_response, send, unreachable
from ctxbudget.proxy.sessions import ProxySession, SessionPool
from ctxbudget.proxy.upstream import request_headers, response_headers
from ctxbudget.proxy.wire import Wire
from ctxbudget.spend.guard import SpendGuard
from ctxbudget.spend.ledger import SpendLedger
from ctxbudget.spend.model import Limit, Tags
from ctxbudget.store.base import LogConflict

__all__ = ["LIMITS_TTL", "Exchange"]

T = TypeVar("T")

LIMITS_TTL = 1.0
"""Seconds a worker keeps the spend limits it read before reading them again."""


def _tags(key: ProxyKey | None, session: str | None = None) -> Tags:
    """The spend scopes a call is charged to: its session and its proxy key's."""
    return Tags(
        session=session,
        team=key.team if key else None,
        user=key.user if key else None,
        agent=key.agent if key else None,
    )


async def _done(pending: asyncio.Future[Any] | None) -> None:
    """Wait for the bookkeeping that ran beside an observed call (its failure only means
    the call is not recorded)."""
    if pending is not None:
        with contextlib.suppress(Exception):
            await pending


class Exchange:
    """The proxy's model-call handler: one per app, holding its pools, client and thread."""

    def __init__(
        self,
        config: ProxyConfig,
        pools: Mapping[bool, SessionPool],
        ledger: SpendLedger,
        client: httpx.AsyncClient,
        metrics: ProxyMetrics,
    ) -> None:
        self.config = config
        self.pools = pools
        """The observe (False) and manage (True) session pools."""
        self.ledger = ledger
        self.client = client
        self.metrics = metrics
        self.gate = Gate(config.keys, config.max_streams_per_key)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="ctxbudget-proxy")
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._limits: list[Limit] = []
        self._limits_read = -math.inf

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the bookkeeping thread."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def drain(self) -> None:
        """Wait for the replies still being recorded (before the proxy stops)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        """Stop the bookkeeping thread (after the work queued on it)."""
        self._worker.shutdown(wait=True)

    def upstream_url(self, wire_upstream: str, request: Request) -> str:
        """The upstream URL for the client's path and query."""
        base = (
            self.config.anthropic_upstream
            if wire_upstream == "anthropic"
            else self.config.openai_upstream
        )
        url = base.rstrip("/") + request.url.path
        return f"{url}?{request.url.query}" if request.url.query else url

    def upstream_request(self, call: Call, request: Request, payload: bytes) -> httpx.Request:
        """The POST of ``payload`` to the call's upstream, with the client's headers."""
        return self._to_upstream("POST", call.wire.upstream, request, payload)

    def _to_upstream(
        self, method: str, upstream: str, request: Request, content: bytes | None
    ) -> httpx.Request:
        """The client's request as sent to ``upstream``: its path and query, its headers
        (hop-by-hop and ctxbudget's own left out), ``content`` as the body."""
        return self.client.build_request(
            method,
            self.upstream_url(upstream, request),
            headers=request_headers(request.headers.items()),
            content=content,
        )

    async def handle(
        self, wire: Wire, request: Request, raw: bytes, key: ProxyKey | None
    ) -> Response:
        """Answer one model call (the body already read and the key admitted)."""
        headers = request.headers  # case-insensitive
        try:
            body = orjson.loads(raw)
            messages, system, tools, options = wire.adapter.split(body)
        except (orjson.JSONDecodeError, CtxBudgetError, TypeError, AttributeError):
            # nothing ctxbudget can read: the upstream answers it, unrecorded
            return await self.forward(wire, request, raw, "unrecorded")
        first = messages[0] if messages else None
        identity = identify(headers, body, system, first)
        space = f"k.{key.name}/" if key is not None else ""
        thread = f"{space}{identity.session}/{thread_of(system, first)}"
        managed = self.config.mode == "manage" and (
            self.config.manage_oauth or not wire.subscription(headers)
        )
        meta = {
            "proxy": {
                "client_session": identity.session,
                "source": identity.source,
                "parent": f"{space}{identity.parent}" if identity.parent else None,
                "key": key.name if key is not None else None,
                "mode": "manage" if managed else "observe",
                "api": wire.name,
            }
        }
        parsed = Parsed(messages, system, tools, options, meta)
        call = Call(wire, thread, managed, self.gate.take(key), key, raw, parsed)
        call.recall = offers_recall(call)
        lock = self._locks.setdefault(thread, asyncio.Lock())
        try:
            await lock.acquire()
        except BaseException:  # the client left while an earlier call of its thread ran
            self.gate.give(call.slot)
            raise
        try:
            if not managed and not await self._limited(call):
                # observe, no spend limit to check first: the client's bytes go now, and the
                # bookkeeping runs beside the upstream call (the reply is recorded after it)
                call.pending = asyncio.ensure_future(self.run(self._before, call))
                payload = raw
            else:
                payload = await self.run(self._before, call)
            return await send(self, call, request, payload, lock)
        except Refused as refused:
            await self.release(call, lock)
            return error_response(wire, refused)
        except BaseException:  # whatever stops the call frees its slot and its thread
            await self.release(call, lock)
            raise

    async def _limited(self, call: Call) -> bool:
        """Whether a spend limit may apply to the call (the limits are read again at most
        once a second: a limit set on any worker binds every worker within a second)."""
        now = time.monotonic()
        if now - self._limits_read > LIMITS_TTL:
            self._limits = await self.run(self.ledger.limits)
            self._limits_read = now
        scopes = _tags(call.key).scopes()  # the session's own id is not known yet: any
        return any(  # session limit counts
            limit.scope == "session" or any(limit.matches(*scope) for scope in scopes)
            for limit in self._limits
        )

    def _before(self, call: Call) -> bytes:
        """Find the session, sync, prepare and reserve (bookkeeping thread); the bytes to
        send upstream."""
        try:
            session, prepared, failure = self._prepared(call)
        except CtxBudgetError as exc:
            if call.managed:
                raise Refused("invalid_request", f"ctxbudget proxy: {exc}") from exc
            return call.raw  # observe: the client's call goes through, unrecorded
        call.session = session
        if failure is not None:  # too long even compacted, max_tokens past the window
            if call.managed:
                raise Refused("invalid_request", f"ctxbudget proxy: {failure}") from failure
            return call.raw  # observe: the upstream decides
        call.spend = self._reserve(call, session)
        if not call.managed:
            return call.raw
        return orjson.dumps(prepared)

    def again(self, call: Call, error: str | None = None) -> bytes:
        """The managed request prepared once more (bookkeeping thread): after a hidden
        recall round, or under the limit an upstream "too long" ``error`` implies."""
        session = call.session
        if session is None:
            raise Refused("invalid_request", f"ctxbudget proxy: the upstream refused: {error}")
        if call.spend is not None:
            call.spend.release()
            call.spend = None
        parsed = call.parsed
        limit = shrunk_limit(session.manager, error, parsed.options) if error else None
        try:
            prepared = session.prepare(call.wire.adapter.provider, parsed.options, limit)
        except CtxBudgetError as exc:
            raise Refused("invalid_request", f"ctxbudget proxy: {exc}") from exc
        call.spend = self._reserve(call, session)
        return orjson.dumps(prepared)

    def _prepared(
        self, call: Call
    ) -> tuple[ProxySession, dict[str, Any] | None, CtxBudgetError | None]:
        """The thread's session with the client's list synced in and the request prepared,
        written in one transaction (a new segment when the list was rewritten; resumed
        again when another worker wrote in between): (session, body, why there is none)."""
        parsed, provider = call.parsed, call.wire.adapter.provider
        fmt = call.wire.adapter.format
        pool = self.pools[call.managed]
        for attempt in range(2):
            session = pool.session(call.thread, parsed.model, provider, parsed.meta)
            try:
                step = session.plan(fmt, parsed.messages, parsed.system)
                if step.rewrite:
                    session = pool.next_segment(call.thread, parsed.model, provider, parsed.meta)
                    step = session.plan(fmt, parsed.messages, parsed.system)
                tools = offered_tools(call, session) if call.recall else parsed.tools
                prepared, failure = None, None
                with session.manager.log.batch():
                    session.sync(step, fmt, parsed.messages, parsed.system, tools)
                    try:
                        prepared = session.prepare(provider, parsed.options)
                    except (ContextOverflow, ConfigError) as exc:
                        failure = exc
                return session, prepared, failure
            except LogConflict:
                pool.forget(session)  # another worker appended first: resume and retry
                if attempt:
                    raise
            except CtxBudgetError:
                pool.forget(session)  # its log refused the batch: reload it next time
                raise
        raise AssertionError("unreachable")

    def _reserve(self, call: Call, session: ProxySession) -> CallSpend | None:
        tags = _tags(call.key, session.stored_id)
        spend = CallSpend(SpendGuard(self.ledger, tags), session.manager)
        try:
            switched = spend.reserve(call.parsed.model, call.parsed.options)
        except BudgetExceeded as exc:
            raise Refused("budget", f"ctxbudget proxy: {exc}") from exc
        except ConfigError:
            return None  # no prices for this model: nothing to reserve against
        if switched is not None:  # a 'switch' limit: the proxy does not change the model
            raise Refused(
                "budget",
                f"ctxbudget proxy: a spend limit asks to switch to {switched}; the proxy does not "
                "change the client's model, so the call is refused",
            )
        return spend

    def finish(
        self, call: Call, lock: asyncio.Lock, reply: Reply | None, closing: Any = None
    ) -> asyncio.Task[None]:
        """Record the reply and settle the spend in the background, then free the thread
        (``reply`` None: the call failed or the client left; nothing to record)."""
        task = asyncio.get_running_loop().create_task(self._record(call, lock, reply, closing))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _record(
        self, call: Call, lock: asyncio.Lock, reply: Reply | None, closing: Any
    ) -> None:
        try:
            if closing is not None:
                await closing.aclose()
            await _done(call.pending)
            await self.run(self._settle, call, reply)
        finally:
            await self.release(call, lock)

    async def release(self, call: Call, lock: asyncio.Lock) -> None:
        """Give back what the call held: its reservation (unless settled), slot and lock."""
        if call.released:
            return
        call.released = True
        await _done(call.pending)
        if call.spend is not None:
            await self.run(call.spend.release)
        self.gate.give(call.slot)
        lock.release()
        if not lock.locked() and not getattr(lock, "_waiters", None):
            self._locks.pop(call.thread, None)

    def _settle(self, call: Call, reply: Reply | None) -> None:
        """Record the reply and usage, settle or release the reservation (bookkeeping thread)."""
        session, adapter = call.session, call.wire.adapter
        if session is None or (reply is not None and reply.recorded):
            return
        messages: list[dict[str, Any]] = []
        usage = None
        if reply is not None:
            try:
                if reply.collector is not None:
                    messages, usage = reply.collector.result()
                else:
                    messages, usage = adapter.reply(reply.final), adapter.usage(reply.final)
            except (KeyError, TypeError, ValueError, CtxBudgetError):
                messages, usage = [], None  # a reply ctxbudget cannot read: the client has it
        try:
            session.record(adapter.format, messages, usage)
        except CtxBudgetError:  # the reply's batch was refused: the session reloads next time
            self.pools[call.managed].forget(session)
        self.settle_spend(call, reply is not None, usage)

    @staticmethod
    def settle_spend(call: Call, answered: bool, usage: Any) -> None:
        """Settle the call's reservation with the bill (or release it: no answer)."""
        if call.spend is not None:
            if answered:
                call.spend.settle(usage)
            else:
                call.spend.release()
            call.spend = None

    async def forward(self, wire: Wire, request: Request, raw: bytes, label: str) -> Response:
        """Pass a request through to ``wire``'s upstream unchanged (streamed back)."""
        upstream = self._to_upstream(request.method, wire.upstream, request, raw or None)
        try:
            response = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            return error_response(wire, unreachable(exc))
        self.metrics.request(label, "pass", response.status_code)

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            finally:
                await response.aclose()

        return StreamingResponse(
            body(), status_code=response.status_code, headers=response_headers(response.headers)
        )
