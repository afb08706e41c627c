"""Request preparation: the view rendered per wire format, counted, cache-marked, predicted.

The renderers are pure; this keeps what one session's requests share: the prompt cache
key, the output reserve, and where the latest compaction ended (the Anthropic rolling
breakpoint goes no earlier, so content about to change is never written to the cache).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ctxbudget.billing.usage import Usage
from ctxbudget.cache.session import RequestCache
from ctxbudget.compaction.planner import CascadeOutcome
from ctxbudget.convert.request import Format
from ctxbudget.errors import UsageError
from ctxbudget.render import AnthropicRenderer, OpenAIChatRenderer, OpenAIResponsesRenderer
from ctxbudget.session.items import Item, ToolSpec
from ctxbudget.session.log import CompactionRecord

__all__ = [
    "FORMATS",
    "SCHEDULED",
    "Provider",
    "RequestWriter",
    "economic_reason",
    "planned_change",
    "predicted_usage",
    "request_limit",
    "wire_format",
]

Provider = Literal["openai", "openai_chat", "openai_responses", "anthropic"]
FORMATS: dict[str, Format] = {
    "openai": "openai_chat",
    "openai_chat": "openai_chat",
    "openai_responses": "openai_responses",
    "anthropic": "anthropic",
}
"""Wire format of each ``provider`` name ``prepare`` takes."""


def wire_format(provider: str) -> Format:
    """The wire format of ``provider``; UsageError naming the choices for anything else."""
    fmt = FORMATS.get(provider)
    if fmt is None:
        raise UsageError(f"unknown provider {provider!r}; expected one of {', '.join(FORMATS)}")
    return fmt


class RequestWriter:
    """Renders one session's view to request bodies and tracks its compaction boundary."""

    def __init__(self, *, model: str, output_reserve: int, prompt_cache_key: str | None) -> None:
        self.model = model
        self.output_reserve = output_reserve
        self.prompt_cache_key = prompt_cache_key
        self._openai = OpenAIChatRenderer()
        self._responses = OpenAIResponsesRenderer()
        self._anthropic = AnthropicRenderer()
        self._boundary: str | None = None
        """Id of the item ending the latest compaction (summary or placeholder)."""
        self._positions: list[int] = []
        """Message index of each item of the last Anthropic body."""

    def render(
        self,
        provider: Provider,
        items: Sequence[Item],
        tools: Sequence[ToolSpec],
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The body for ``items`` and ``tools`` in ``provider``'s wire format."""
        if provider != "anthropic" and self.prompt_cache_key is not None:
            options = {"prompt_cache_key": self.prompt_cache_key, **options}
        if provider == "openai_responses":
            return self._responses.render(items, tools, model=self.model, options=options)
        if provider == "anthropic":
            rest = dict(options)
            max_tokens = int(rest.pop("max_tokens", self.output_reserve))
            self._positions = []
            return self._anthropic.render(
                items,
                tools,
                model=self.model,
                max_tokens=max_tokens,
                options=rest,
                positions=self._positions,
            )
        return self._openai.render(items, tools, model=self.model, options=options)

    def note_boundary(self, records: Sequence[CompactionRecord]) -> None:
        """Remember the last item the latest of ``records`` inserted."""
        for record in reversed(records):
            inserted = [i.id for e in record.edits for i in e.insert]
            if inserted:
                self._boundary = inserted[-1]
                return

    def boundary_block(
        self, fmt: Format, items: Sequence[Item], body: Mapping[str, Any]
    ) -> int | None:
        """Block index (tools, system, messages) of the latest compaction boundary in
        ``body``, the Anthropic body just rendered from ``items``."""
        if fmt != "anthropic" or self._boundary is None:
            return None
        block = self.block_of(items, body, self._boundary)
        if block is None:
            self._boundary = None
        return block

    def first_block(
        self, fmt: Format, items: Sequence[Item], body: Mapping[str, Any], ids: set[str]
    ) -> int | None:
        """Block index of the first item of ``ids`` in the body just rendered from ``items``
        (None: none of them is there)."""
        if not ids:
            return None
        index = next((n for n in range(len(items)) if items[n].id in ids), None)
        if index is None:
            return None
        if fmt == "anthropic":
            return self.block_of(items, body, items[index].id)
        # OpenAI formats map each item to messages on its own: count the tail's
        tail = items[index:]
        if fmt == "openai_responses":
            key, after = "input", self._responses.render(tail, (), model=self.model)["input"]
            head = int(bool(body.get("instructions")))
        else:
            key, after = "messages", self._openai.render(tail, (), model=self.model)["messages"]
            head = 0
        entries = body.get(key)
        if not isinstance(entries, list):
            return None
        return len(entries) - len(after) + head + int(bool(body.get("tools")))

    def block_of(self, items: Sequence[Item], body: Mapping[str, Any], item_id: str) -> int | None:
        """Block index of the message holding ``item_id`` in the Anthropic ``body`` just
        rendered from ``items`` (None: not there)."""
        index = next((n for n in range(len(items) - 1, -1, -1) if items[n].id == item_id), None)
        if index is None or index >= len(self._positions):
            return None
        position = self._positions[index]
        if position < 0:
            return None
        return position + bool(body.get("tools")) + bool(body.get("system"))


SCHEDULED = ("digest", "shorten")
"""Compactions made on the schedule of answers: they change only the newest blocks."""
DOOR = ("clean", "truncate")
"""Compactions made at the door: on items never sent, so no prefix changes."""


def planned_change(
    records: Sequence[CompactionRecord], pending: Sequence[CompactionRecord], tools: bool
) -> tuple[bool, set[str]]:
    """Whether this request's prefix change was planned everywhere (a compaction, a priced
    tool change), and else the ids of the items scheduled edits put in (a change from the
    first of them on is planned; one before it is a bust)."""
    other = [r for r in records if r.strategy not in SCHEDULED]
    early = [r for r in pending if r.strategy not in DOOR]
    scheduled = {
        i.id for r in records if r.strategy in SCHEDULED for e in r.edits for i in e.insert
    }
    return bool(other or early or tools), scheduled


def request_limit(usable: int, limit: int | None) -> int:
    """The most input tokens this request may have: the usable window, or less."""
    if limit is None:
        return usable
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise UsageError(f"input_limit must be a positive int (tokens), got {limit!r}")
    return min(usable, limit)


def predicted_usage(cache: RequestCache, input_tokens: int) -> Usage:
    """The cache prediction scaled to the verified input count."""
    prediction = cache.prediction
    scale = input_tokens / max(cache.fingerprint.tokens, 1)  # block sums frame differently
    read = min(round(prediction.read_tokens * scale), input_tokens)
    write = min(round(prediction.write_tokens * scale), input_tokens - read)
    one_hour = prediction.ttl == "1h"
    return Usage(
        input_tokens=input_tokens,
        cache_read_tokens=read,
        cache_write_5m_tokens=0 if one_hour else write,
        cache_write_1h_tokens=write if one_hour else 0,
    )


def economic_reason(outcome: CascadeOutcome) -> str:
    """Why a compaction below the watermark ran (its first record's reason), or ''."""
    return outcome.records[0].reason if outcome.records else ""
