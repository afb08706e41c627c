"""The proxy's ASGI app: routes wired to the wire protocols, nothing else.

``POST /v1/messages`` (Anthropic), ``/v1/chat/completions`` and ``/v1/responses`` (OpenAI)
are model calls; ``GET /healthz`` answers once the store is open; ``GET /metrics`` is the
Prometheus exposition; every other path (``/v1/models``, ``count_tokens``, ``HEAD``
probes) passes through to the upstream unchanged. Configuration and the store are passed
in (:func:`build_app`); there is no module state.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ctxbudget.errors import ConfigError
from ctxbudget.manager import ContextManager
from ctxbudget.proxy.anthropic import MESSAGES
from ctxbudget.proxy.config import ProxyConfig, ProxyKey
from ctxbudget.proxy.exchange import Exchange
from ctxbudget.proxy.gate import Refused
from ctxbudget.proxy.metrics import ProxyMetrics
from ctxbudget.proxy.openai import CHAT, RESPONSES
from ctxbudget.proxy.replies import error_response
from ctxbudget.proxy.sessions import SessionPool, Settings
from ctxbudget.proxy.wire import Wire
from ctxbudget.spend import ledger_for
from ctxbudget.store import open_store
from ctxbudget.store.base import SessionStore

__all__ = ["CONFIG_ENV", "app_from_env", "build_app", "config_from_json", "config_to_json"]

CONFIG_ENV = "CTXBUDGET_PROXY_CONFIG"
"""How ``ctxbudget proxy --workers N`` hands its configuration to each worker process."""

_ROUTES: dict[str, Wire] = {
    "/v1/messages": MESSAGES,
    "/v1/chat/completions": CHAT,
    "/v1/responses": RESPONSES,
}


def build_app(config: ProxyConfig, *, store: SessionStore | None = None) -> Starlette:
    """The proxy as an ASGI app (serve it with uvicorn). ``store``: an open store (default:
    ``config.store`` opened when the app starts, closed when it stops)."""
    metrics = ProxyMetrics()
    state: dict[str, Any] = {}

    def opener(stored_id: str, st: SessionStore, model: Any, **settings: Any) -> ContextManager:
        manager = ContextManager.open(stored_id, st, model, **settings)
        manager.metrics.subscribe(metrics.sessions)
        manager.alerts.subscribe(metrics.sessions.alert)
        return manager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = store is None
        st = open_store(config.store) if store is None else store
        exchange = _exchange(config, st, opener, metrics)
        state["exchange"] = exchange
        try:
            yield
        finally:
            state.clear()
            await exchange.drain()
            await exchange.client.aclose()
            exchange.close()
            if own:
                st.close()

    def exchange_of() -> Exchange:
        exchange = state.get("exchange")
        if exchange is None:
            raise RuntimeError("the proxy is not started (serve the app with uvicorn)")
        return exchange  # type: ignore[no-any-return]

    def model_call(wire: Wire) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            exchange = exchange_of()
            try:
                key = exchange.gate.admit(request.headers)
                raw = await _read(request, config.max_body_bytes)
                return await exchange.handle(wire, request, raw, key)
            except Refused as refused:
                return error_response(wire, refused)

        return endpoint

    async def passthrough(request: Request) -> Response:
        exchange = exchange_of()
        wire = MESSAGES if _is_anthropic(request) else CHAT
        try:
            exchange.gate.admit(request.headers)
            raw = await _read(request, config.max_body_bytes)
        except Refused as refused:
            return error_response(wire, refused)
        return await exchange.forward(wire, request, raw, "passthrough")

    async def healthz(request: Request) -> Response:
        if "exchange" not in state:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok", "mode": config.mode})

    async def prometheus(request: Request) -> Response:
        try:
            exchange_of().gate.admit(request.headers)
        except Refused as refused:
            return PlainTextResponse(refused.message, status_code=401)
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        *(Route(path, model_call(wire), methods=["POST"]) for path, wire in _ROUTES.items()),
        Route("/{path:path}", passthrough, methods=methods),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _exchange(
    config: ProxyConfig, store: SessionStore, opener: Any, metrics: ProxyMetrics
) -> Exchange:
    """The model-call handler over an open store, with its upstream client."""
    timeout = httpx.Timeout(config.upstream_timeout, connect=30.0)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    client = httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)
    pools = {
        managed: SessionPool(
            store,
            opener,
            Settings(managed=managed, context_window=config.context_window, policy=config.policy),
            keep=config.max_sessions,
        )
        for managed in (False, True)
    }
    return Exchange(config, pools, ledger_for(store), client, metrics)


def app_from_env() -> Starlette:
    """The app for each ``--workers`` process, built from ``$CTXBUDGET_PROXY_CONFIG``."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise ConfigError(f"{CONFIG_ENV} is not set; start workers with `ctxbudget proxy`")
    return build_app(config_from_json(raw))


def config_to_json(config: ProxyConfig) -> str:
    """The configuration as JSON (for worker processes)."""
    return json.dumps(asdict(config))


def config_from_json(raw: str) -> ProxyConfig:
    """The configuration :func:`config_to_json` wrote."""
    data = json.loads(raw)
    data["keys"] = tuple(ProxyKey(**k) for k in data.get("keys") or ())
    return ProxyConfig(**data)


def _is_anthropic(request: Request) -> bool:
    headers = request.headers
    return (
        "anthropic-version" in headers
        or "x-api-key" in headers
        or (request.url.path.startswith("/v1/messages"))
    )


async def _read(request: Request, limit: int) -> bytes:
    """The body, refused past ``limit`` bytes (declared or actual)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Refused:
    return Refused(
        "too_large",
        f"the request body is larger than this ctxbudget proxy accepts ({limit:,} bytes, "
        "--max-body-bytes)",
    )
