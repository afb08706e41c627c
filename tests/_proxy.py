"""A real ``ctxbudget proxy`` (uvicorn + the app) on a free local port, for tests.

with running_proxy(ProxyConfig(anthropic_upstream=server.base_url, ...), store) as url:
    client = anthropic.Anthropic(base_url=url, api_key="test")
"""

from __future__ import annotations

from ctxbudget.proxy.local import free_port
from ctxbudget.proxy.local import serving as running_proxy

__all__ = ["free_port", "running_proxy"]
