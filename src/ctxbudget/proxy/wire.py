"""What the proxy needs to know about one wire protocol; each protocol module makes one.

The request and reply shapes come from the wrappers' adapters
(:mod:`ctxbudget.integrations.apis`); a wire adds the upstream it goes to, how the
provider shapes an error (a refused call must look like the provider's own, so the client
shows it), and whether the caller authenticates with a subscription token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ctxbudget.integrations.apis import ADAPTERS, Adapter

__all__ = ["ErrorKind", "Wire"]

ErrorKind = Literal[
    "invalid_request", "too_large", "rate_limited", "budget", "unauthorized", "unreachable"
]


@dataclass(frozen=True, slots=True)
class Wire:
    """One provider API as the proxy serves it."""

    name: str
    """``anthropic``, ``openai_chat`` or ``openai_responses``."""
    api: str
    """Key of the wrappers' adapter (``messages``, ``chat``, ``responses``)."""
    upstream: Literal["anthropic", "openai"]
    """Which configured upstream it is forwarded to."""
    error: Callable[[ErrorKind, str], tuple[int, dict[str, Any]]]
    """(status, body) of an error the proxy itself answers, in the provider's shape."""
    subscription: Callable[[Mapping[str, str]], bool]
    """Whether the request is authenticated with a subscription (OAuth) token."""

    @property
    def adapter(self) -> Adapter:
        """The wrappers' adapter of this API (request split, reply, usage, stream)."""
        return ADAPTERS[self.api]
