"""When to compact, and the cascade that decides which edits to take.

Compaction starts only when use crosses the high watermark and then works down to the low
watermark, so it happens in batches rather than on every turn (every compaction rewrites
the cached prefix). The cascade tries strategies in order of increasing aggression; each
sees how much is still needed. Protected content is touched only in a second, last-resort
pass. If the request still does not fit, the context is reset with a handoff brief (or,
in strict mode, :class:`~ctxbudget.errors.ContextOverflow` is raised).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ctxbudget.compaction.strategies.base import CompactionInput, Proposal, Runner
from ctxbudget.session.log import CompactionRecord

if TYPE_CHECKING:
    from ctxbudget.compaction.handoff import HandoffBrief

__all__ = ["CascadeOutcome", "CompactionSession", "Runner", "Trigger", "run_cascade", "trigger"]


@dataclass(frozen=True, slots=True)
class Trigger:
    """Why compaction runs now, and how far it should go."""

    reason: str
    """In words, e.g. ``"over high watermark: 91,200 > 90,000 tokens"``."""
    target: int
    """Work down to this many input tokens (the low watermark)."""
    limit: int
    """The request must end at or below this (the usable window)."""


def trigger(total: int, *, high: int, low: int, usable: int) -> Trigger | None:
    """A trigger when ``total`` is over the high watermark, else None."""
    if total > high:
        return Trigger(f"over high watermark: {total:,} > {high:,} tokens", low, usable)
    return None


class CompactionSession(Protocol):
    """What the cascade needs from the manager."""

    def total(self) -> int:
        """Input tokens of the current view."""

    def compaction_input(self, need: int, *, last_resort: bool) -> CompactionInput:
        """The view as strategies see it."""

    def apply(self, strategy: str, proposal: Proposal, reason: str) -> CompactionRecord | str:
        """Apply a proposal's edits and record them; the reason when rejected."""


@dataclass(slots=True)
class CascadeOutcome:
    """What a cascade run did."""

    records: list[CompactionRecord] = field(default_factory=list)
    """Compaction records appended to the log, in order."""
    failures: list[str] = field(default_factory=list)
    """Strategies that could not run, with why (e.g. a summarizer timeout)."""
    brief: HandoffBrief | None = None
    """The handoff brief, when the context was reset."""


def run_cascade(
    session: CompactionSession,
    steps: Sequence[tuple[str, Runner]],
    trig: Trigger,
    *,
    reset: tuple[str, Runner] | None,
) -> CascadeOutcome:
    """Run ``steps`` in order until the view is at or under the target; reset if it won't fit.

    The reset runs only when the view still exceeds ``trig.limit`` after every step,
    including a last-resort pass that may touch protected content.
    """
    outcome = CascadeOutcome()
    for last_resort in (False, True):
        for name, runner in steps:
            need = session.total() - trig.target
            if need <= 0:
                return outcome
            _step(session, outcome, name, runner, need, last_resort=last_resort, reason=trig.reason)
        if session.total() <= trig.limit:
            return outcome
    if reset is not None and session.total() > trig.limit:
        name, runner = reset
        need = session.total() - trig.target
        _step(
            session,
            outcome,
            name,
            runner,
            need,
            last_resort=True,
            reason=f"{trig.reason}; nothing else fits",
        )
    return outcome


def _step(
    session: CompactionSession,
    outcome: CascadeOutcome,
    name: str,
    runner: Runner,
    need: int,
    *,
    last_resort: bool,
    reason: str,
) -> None:
    proposal = runner(session.compaction_input(need, last_resort=last_resort))
    if proposal.failure:
        outcome.failures.append(f"{name}: {proposal.failure}")
    if not proposal.edits:
        return
    record = session.apply(name, proposal, reason)
    if isinstance(record, str):
        outcome.failures.append(f"{name}: edits rejected: {record}")
        return
    outcome.records.append(record)
    if proposal.brief is not None:
        outcome.brief = proposal.brief
