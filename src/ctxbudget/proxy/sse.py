"""Server-sent events split out of a byte stream as it arrives (pure, incremental).

The proxy relays every chunk the moment it comes; this only *reads along* to rebuild the
reply and its usage, so a malformed event never stops the relay.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["EventReader"]


class EventReader:
    """Feed chunks; get the JSON ``data`` of each complete event."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """The events completed by ``chunk`` (``data: [DONE]`` and non-JSON data skipped)."""
        self._buffer += chunk
        if b"\n\n" not in self._buffer and b"\r\n\r\n" not in self._buffer:
            return []
        text = self._buffer.replace(b"\r\n", b"\n")
        *complete, self._buffer = text.split(b"\n\n")
        events: list[dict[str, Any]] = []
        for block in complete:
            data = b"\n".join(
                line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")
            )
            if not data or data == b"[DONE]":
                continue
            try:
                parsed = json.loads(data)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                events.append(parsed)
        return events
