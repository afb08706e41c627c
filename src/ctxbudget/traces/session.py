"""An imported agent session: the provider-neutral items plus what the log billed.

Every importer returns :class:`Session` objects, whatever the log format, so analysis,
simulation and reports never look at a format again. A *model call* is one assistant item:
its request was everything before it. Where the log recorded what a call was billed, the
call carries it as :class:`~ctxbudget.billing.usage.Usage` (and the log's own dollar figure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from ctxbudget.billing.usage import Usage
from ctxbudget.session.items import Item, ToolSpec

__all__ = ["RecordedCall", "RecordedTotals", "Session"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedCall:
    """One model call as the log recorded it."""

    position: int
    """Index in :attr:`Session.items` of the assistant item this call produced."""
    usage: Usage | None = None
    """What the provider billed for this call, when the log recorded it."""
    cost: Decimal | None = None
    """What the log says this call cost, in USD (``None``: not recorded)."""
    model: str | None = None
    """The model that answered, as the log names it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedTotals:
    """Session-level figures for logs that keep no per-call usage (SWE-agent)."""

    calls: int | None = None
    """Model calls the agent made (may exceed the assistant messages kept)."""
    input_tokens: int | None = None
    """Prompt tokens sent over the session."""
    output_tokens: int | None = None
    """Tokens generated over the session."""
    cost: Decimal | None = None
    """What the log says the session cost, in USD."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One agent session read from a log, provider-neutral."""

    name: str
    """Unique within a run: the file name, plus ``#n`` when a file holds several sessions."""
    source: str
    """The file it was read from."""
    format: str
    """The log format (``ctxbudget.traces.FORMATS``)."""
    items: tuple[Item, ...]
    """System prompt, task, then the conversation, in order; exchanges assigned."""
    tools: tuple[ToolSpec, ...] = ()
    """The tool schemas the agent offered, when the log has them."""
    calls: tuple[RecordedCall, ...] = ()
    """One entry per assistant item, in order (usage ``None`` where the log has none)."""
    model: str | None = None
    """The model the agent used, when the log names one."""
    totals: RecordedTotals | None = None
    """Session-level figures, for logs without per-call usage."""
    observations: Mapping[str, str] = field(default_factory=dict)
    """Text-only agents (commands in the assistant's text, output sent back as a user
    message): item id of each such observation → the tool that produced it (the command's
    first word, e.g. ``bash``, ``open``). These items have component ``TOOL_RESULTS``."""
    skipped: Mapping[str, int] = field(default_factory=dict)
    """Record kinds the importer did not know and passed over → how many lines of each
    (agents add new kinds every few releases; they are counted and shown, never fatal)."""
    resets: tuple[int, ...] = ()
    """Item positions where the client restarted the context (a ``/compact`` boundary,
    a Codex compaction): a call's request holds the system prompt and the items from the
    last reset at or before it (:meth:`request`), not the history the compaction replaced."""
    parent: str | None = None
    """For a sub-agent's own transcript: the id of the session that started it (its calls
    are billed apart from that session's, so they are never counted twice)."""

    def context_start(self, position: int) -> int:
        """Where the conversation of the call at ``position`` starts (0 unless a reset)."""
        return max((r for r in self.resets if r <= position), default=0)

    def request(self, position: int) -> tuple[Item, ...]:
        """The items the client sent for the call at ``position``: the system prompt, then
        everything from the last reset before it (everything before it, without resets)."""
        start = self.context_start(position)
        kept = tuple(i for i in self.items[:start] if i.role == "system")
        return kept + self.items[start:position]

    @property
    def billed(self) -> bool:
        """Whether every call carries billed usage."""
        return bool(self.calls) and all(c.usage is not None for c in self.calls)

    @property
    def recorded_cost(self) -> Decimal | None:
        """The log's own cost of the session (per-call sum, else the session total)."""
        costs = [c.cost for c in self.calls]
        if costs and all(c is not None for c in costs):
            return sum((c for c in costs if c is not None), Decimal(0))
        return self.totals.cost if self.totals is not None else None
