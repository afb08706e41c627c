"""Who may use the proxy, how much at once, and the errors it answers itself.

Beyond loopback every request must carry a proxy key (``x-ctxbudget-key``); keys map to
spend scopes and namespace the sessions, so one key never reaches another's sessions or
spend. Each key (or the whole proxy without keys) has a cap on requests in flight.
"""

from __future__ import annotations

from collections.abc import Mapping

from ctxbudget.proxy.config import KEY_HEADER, ProxyKey
from ctxbudget.proxy.wire import ErrorKind

__all__ = ["Gate", "Refused"]


class Refused(Exception):
    """A request the proxy answers itself, with a provider-shaped error."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message


class Gate:
    """Proxy keys and the per-key cap on requests in flight."""

    def __init__(self, keys: tuple[ProxyKey, ...], max_streams: int) -> None:
        self.keys = keys
        self.max_streams = max_streams
        self._in_flight: dict[str, int] = {}

    def admit(self, headers: Mapping[str, str]) -> ProxyKey | None:
        """The caller's key (None when the proxy has none); Refused without a valid one."""
        if not self.keys:
            return None
        secret = headers.get(KEY_HEADER, "")
        if not secret:
            raise Refused(
                "unauthorized",
                f"this ctxbudget proxy requires a proxy key: send it in the {KEY_HEADER} header "
                "(ANTHROPIC_CUSTOM_HEADERS for Claude Code, http_headers for Codex, "
                "default_headers for the SDKs)",
            )
        for key in self.keys:
            if key.matches(secret):
                return key
        raise Refused("unauthorized", f"the {KEY_HEADER} presented is not a key of this proxy")

    def take(self, key: ProxyKey | None) -> str:
        """Take one of the key's in-flight slots (give it back with :meth:`give`); Refused
        when none is free."""
        name = key.name if key is not None else ""
        if self._in_flight.get(name, 0) >= self.max_streams:
            who = f"key {name!r}" if name else "this proxy"
            raise Refused(
                "rate_limited",
                f"{who} already has {self.max_streams} requests in flight (the proxy's "
                "--max-streams); retry when one finishes",
            )
        self._in_flight[name] = self._in_flight.get(name, 0) + 1
        return name

    def give(self, name: str) -> None:
        """Give back a slot :meth:`take` handed out."""
        self._in_flight[name] -= 1
