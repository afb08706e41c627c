"""What a proxy is told at start: where it listens, its mode, store, upstreams and keys.

Plain frozen data passed into :func:`~ctxbudget.proxy.server.build_app`; nothing here is
module state. :func:`load_keys` reads the proxy keys a non-loopback listener requires.
"""

from __future__ import annotations

import hashlib
import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ctxbudget.budget.policy import PRESETS
from ctxbudget.errors import ConfigError

__all__ = [
    "ANTHROPIC_API",
    "KEY_HEADER",
    "OPENAI_API",
    "Mode",
    "ProxyConfig",
    "ProxyKey",
    "is_loopback",
    "load_keys",
]

Mode = Literal["observe", "manage"]
ANTHROPIC_API = "https://api.anthropic.com"
OPENAI_API = "https://api.openai.com"
KEY_HEADER = "x-ctxbudget-key"
"""The header a client presents its proxy key in (never forwarded upstream)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyKey:
    """A client's key to the proxy and the spend scopes its calls are charged to."""

    name: str
    """Who holds it (shown in errors and session ids; never the secret)."""
    sha256: str
    """Hex SHA-256 of the secret the client presents in ``x-ctxbudget-key``."""
    team: str | None = None
    user: str | None = None
    agent: str | None = None

    def matches(self, secret: str) -> bool:
        """Whether ``secret`` is this key's (compared as hashes)."""
        return hashlib.sha256(secret.encode()).hexdigest() == self.sha256


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyConfig:
    """How one proxy process behaves."""

    host: str = "127.0.0.1"
    """Address to listen on; anything but loopback requires ``keys``."""
    port: int = 8787
    mode: Mode = "observe"
    """``observe``: forward the client's bytes and record; ``manage``: send what the
    manager prepares."""
    store: str | None = None
    """Store URL (None: ``$CTXBUDGET_STORE``, else the default SQLite file)."""
    anthropic_upstream: str = ANTHROPIC_API
    openai_upstream: str = OPENAI_API
    context_window: int | None = None
    """Window (tokens) of managed sessions; None: the model's."""
    policy: str | None = None
    """Manage mode's preset (``digest``, ``agent``...); None: the default."""
    keys: tuple[ProxyKey, ...] = ()
    """Keys clients must present; required when ``host`` is not loopback."""
    manage_oauth: bool = False
    """Manage traffic authenticated with a subscription (OAuth) token too; by default it
    is only observed."""
    max_body_bytes: int = 32 * 1024 * 1024
    """Largest request body accepted (bytes)."""
    max_streams_per_key: int = 32
    """Concurrent requests in flight per key (or per proxy without keys)."""
    max_sessions: int = 256
    """Idle client threads each worker keeps in memory per mode (the least recently used
    beyond it are resumed from the store when they call again)."""
    upstream_timeout: float = 600.0
    """Seconds to wait for the upstream (connect, and between streamed chunks)."""

    def __post_init__(self) -> None:
        if self.mode not in ("observe", "manage"):
            raise ConfigError(f"mode must be 'observe' or 'manage', got {self.mode!r}")
        if not (0 < self.port < 65536):
            raise ConfigError(f"port must be 1-65535, got {self.port}")
        if not is_loopback(self.host) and not self.keys:
            raise ConfigError(
                f"listening on {self.host!r} (not loopback) would make the proxy an open relay "
                "for the credentials it forwards; give proxy keys (--keys FILE) or listen on "
                "127.0.0.1"
            )
        if self.policy is not None and self.policy not in PRESETS:
            known = ", ".join(sorted(PRESETS))
            raise ConfigError(f"unknown policy {self.policy!r}; the presets are {known}")
        if self.context_window is not None and self.context_window < 1024:
            raise ConfigError(f"context_window must be at least 1024, got {self.context_window}")
        for name, url in (("anthropic", self.anthropic_upstream), ("openai", self.openai_upstream)):
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"--{name}-upstream must be an http(s) URL, got {url!r}")
        if self.max_body_bytes < 1 or self.max_streams_per_key < 1 or self.max_sessions < 1:
            raise ConfigError(
                "max_body_bytes, max_streams_per_key and max_sessions must be positive"
            )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_keys(path: str | Path) -> tuple[ProxyKey, ...]:
    """Proxy keys from a TOML file of ``[[key]]`` tables.

    Each has ``name`` and either ``sha256`` (hex digest of the secret, preferred) or
    ``secret``, and optional ``team`` / ``user`` / ``agent`` spend scopes::

        [[key]]
        name = "alice"
        sha256 = "5e88...42"   # printf %s "$SECRET" | sha256sum
        team = "search"
        user = "alice"
    """
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the proxy keys file {file}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from exc
    raw = data.get("key")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{file} holds no [[key]] tables; see `ctxbudget proxy --help`")
    keys = [_key(entry, file, n) for n, entry in enumerate(raw)]
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise ConfigError(f"{file}: every key needs its own name, got {names}")
    return tuple(keys)


def _key(entry: Any, file: Path, n: int) -> ProxyKey:
    where = f"{file}: key {n + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(entry) - {"name", "sha256", "secret", "team", "user", "agent"}
    if unknown:
        raise ConfigError(f"{where} has unknown fields {sorted(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{where} needs a name of letters, digits, - and _")
    digest = entry.get("sha256")
    secret = entry.get("secret")
    if isinstance(secret, str) and secret and digest is None:
        digest = hashlib.sha256(secret.encode()).hexdigest()
    if not isinstance(digest, str) or len(digest) != 64:
        raise ConfigError(f"{where} ({name}) needs sha256 = the hex SHA-256 of its secret")
    scopes = {s: entry.get(s) for s in ("team", "user", "agent")}
    for scope, value in scopes.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{where} ({name}): {scope} must be a non-empty string")
    return ProxyKey(name=name, sha256=digest.lower(), **scopes)
