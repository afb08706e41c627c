"""One Anthropic stream for the client out of several upstream rounds (pure).

In manage mode the proxy offers the manager's ``recall`` tool and answers its calls
itself. A streamed reply is relayed event by event as it arrives, except the blocks of
recall calls, which the client never sees, and the reply's closing events
(``message_delta``, ``message_stop``), which wait until the round is known to be the last:
when the model called only ``recall``, the proxy answers, calls the model again and goes
on streaming the new round's blocks into the same message (indexes continued, its
``message_start`` dropped). The client receives one message whatever happened between.
"""

from __future__ import annotations

from typing import Any

from ctxbudget.engine.recall import RECALL_TOOL
from ctxbudget.proxy.sse import event_bytes

__all__ = ["Splice"]


class Splice:
    """Rewrites the events of successive upstream rounds into one client stream."""

    def __init__(self) -> None:
        self.round = 0
        self._next = 0
        """The client's index of the next block relayed."""
        self._map: dict[int, int | None] = {}
        """Upstream block index → client index (None: a hidden recall call) this round."""
        self._closing: list[dict[str, Any]] = []
        self.visible_calls = 0
        """Tool calls of this round the client sees."""
        self.hidden_calls = 0
        """Recall calls of this round (hidden)."""

    def take(self, raw: bytes, data: dict[str, Any] | None) -> bytes:
        """What to relay now for one upstream event (b"" to hold or drop it)."""
        if data is None:
            return raw
        kind = data.get("type")
        if kind == "message_start":
            return raw if self.round == 0 else b""
        if kind == "content_block_start":
            return self._start(raw, data)
        if kind in ("content_block_delta", "content_block_stop"):
            index = self._map.get(int(data.get("index", -1)), -2)
            if index is None:
                return b""
            return (
                raw if index in (-2, data.get("index")) else event_bytes({**data, "index": index})
            )
        if kind in ("message_delta", "message_stop"):
            self._closing.append(data)
            return b""
        return raw  # ping, error, anything new

    def next_round(self) -> None:
        """The round ended in recall calls only: its closing events are dropped."""
        self.round += 1
        self._map.clear()
        self._closing.clear()
        self.visible_calls = self.hidden_calls = 0

    def close(self) -> bytes:
        """The held closing events of the last round (a stop for tool use whose calls were
        all hidden becomes an end of turn)."""
        out = b""
        for data in self._closing:
            event = data
            if data.get("type") == "message_delta" and not self.visible_calls:
                delta = dict(data.get("delta") or {})
                if delta.get("stop_reason") == "tool_use":
                    event = {**data, "delta": {**delta, "stop_reason": "end_turn"}}
            out += event_bytes(event)
        self._closing.clear()
        return out

    def _start(self, raw: bytes, data: dict[str, Any]) -> bytes:
        index = int(data.get("index", -1))
        block = data.get("content_block") or {}
        if block.get("type") == "tool_use" and block.get("name") == RECALL_TOOL:
            self._map[index] = None
            self.hidden_calls += 1
            return b""
        if block.get("type") == "tool_use":
            self.visible_calls += 1
        self._map[index] = self._next
        self._next += 1
        if self._map[index] == index:
            return raw
        return event_bytes({**data, "index": self._map[index]})
