"""Sliding window: hide whole units, oldest first, until enough is freed.

The cheapest strategy and the usual last step: no tokenizer, no model call, and the
result is a contiguous recent window (plus the task), which keeps the prompt prefix
stable from the first kept unit on. Hidden units stay recallable from the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ctxbudget.compaction.strategies._mechanical import hideable_units
from ctxbudget.compaction.strategies.base import CompactionInput
from ctxbudget.errors import ConfigError
from ctxbudget.session.log import Edit

__all__ = ["SlidingWindowConfig", "propose"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SlidingWindowConfig:
    """Hide the oldest units first."""

    kind: Literal["sliding_window"] = "sliding_window"
    keep_first_user: bool = True
    """Keep the first user message (usually the task) in view."""
    min_units: int = 2
    """Latest units always kept (units; on top of the view's own ``keep_last``)."""

    def __post_init__(self) -> None:
        if self.kind != "sliding_window":
            raise ConfigError(
                f"SlidingWindowConfig.kind must be 'sliding_window', got {self.kind!r}"
            )
        if not isinstance(self.min_units, int) or isinstance(self.min_units, bool):
            raise ConfigError(f"min_units must be an int, got {self.min_units!r}")
        if self.min_units < 0:
            raise ConfigError(f"min_units must be >= 0 (units kept), got {self.min_units}")


def propose(config: SlidingWindowConfig, view: CompactionInput) -> tuple[Edit, ...]:
    """Hide whole units, oldest first, until ``view.need`` tokens are freed."""
    if view.need <= 0:
        return ()
    first_user = None
    if config.keep_first_user:
        first_user = next(
            (i.id for i in view.items if i.role == "user" and not i.tool_results), None
        )
    edits: list[Edit] = []
    freed = 0
    for unit in hideable_units(view, keep_latest=config.min_units):
        if first_user is not None and first_user in unit.ids:
            continue
        tokens = sum(view.count(i) for i in unit.items)
        edits.append(
            Edit(
                kind="hide",
                remove=unit.ids,
                note=f"oldest unit ({len(unit.items)} items, {tokens:,} tokens)",
            )
        )
        freed += tokens
        if freed >= view.need:
            break
    return tuple(edits)
