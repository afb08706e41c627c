"""Which store a URL names: ``sqlite:///path``, ``postgresql://...``, ``redis://...``.

With no URL, ``CTXBUDGET_STORE`` decides, else a SQLite file in the project
(``.ctxbudget/ctxbudget.db`` under the current directory). Options ctxbudget reads itself
are taken out of the query string before the rest goes to the driver:
``sqlite:///x.db?synchronous=full``, ``postgresql://.../db?schema=agents``,
``redis://host:6379/0?prefix=team-a:``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ctxbudget.errors import ConfigError
from ctxbudget.store.base import SessionStore

__all__ = ["DEFAULT_STORE", "STORE_ENV", "open_store", "redact", "store_url"]

STORE_ENV = "CTXBUDGET_STORE"
"""Environment variable naming the store when no URL is given."""
DEFAULT_STORE = "sqlite:///.ctxbudget/ctxbudget.db"
"""The default: a SQLite file under the current directory."""

_SCHEMES = "sqlite:///path, postgresql://user:pass@host:port/db or redis://host:port/db"


def store_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The store URL to use: ``url``, else ``$CTXBUDGET_STORE``, else the project default."""
    environ = os.environ if env is None else env
    return url or environ.get(STORE_ENV) or DEFAULT_STORE


def open_store(url: str | None = None) -> SessionStore:
    """Connect to (and migrate) the store a URL names."""
    chosen = store_url(url)
    parts = urlsplit(chosen)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        from ctxbudget.store.sqlite import SqliteStore

        path = chosen[len("sqlite://") :].split("?", 1)[0]
        if not path.startswith("/") or path == "/":
            raise ConfigError(
                f"store URL {chosen!r}: write sqlite:///relative.db or sqlite:////abs.db"
            )
        synchronous = options.pop("synchronous", "normal")
        _no_more(chosen, options)
        return SqliteStore(path[1:], synchronous=synchronous)
    if scheme in ("postgresql", "postgres"):
        from ctxbudget.store.postgres import PostgresStore

        schema = options.pop("schema", "public")
        conninfo = urlunsplit(parts._replace(query=urlencode(options)))
        return PostgresStore(conninfo, schema=schema, display_url=redact(chosen))
    if scheme in ("redis", "rediss", "unix"):
        from ctxbudget.store.redis import RedisStore

        prefix = options.pop("prefix", "ctxbudget:")
        plain = urlunsplit(parts._replace(query=urlencode(options)))
        return RedisStore(plain, prefix=prefix, display_url=redact(chosen))
    raise ConfigError(
        f"store URL {redact(chosen)!r} has no known scheme; use {_SCHEMES} "
        f"(--store on the command line, or ${STORE_ENV})"
    )


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and listings)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _no_more(url: str, options: Mapping[str, str]) -> None:
    if options:
        raise ConfigError(
            f"store URL {url!r}: unknown option(s) {', '.join(sorted(options))}; "
            "sqlite URLs take only ?synchronous=off|normal|full|extra"
        )
