"""Reset: the last resort — a fresh context from what must stay plus a handoff brief.

The new context keeps every item a strategy may not touch (system, fixed and pinned items;
protected ones too unless ``view.last_resort``), the first user (task) message — decided:
it always stays verbatim, because a brief is a lossy copy of the task and the task's own
words are what the agent is judged against — and the latest ``keep_last`` units. Everything
else goes, in whole units, replaced by one brief item: the summary sections plus the
constraint lines of the system prompt and the task, quoted again so they are recent.
Constraints come only from those two; tool output appears in the brief only as labelled
quotes, and a model's sections are each quoted whole as a model-written summary
(:func:`~ctxbudget.compaction.strategies.summarize.model_quote`), in the item and in the
brief files alike.
The brief is also returned so the manager can write it to files
(:mod:`ctxbudget.compaction.handoff`).

If a custom summarizer fails, the brief falls back to the extractive summarizer (and the
failure is reported): a reset runs when nothing else fits, so proposing nothing would
leave the request over the window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from ctxbudget.compaction.extractive import constraint_lines
from ctxbudget.compaction.handoff import (
    CONSTRAINTS_HEADING,
    NOTES,
    SECTIONS,
    HandoffBrief,
    brief_body,
    parse_sections,
)
from ctxbudget.compaction.strategies.base import CompactionInput, Proposal
from ctxbudget.compaction.strategies.summarize import (
    candidate_units,
    derived_item,
    derived_span,
    model_quote,
    paying_edit,
    recall_header,
    split_previous,
    task_text,
    tool_names,
)
from ctxbudget.compaction.summarizers import (
    Summarizer,
    SummarizerFailed,
    SummaryRequest,
    extractive_summarizer,
    run_summarizer,
)
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import Component, item_text
from ctxbudget.session.log import Edit

__all__ = ["ResetConfig", "propose", "propose_reset", "reinjected_constraints"]

_log = logging.getLogger(__name__)
_MAX_CONSTRAINTS = 40


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetConfig:
    """Settings of the reset strategy."""

    kind: Literal["reset"] = "reset"
    keep_last: int = 1
    """The latest units kept verbatim (the view's own ``keep_last`` if larger)."""
    summarizer: Summarizer | None = None
    """What writes the brief's sections; None: the offline extractive summarizer."""
    timeout: float = 30.0
    """Seconds the summarizer may take before the extractive one is used (seconds)."""
    max_brief_tokens: int = 2000
    """Upper bound on the brief's length, constraints included (tokens, ~4 chars each)."""

    def __post_init__(self) -> None:
        if self.keep_last < 0:
            raise ConfigError(f"reset keep_last must be >= 0, got {self.keep_last}")
        if self.max_brief_tokens < 100:
            raise ConfigError(f"reset max_brief_tokens must be >= 100, got {self.max_brief_tokens}")
        if not self.timeout > 0:
            raise ConfigError(f"reset timeout must be > 0 seconds, got {self.timeout}")


def reinjected_constraints(view: CompactionInput, max_chars: int) -> tuple[str, ...]:
    """Constraint lines of the system items and the user's own first and latest message
    (:func:`~ctxbudget.compaction.strategies.summarize.task_text`), verbatim, once, within
    ``max_chars``; never of tool output or retrieved text."""
    sources = [
        item_text(i)
        for i in view.items
        if i.role in ("system", "developer") or i.component is Component.SYSTEM
    ]
    sources.append(task_text(view))
    found: dict[str, None] = {}
    for text in sources:
        for line in constraint_lines(text):
            found.setdefault(line, None)
    out: list[str] = []
    used = 0
    for line in list(found)[:_MAX_CONSTRAINTS]:
        if used + len(line) > max_chars:
            break
        out.append(line)
        used += len(line) + 3
    return tuple(out)


def propose_reset(
    config: ResetConfig,
    view: CompactionInput,
    *,
    session: str | None = None,
    turn: int | None = None,
) -> Proposal:
    """One ``reset`` edit and its brief, or nothing (with why) when a reset cannot help.

    Proposes only when ``view.need > 0``; ``session`` and ``turn`` label the brief.
    """
    if view.need <= 0:
        return Proposal()
    removed = [i for u in candidate_units(view, config.keep_last) for i in u.items]
    if not removed:
        return Proposal(failure="nothing left that a reset may remove")
    budget = config.max_brief_tokens * 4
    constraints = reinjected_constraints(view, budget // 4)
    plain, previous = split_previous(removed)
    request = SummaryRequest(
        items=plain,
        task=task_text(view),
        previous=previous,
        max_tokens=max((budget - sum(len(c) + 3 for c in constraints)) // 4, 50),
        sections=SECTIONS,
        covers=tuple(i.id for i in removed),
    )
    failure: str | None = None
    summarizer = config.summarizer or extractive_summarizer
    span = derived_span(removed)
    try:
        text = run_summarizer(summarizer, request, config.timeout)
        sections = parse_sections(text, SECTIONS)
        if summarizer is not extractive_summarizer:
            sections = _quoted_sections(sections, span, tool_names(removed))
    except SummarizerFailed as exc:
        if config.summarizer is None:
            return Proposal(failure=f"extractive summarizer failed: {exc}")
        failure = f"summarizer failed ({exc.reason}): {exc}; the brief used the extractive one"
        sections = parse_sections(extractive_summarizer(request), SECTIONS)
    brief = HandoffBrief(
        sections=sections,
        constraints=constraints,
        covers=request.covers,
        session=session,
        turn=turn,
    )
    header = recall_header("Handoff brief after a context reset, replacing", span)
    item = derived_item(f"brief~{removed[-1].id}", "brief", header, brief_body(brief), span)
    edit = paying_edit("reset", view, removed, item, "the handoff brief")
    if isinstance(edit, str):
        return Proposal(failure=edit)
    return Proposal(edits=(edit,), failure=failure, brief=brief)


def _quoted_sections(
    sections: dict[str, str], span: tuple[str, str, int], tools: tuple[str, ...]
) -> dict[str, str]:
    """A model's sections, each quoted whole; a section it titled like the re-injected
    constraints joins its notes, since only the system prompt and the task give those."""
    if CONSTRAINTS_HEADING in sections:
        moved = sections.pop(CONSTRAINTS_HEADING)
        sections[NOTES] = f"{sections.get(NOTES, '')}\n{moved}".strip()
    return {
        title: model_quote(text, span, tools) if text.strip() else text
        for title, text in sections.items()
    }


def propose(config: ResetConfig, view: CompactionInput) -> tuple[Edit, ...]:
    """The strategy contract: edits only (see :func:`propose_reset` for the brief)."""
    proposal = propose_reset(config, view)
    if proposal.failure:
        _log.warning("reset: %s", proposal.failure)
    return proposal.edits
