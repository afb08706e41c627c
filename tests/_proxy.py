"""A real ``ctxbudget proxy`` (uvicorn + the app) on a free local port, for tests and benches.

with running_proxy(ProxyConfig(anthropic_upstream=server.base_url, ...), store) as url:
    client = anthropic.Anthropic(base_url=url, api_key="test")
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx
import uvicorn

from ctxbudget.proxy import ProxyConfig, build_app
from ctxbudget.store.base import SessionStore

__all__ = ["free_port", "running_proxy"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_proxy(config: ProxyConfig, store: SessionStore | None = None) -> Iterator[str]:
    """Serve the proxy from a thread until the block ends; yields its base URL."""
    port = free_port() if config.port == 8787 else config.port
    config = replace(config, port=port)
    app = build_app(config, store=store)
    server = uvicorn.Server(
        uvicorn.Config(app, host=config.host, port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="ctxbudget-proxy-test", daemon=True)
    thread.start()
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the proxy did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
