"""Server-sent events split out of a byte stream as it arrives (pure, incremental).

The proxy relays every chunk the moment it comes; this only *reads along* to rebuild the
reply and its usage, so a malformed event never stops the relay. Where the proxy must
change a stream (hidden recall rounds) it relays whole events instead: :meth:`blocks`.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["EventReader", "event_bytes"]


class EventReader:
    """Feed chunks; get each complete event (its bytes and its JSON ``data``)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """The JSON data of the events completed by ``chunk`` (``[DONE]`` and non-JSON data
        skipped)."""
        return [data for _, data in self.blocks(chunk) if data is not None]

    def blocks(self, chunk: bytes) -> list[tuple[bytes, dict[str, Any] | None]]:
        """The events completed by ``chunk``: (the event's bytes with its blank line, its
        JSON data or None)."""
        self._buffer += chunk
        if b"\n\n" not in self._buffer and b"\r\n\r\n" not in self._buffer:
            return []
        text = self._buffer.replace(b"\r\n", b"\n")
        *complete, self._buffer = text.split(b"\n\n")
        return [(block + b"\n\n", _data(block)) for block in complete if block.strip()]


def _data(block: bytes) -> dict[str, Any] | None:
    data = b"\n".join(
        line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")
    )
    if not data or data == b"[DONE]":
        return None
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def event_bytes(data: dict[str, Any]) -> bytes:
    """One event in the ``event: <type>`` + ``data: <json>`` form Anthropic streams use."""
    kind = str(data.get("type", "message"))
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
