"""What a summarizer is asked: the items, the task, the sections, the length bound.

Kept apart from the summarizers themselves so the offline one
(:mod:`~ctxbudget.compaction.extractive`) and the model adapters
(:mod:`~ctxbudget.compaction.summarizers`) both depend on it and not on each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from ctxbudget.compaction.handoff import SECTIONS
from ctxbudget.session.items import Item

__all__ = ["Summarizer", "SummaryRequest"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryRequest:
    """What to summarize, and how."""

    items: tuple[Item, ...]
    """The items to summarize, in order (earlier summaries are passed as ``previous``)."""
    task: str = ""
    """The task the agent works on, so the summary keeps what matters for it."""
    previous: str | None = None
    """The text of an earlier summary being folded into this one, if any."""
    max_tokens: int = 1500
    """Upper bound on the summary's length (tokens)."""
    sections: tuple[str, ...] = SECTIONS
    """The section headings the summary must use, in order."""
    covers: tuple[str, ...] = ()
    """Ids of every view item the summary replaces (items plus a folded summary)."""

    @property
    def key(self) -> tuple[str, ...]:
        """What a pre-computed summary is keyed by: ``covers``, else the items' ids."""
        return self.covers or tuple(item.id for item in self.items)


Summarizer: TypeAlias = Callable[[SummaryRequest], "str | Awaitable[str]"]
"""Returns the summary as markdown with ``## <section>`` headings (sync or async)."""
