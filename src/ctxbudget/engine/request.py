"""Request preparation: the view rendered per wire format, counted, cache-marked, predicted.

The renderers write deterministic bytes and keep what they wrote, so each request costs
the items that changed since the last one; this keeps what one session's requests share:
the prompt cache key, the output reserve, and where the latest compaction ended (the
Anthropic rolling breakpoint goes no earlier, so content about to change is never written
to the cache).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ctxbudget.billing.usage import Usage
from ctxbudget.cache.fingerprint import head_blocks
from ctxbudget.cache.session import RequestCache
from ctxbudget.compaction.planner import CascadeOutcome
from ctxbudget.convert.request import Format
from ctxbudget.engine.cascade import DOOR, SCHEDULED
from ctxbudget.errors import UsageError
from ctxbudget.render import AnthropicRenderer, OpenAIChatRenderer, OpenAIResponsesRenderer
from ctxbudget.session.items import Item, ToolSpec
from ctxbudget.session.log import CompactionRecord
from ctxbudget.session.view import View

__all__ = [
    "FORMATS",
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
    """Renders one session's view to request bodies and tracks its compaction boundary.

    Each format's renderer is told how many leading items of the view are the very items
    it rendered last time (the view's :meth:`~ctxbudget.session.view.View.kept`), so it
    writes only the rest; ``stable`` and :meth:`handed` say how many leading messages a
    body shares with earlier ones, so counting and fingerprinting skip them too. Bodies
    share message dicts with earlier bodies: they are read-only.
    """

    def __init__(
        self,
        *,
        model: str,
        output_reserve: int,
        prompt_cache_key: str | None,
        incremental: bool = True,
    ) -> None:
        self.model = model
        self.output_reserve = output_reserve
        self.prompt_cache_key = prompt_cache_key
        self.incremental = incremental
        """False: every body is written from scratch by fresh renderers and shares nothing
        with earlier ones (the reference the incremental path is tested against)."""
        self._openai = OpenAIChatRenderer()
        self._responses = OpenAIResponsesRenderer()
        self._anthropic = AnthropicRenderer()
        self._boundary: str | None = None
        """Id of the item ending the latest compaction (summary or placeholder)."""
        self._rendered: dict[Format, tuple[View, int]] = {}
        """Per format: the view its last body was rendered from, and the view's epoch then."""
        self._unsent: dict[Format, int | None] = {}
        """Per format: leading messages its latest body shares with the last one handed on
        (None: the latest body is the one handed on)."""
        self.stable = 0
        """Leading messages of the last body that are the very objects of the body rendered
        before it in the same format (0 for Responses bodies)."""

    def render(
        self,
        provider: Provider,
        items: Sequence[Item],
        tools: Sequence[ToolSpec],
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The body for ``items`` (best: the :class:`View` itself, so only what changed is
        written again) and ``tools`` in ``provider``'s wire format."""
        fmt = wire_format(provider)
        reuse = self._reuse(fmt, items)
        if provider != "anthropic" and self.prompt_cache_key is not None:
            options = {"prompt_cache_key": self.prompt_cache_key, **options}
        if provider == "openai_responses":
            self.stable = 0
            body = self._responses.render(items, tools, model=self.model, options=options)
        elif provider == "anthropic":
            rest = dict(options)
            max_tokens = int(rest.pop("max_tokens", self.output_reserve))
            body = self._anthropic.render(
                items, tools, model=self.model, max_tokens=max_tokens, options=rest, reuse=reuse
            )
            self.stable = self._anthropic.stable
        else:
            body = self._openai.render(items, tools, model=self.model, options=options, reuse=reuse)
            self.stable = self._openai.stable
        before = self._unsent.get(fmt, 0)
        self._unsent[fmt] = self.stable if before is None else min(before, self.stable)
        return body

    def handed(self, fmt: Format) -> int:
        """Leading messages the latest body of ``fmt`` shares with the last one this was
        called for (what the cache layer saw); it is now the one handed on."""
        stable = self._unsent.get(fmt)
        self._unsent[fmt] = None
        return stable or 0

    def _reuse(self, fmt: Format, items: Sequence[Item]) -> int:
        """How many leading ``items`` are the very items ``fmt``'s last body was rendered
        from (0 unless ``items`` is the view it came from)."""
        if not self.incremental:
            self._openai = OpenAIChatRenderer()
            self._responses = OpenAIResponsesRenderer()
            self._anthropic = AnthropicRenderer()
            return 0
        last = self._rendered.pop(fmt, None)
        if not isinstance(items, View):
            return 0
        self._rendered[fmt] = (items, items.epoch)
        if last is None or last[0] is not items:
            return 0
        return items.kept(last[1])

    def note_boundary(self, records: Sequence[CompactionRecord]) -> None:
        """Remember the last item the latest of ``records`` inserted."""
        for record in reversed(records):
            inserted = [i.id for e in record.edits for i in e.insert]
            if inserted:
                self._boundary = inserted[-1]
                return

    def boundary_block(self, fmt: Format, view: View, body: Mapping[str, Any]) -> int | None:
        """Block index (tools, system, messages) of the latest compaction boundary in
        ``body``, the Anthropic body just rendered from ``view``."""
        if fmt != "anthropic" or self._boundary is None:
            return None
        block = self.block_of(view, body, self._boundary)
        if block is None:
            self._boundary = None
        return block

    def first_block(
        self, fmt: Format, view: View, body: Mapping[str, Any], ids: set[str]
    ) -> int | None:
        """Block index of the first item of ``ids`` in the body just rendered from ``view``
        (None: none of them is there)."""
        found = [p for p in map(view.position, ids) if p is not None]
        if not found:
            return None
        index = min(found)
        if fmt == "anthropic":
            return self.block_of(view, body, view[index].id)
        if fmt == "openai_chat":
            return self._openai.start_of(index) + head_blocks(body, fmt)
        # Responses map each item to entries on its own: count the tail's
        after = self._responses.render(view.tail(index), (), model=self.model)["input"]
        entries = body.get("input")
        if not isinstance(entries, list):
            return None
        return len(entries) - len(after) + head_blocks(body, fmt)

    def block_of(self, view: View, body: Mapping[str, Any], item_id: str) -> int | None:
        """Block index of the message holding ``item_id`` in the Anthropic ``body`` just
        rendered from ``view`` (None: not there)."""
        index = view.position(item_id)
        position = self._anthropic.position(index) if index is not None else None
        if position is None or position < 0:
            return None
        return position + head_blocks(body, "anthropic")


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
