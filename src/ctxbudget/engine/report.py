"""What one ``prepare`` call did: the report the manager keeps as ``last_report``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ctxbudget.billing.cost import Cost
from ctxbudget.billing.usage import Usage
from ctxbudget.budget.ledger import LedgerSnapshot
from ctxbudget.cache.session import RequestCache
from ctxbudget.session.log import CompactionRecord
from ctxbudget.tokens.count import TokenCount

__all__ = ["PrepareReport"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepareReport:
    """What one ``prepare`` call did."""

    before: LedgerSnapshot
    """Per-component tokens before compaction."""
    after: LedgerSnapshot
    """Per-component tokens of the prepared request."""
    records: tuple[CompactionRecord, ...]
    """Compactions applied during this call, in order (door truncations included)."""
    input_tokens: TokenCount
    """Input tokens of the rendered request, counted on the rendered body."""
    limit: int
    """The most input tokens the request may have: window − output reserve − margin."""
    reason: str = ""
    """Why compaction ran (empty when it did not)."""
    failures: tuple[str, ...] = ()
    """Strategies that could not run and why (e.g. a summarizer timeout)."""
    brief_paths: tuple[Path, ...] = ()
    """Files the handoff brief was written to, after a reset."""
    cache: RequestCache | None = None
    """Fingerprint, breakpoints, predicted cache use and any cache bust of the request."""
    predicted: Usage | None = None
    """Predicted usage: input tokens and the cache reads/writes the provider should bill."""
    predicted_cost: Cost | None = None
    """Predicted input cost (USD) of the request; None when the model has no prices."""
    deferred: str = ""
    """Why compaction over the high watermark was held back (it would not pay)."""
    billed: Usage | None = None
    """What the provider billed, once :meth:`ContextManager.observe_usage` was called."""
    billed_cost: Cost | None = None
    """What that usage costs at the model's prices."""

    @property
    def freed(self) -> int:
        """Tokens compaction freed during this call."""
        return sum(r.freed for r in self.records)

    @property
    def exact(self) -> bool:
        """Whether ``input_tokens`` is exact."""
        return self.input_tokens.exact
