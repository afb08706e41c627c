"""The accountant: counts what enters a request, each content once, and keeps the ledger current.

It joins the model registry (which tokenizer, which framing), the token counter (each
distinct content tokenized once) and the ledger (used / budget per component, O(1) per
change). Appending a message costs one tokenization and one ledger update; the totals are
always the sum of the parts, so ``input_tokens`` equals a count of the whole request.

For models without a public tokenizer, :meth:`Accountant.observe_billed` reconciles the
estimate with what the provider billed and re-scales every count, so estimates converge on
the truth during a session.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ctxbudget.budget.ledger import Ledger, LedgerSnapshot
from ctxbudget.budget.models import ModelSpec, framing_for_model
from ctxbudget.budget.policy import Policy, preset
from ctxbudget.errors import UsageError
from ctxbudget.session.items import Component, Item, ToolSpec
from ctxbudget.tokens.calibration import Calibrator
from ctxbudget.tokens.count import TokenCount
from ctxbudget.tokens.counter import TokenCounter
from ctxbudget.tokens.resolve import tokenizer_from_spec

__all__ = ["OVERHEAD_ID", "TOOLS_ID", "Accountant", "counter_for"]

FACTOR_STEP = 0.005
"""Relative change of the calibrated factor that re-scales the counts. Smaller moves (the
noise of call-to-call ratios once calibrated) leave every cached count valid, so a long
session's call does not re-count its whole history; well inside an estimate's error."""

TOOLS_ID = "tools"
"""Ledger id of the tool schemas (component ``tools``)."""
OVERHEAD_ID = "request-overhead"
"""Ledger id of the per-request framing tokens (reply priming), accounted under ``system``."""


def counter_for(model: ModelSpec) -> TokenCounter:
    """The token counter the registry says ``model`` needs (tokenizer + framing rule)."""
    factor = model.estimate_factor if model.tokenizer.startswith("estimate:") else 1.0
    tokenizer = tokenizer_from_spec(model.tokenizer, factor=factor)
    return TokenCounter(tokenizer, framing_for_model(model.name, model.family))


@dataclass(frozen=True, slots=True)
class Calibration:
    """Where an estimated model's calibration stands."""

    factor: float
    """Model tokens per proxy-tokenizer token now in use."""
    observations: int
    """Billed calls used so far."""


class Accountant:
    """Per-component token accounting for one model and policy, updated incrementally."""

    def __init__(
        self,
        model: ModelSpec,
        policy: Policy | str = "agent",
        *,
        counter: TokenCounter | None = None,
    ) -> None:
        self.model = model
        """The model whose tokenizer, framing and window apply."""
        self.policy = preset(policy) if isinstance(policy, str) else policy
        """The budget policy."""
        self.counter = counter or counter_for(model)
        """Counts each distinct content once."""
        exact = self.counter.tokenizer.exact
        allocation = self.policy.allocate(
            model.context_window, model.max_output_tokens, exact_counts=exact
        )
        self.ledger = Ledger(allocation)
        """Used / budget per component."""
        self._items: dict[str, Item] = {}
        self._raw = 0
        """Tokenizer tokens of the accounted items, before the factor (kept as they come
        and go, so calibrating a long session's call does not re-add them all)."""
        self._fixed = 0
        """Framing-rule tokens of the accounted items."""
        self._tools: tuple[ToolSpec, ...] = ()
        self._calibrator = Calibrator(self.counter.factor) if not exact else None
        self._observations = 0
        self.ledger.add(OVERHEAD_ID, Component.SYSTEM, self.counter.request_overhead())

    # -- what enters the request ---------------------------------------------------------

    @property
    def items(self) -> tuple[Item, ...]:
        """The items accounted, in the order they were added."""
        return tuple(self._items.values())

    @property
    def tools(self) -> tuple[ToolSpec, ...]:
        """The tool schemas accounted."""
        return self._tools

    def set_tools(self, tools: Sequence[ToolSpec]) -> TokenCount:
        """Account the tool schemas (replacing earlier ones); returns their cost."""
        count = self.counter.count_tools(tools)
        if TOOLS_ID in self.ledger:
            self.ledger.replace(TOOLS_ID, count)
        else:
            self.ledger.add(TOOLS_ID, Component.TOOLS, count)
        self._tools = tuple(tools)
        return count

    def add(self, item: Item) -> TokenCount:
        """Account one item; costs one tokenization (none if this content was seen)."""
        if item.id in self._items:
            raise UsageError(
                f"item id {item.id!r} is already accounted; give every item a unique id"
            )
        tally = self.counter.tally(item)
        count = tally.total(self.counter.factor)
        self.ledger.add(item.id, item.component, count)
        self._items[item.id] = item
        self._raw += tally.raw
        self._fixed += tally.fixed
        return count

    def extend(self, items: Iterable[Item]) -> None:
        """Account several items, in order."""
        for item in items:
            self.add(item)

    def remove(self, item_id: str) -> Item:
        """Stop accounting an item (e.g. hidden by a compaction); returns it."""
        item = self._items.pop(item_id, None)
        if item is None:
            raise UsageError(f"item id {item_id!r} is not accounted; nothing to remove")
        self.ledger.remove(item_id)
        tally = self.counter.tally(item)
        self._raw -= tally.raw
        self._fixed -= tally.fixed
        return item

    def count(self, item_id: str) -> TokenCount:
        """What one accounted item costs."""
        entry = self.ledger.get(item_id)
        if entry is None:
            raise UsageError(f"item id {item_id!r} is not accounted")
        return entry[1]

    # -- what it costs ---------------------------------------------------------------------

    @property
    def input_tokens(self) -> TokenCount:
        """Everything the provider bills as input for the current request."""
        return self.ledger.total

    def snapshot(self) -> LedgerSnapshot:
        """Used, budget, remaining and utilization per component."""
        return self.ledger.snapshot()

    def check_fixed(self) -> None:
        """Raise PolicyError if a fixed component is larger than its budget."""
        self.ledger.check_fixed()

    # -- calibration -----------------------------------------------------------------------

    @property
    def calibration(self) -> Calibration | None:
        """The calibration state, or None when counts are exact."""
        if self._calibrator is None:
            return None
        return Calibration(self.counter.factor, self._observations)

    def observe_billed(self, billed_prompt_tokens: int) -> TokenCount:
        """Reconcile with what the provider billed for the current request.

        ``billed_prompt_tokens`` is the whole prompt: input + cache read + cache write
        tokens. For estimated models the evidence always accumulates, and once the
        calibrated factor has moved by :data:`FACTOR_STEP` or more every count is re-scaled
        by it (one pass over the accounted items; the renderer's and the cache's caches
        start again). Returns the new input total.
        """
        if self._calibrator is None:
            return self.input_tokens
        tools = self.counter.tally_tools(self._tools)
        raw = self._raw + tools.raw
        fixed = self._fixed + tools.fixed + self.counter.framing.reply_priming
        self._calibrator = self._calibrator.observe(raw, billed_prompt_tokens, fixed)
        self._observations += 1
        factor, current = self._calibrator.factor, self.counter.factor
        if abs(factor - current) < FACTOR_STEP * current:
            return self.input_tokens  # within the step: every cached count stays valid
        self.counter.set_factor(factor)
        for item_id, item in self._items.items():
            self.ledger.replace(item_id, self.counter.count_item(item))
        if TOOLS_ID in self.ledger:
            self.ledger.replace(TOOLS_ID, self.counter.count_tools(self._tools))
        return self.input_tokens
