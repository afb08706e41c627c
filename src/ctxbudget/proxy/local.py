"""The proxy served from a thread of this process: for tests, benchmarks and notebooks.

::

    with serving(ProxyConfig(anthropic_upstream="http://127.0.0.1:9000"), store) as url:
        client = anthropic.Anthropic(base_url=url)
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

from ctxbudget.errors import ConfigError
from ctxbudget.proxy.config import ProxyConfig
from ctxbudget.proxy.server import build_app
from ctxbudget.store.base import SessionStore

__all__ = ["free_port", "serving"]

_READY_SECONDS = 20.0
"""How long the proxy may take to answer ``/healthz``."""


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(config: ProxyConfig, store: SessionStore | None = None) -> Iterator[str]:
    """Serve the proxy (uvicorn) from a daemon thread until the block ends; yields its
    base URL once ``/healthz`` answers. The default port 8787 is replaced by a free one."""
    port = free_port() if config.port == 8787 else config.port
    config = replace(config, port=port)
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(config, store=store),
            host=config.host,
            port=port,
            log_level="warning",
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, name="ctxbudget-proxy", daemon=True)
    thread.start()
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + _READY_SECONDS
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise ConfigError(
                f"the proxy did not answer {url}/healthz within {_READY_SECONDS:g} s: is the "
                "port free and the store reachable?"
            )
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
