"""Decay signals beyond occupancy, and the actions a policy takes on them.

Context rot is silent: nothing fails, answers just get worse. These signals make it visible:
how full each component is, how far the generation point has drifted from the system
constraints (tokens since they were last stated), how much of the retrieved knowledge the
answers actually used, and how much of the input the provider cache served. All functions
here are pure; the manager feeds them its view and its metrics history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ctxbudget.errors import ConfigError
from ctxbudget.session.items import Component, Item, TextPart, item_text

__all__ = [
    "REMINDER_PREFIX",
    "RetrievalTurn",
    "SignalActions",
    "Signals",
    "constraint_distance",
    "is_reminder",
    "reminder_item",
    "retrieval_hit_rate",
]

REMINDER_PREFIX = "reinject-"
"""Id prefix of the items that restate the system constraints."""
_REMINDER_HEADER = "Reminder of the standing instructions (restated from the system prompt):"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalActions:
    """What the manager does on its own when a signal crosses a threshold."""

    reinject_at: int | None = 150_000
    """Restate the system constraints in the working layer once the generation point is this
    many tokens past them (tokens; None: never)."""
    compact_history_at: float | None = None
    """Compact early once history holds this share of its budget (e.g. 0.8; None: only the
    window watermarks trigger compaction)."""
    narrow_knowledge_below: float | None = None
    """Take unused retrieved knowledge out of the view once the retrieval hit rate over the
    window stays under this share (None: never)."""
    window: int = 10
    """Turns the rate signals (cache and retrieval hit rate) look back over."""
    reminder_chars: int = 8_000
    """Longest restatement of the constraints (characters); longer system prompts are cut."""

    def __post_init__(self) -> None:
        if self.reinject_at is not None and (
            isinstance(self.reinject_at, bool) or self.reinject_at < 1
        ):
            raise ConfigError(
                f"reinject_at must be a positive token count or None, got {self.reinject_at!r}"
            )
        for name in ("compact_history_at", "narrow_knowledge_below"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ConfigError(f"{name} must be a share in (0, 1] or None, got {value!r}")
        if isinstance(self.window, bool) or self.window < 1:
            raise ConfigError(f"window must be a positive number of turns, got {self.window!r}")
        if self.reminder_chars < 100:
            raise ConfigError(f"reminder_chars must be at least 100, got {self.reminder_chars!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievalTurn:
    """What one turn retrieved and what its answer used (ids of knowledge items)."""

    retrieved: tuple[str, ...]
    used: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Signals:
    """Context health now, as :meth:`ContextManager.signals` reports it."""

    occupancy: Mapping[str, float | None]
    """Used over budget per component (None: no budget)."""
    utilization: float
    """Input tokens of the view over the most that fit (0..1)."""
    constraint_distance: int
    """Tokens between the end of the system constraints and the generation point."""
    retrieval_hit_rate: float | None
    """Share of retrieved knowledge items the answers used, over the window."""
    cache_hit_rate: float | None
    """Cache-read share of the input over the window (billed where known, else predicted)."""
    compact_now: bool
    """Whether compaction is due (window watermark, or the early-compaction threshold)."""
    reinject_constraints: bool
    """Whether the constraints are due to be restated."""
    narrow_knowledge: bool
    """Whether retrieval is wasting the knowledge budget."""
    reasons: tuple[str, ...] = field(default=())
    """Why each flag is set, in words."""

    @property
    def history_occupancy(self) -> float | None:
        """Used over budget of the history component."""
        return self.occupancy.get(Component.HISTORY.value)


def is_reminder(item: Item) -> bool:
    """Whether ``item`` restates the system constraints."""
    return item.id.startswith(REMINDER_PREFIX)


def constraint_distance(items: Sequence[Item], count: Callable[[Item], int]) -> int:
    """Tokens after the last system item or constraint reminder: the distance the model must
    look back to find its standing instructions. Without any system item, every token counts.
    """
    distance = 0
    for item in reversed(items):
        if item.role == "system" or is_reminder(item):
            break
        distance += count(item)
    return distance


def reminder_item(items: Iterable[Item], number: int, max_chars: int) -> Item | None:
    """A working-layer user message restating the system prompt (None: there is none).

    The constraints stay in the user role: restating them never promotes anything into the
    system role, and only the system items' own text is repeated.
    """
    texts = [item_text(i) for i in items if i.role == "system" and not is_reminder(i)]
    text = "\n\n".join(t for t in texts if t.strip())
    if not text:
        return None
    if len(text) > max_chars:
        text = text[: max_chars - 40].rstrip() + "\n[... restatement cut to fit ...]"
    return Item(
        id=f"{REMINDER_PREFIX}{number}",
        role="user",
        component=Component.WORKING,
        parts=(TextPart(text=f"{_REMINDER_HEADER}\n\n{text}"),),
    )


def retrieval_hit_rate(turns: Sequence[RetrievalTurn], window: int) -> float | None:
    """Used over retrieved, over the last ``window`` turns that retrieved anything."""
    recent = [t for t in turns if t.retrieved][-window:]
    retrieved = sum(len(set(t.retrieved)) for t in recent)
    if retrieved == 0:
        return None
    used = sum(len(set(t.used) & set(t.retrieved)) for t in recent)
    return used / retrieved
