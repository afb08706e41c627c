"""Tokens of old tool outputs a clearing could free, kept as a running sum over the view.

The cost planner asks on every request below the watermark; summing the whole view each
time would make a long session's requests cost its length. The sum covers each item once:
only items appended, or rewritten by a compaction (what ``View.kept`` says), since the last
call are looked at; a recalibration changes every count, so it starts over.
"""

from __future__ import annotations

from collections.abc import Callable

from ctxbudget.compaction.strategies._mechanical import is_text_observation
from ctxbudget.compaction.strategies.base import SMALL_DERIVATIONS, derived_kind
from ctxbudget.compaction.strategies.clear_tool_results import ClearToolResultsConfig
from ctxbudget.session.items import Item
from ctxbudget.session.view import View

__all__ = ["KEEP_RESULTS", "ClearableTokens"]

KEEP_RESULTS = ClearToolResultsConfig().keep_last
"""Newest tool results not counted as clearable: what clear_tool_results keeps by default."""


class ClearableTokens:
    """The running sum for one view (a new view or factor starts it over)."""

    def __init__(self) -> None:
        self._reset(None, 0.0)

    def _reset(self, view: View | None, factor: float) -> None:
        self._view, self._factor = view, factor
        self._epoch = 0
        """The view's epoch when last summed."""
        self._seen = 0
        """Items of the view looked at (all of them, when last summed)."""
        self._counts: list[tuple[int, int]] = []
        """(view index, tokens) of each clearable tool output, in view order."""
        self._total = 0
        """Their tokens."""

    def __call__(self, view: View, count: Callable[[Item], int], factor: float) -> int:
        """Tokens of the tool outputs in ``view`` a clearing could free (all but the newest
        few); ``count`` gives an item's tokens with the counter's ``factor``."""
        if view is not self._view or factor != self._factor:
            self._reset(view, factor)
        kept = min(view.kept(self._epoch), self._seen)
        counts = self._counts
        while counts and counts[-1][0] >= kept:
            self._total -= counts.pop()[1]
        for index in range(kept, len(view)):
            item = view[index]
            observation = item.tool_results or is_text_observation(item)
            if observation and derived_kind(item.id) not in SMALL_DERIVATIONS:
                tokens = count(item)
                counts.append((index, tokens))
                self._total += tokens
        self._seen, self._epoch = len(view), view.epoch
        return self._total - sum(tokens for _, tokens in counts[-KEEP_RESULTS:])
