"""The HTTP proxy: ctxbudget for agents you cannot change (Claude Code, Codex, any SDK client).

Sits above ``integrations`` (it reuses the wrappers' API adapters and spend reservations);
only the CLI imports it. One module per wire protocol, the server only wires routes.

::

    app = build_app(ProxyConfig(mode="observe", store="sqlite:///proxy.db"))
    # or: ctxbudget proxy --mode manage --context-window 100000
"""

from ctxbudget.proxy.config import Mode, ProxyConfig, ProxyKey, load_keys
from ctxbudget.proxy.server import build_app

__all__ = ["Mode", "ProxyConfig", "ProxyKey", "build_app", "load_keys"]
