"""Forwarding to the provider: which headers go up and come back, and the relay itself.

Credentials in the client's headers go to the upstream and nowhere else (never logged or
stored); the proxy's own ``x-ctxbudget-*`` headers never leave it. Bodies are asked for
uncompressed, so a stream can be read along while every chunk is relayed as it arrives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

import httpx

__all__ = ["relay", "request_headers", "response_headers"]

_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)


def request_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The client's headers as sent upstream (order and repeats kept)."""
    out = [
        (name, value)
        for name, value in headers
        if name.lower() not in _HOP and not name.lower().startswith("x-ctxbudget-")
    ]
    out.append(("accept-encoding", "identity"))
    return out


def response_headers(headers: httpx.Headers) -> dict[str, str]:
    """The upstream's headers as returned to the client (the body is re-framed)."""
    return {
        name: value
        for name, value in headers.items()
        if name.lower() not in _HOP and name.lower() != "content-encoding"
    }


async def relay(
    response: httpx.Response, read_along: Callable[[bytes], None]
) -> AsyncIterator[bytes]:
    """Every chunk of ``response`` as it arrives, each handed to ``read_along`` first (so a
    client that leaves as soon as it has the last event leaves it read; its errors never
    stop the relay)."""
    async for chunk in response.aiter_raw():
        if chunk:
            try:
                read_along(chunk)
            except Exception:  # reading along is best effort; the client's stream is not
                read_along = _ignore
            yield chunk


def _ignore(chunk: bytes) -> None:
    return None
