"""The strategies one manager runs, built once from its policy or its ``strategies`` list.

``clean`` and ``truncate`` run at the door (each new tool output, in that order),
``digest`` and ``shorten`` on the schedule of answers (each output, each of the agent's
messages, once the agent has answered it),
``reset`` only as the last resort, the others in order when the planner compacts; with a
model summarizer, ``summarize`` is wired to a background pre-summarizer so compaction does
not wait for the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ctxbudget.compaction.strategies import StrategySpec, build_runner
from ctxbudget.compaction.strategies.base import Runner
from ctxbudget.compaction.strategies.digest import DigestConfig
from ctxbudget.compaction.strategies.shorten import ShortenConfig
from ctxbudget.compaction.strategies.summarize import SummarizeConfig
from ctxbudget.compaction.summarizers import PreSummarizer, Summarizer
from ctxbudget.tokens.backends import Tokenizer

__all__ = ["DOOR", "SCHEDULED", "Cascade", "build_cascade"]

DOOR = ("clean", "truncate")
"""Strategies run on each new tool output as it is appended: on items never sent yet, so
their edits change no prefix."""
SCHEDULED = ("digest", "shorten")
"""Strategies run on the schedule of answers: they change only the newest blocks."""
_NOT_STEPS = ("reset", "clean", *SCHEDULED)
"""Strategies with a role of their own, never run as a cascade step."""


@dataclass(slots=True)
class Cascade:
    """The built strategies, by the role each plays."""

    steps: list[tuple[str, Runner]]
    """Run in order when compaction is due (everything but the door's and the reset)."""
    reset: tuple[str, Runner] | None
    """The last resort, when the steps cannot reach the target."""
    door: list[tuple[str, Runner]]
    """Run on each new tool output as it is appended, in order (``clean``, ``truncate``)."""
    digest: Runner | None = None
    """Freezes each answered tool output into a digest (``digest`` in the list)."""
    digest_config: DigestConfig | None = None
    """Its settings: which outputs it will change (where the next edit is)."""
    shorten: Runner | None = None
    """Shortens each answered assistant message (``shorten`` in the list)."""
    shorten_config: ShortenConfig | None = None
    """Its settings: which message it will change (where the next edit is)."""
    pre: PreSummarizer | None = None
    """Background summaries, with a model summarizer."""
    summarize: SummarizeConfig | None = None
    """The summarize step wired to ``pre``."""

    def close(self) -> None:
        """Stop background work (pending pre-summaries are dropped)."""
        if self.pre is not None:
            self.pre.close()


def build_cascade(
    specs: Sequence[StrategySpec],
    *,
    tokenizer: Tokenizer,
    summarizer: Summarizer | None,
    presummarize_at: float | None,
) -> Cascade:
    """Runners for ``specs``; ``summarize`` pre-summarizes when a summarizer and
    ``presummarize_at`` are both given."""
    pre: list[tuple[PreSummarizer, SummarizeConfig]] = []
    names = list(specs)
    if summarizer is not None and presummarize_at is not None:
        names = [_with_presummary(s, summarizer, pre) for s in names]
    built = [build_runner(s, tokenizer=tokenizer, summarizer=summarizer) for s in names]
    cascade = Cascade(
        steps=[(n, r) for n, r in built if n not in _NOT_STEPS],
        reset=next(((n, r) for n, r in built if n == "reset"), None),
        door=[(n, r) for n, r in built if n in DOOR],
        digest=next((r for n, r in built if n == "digest"), None),
        shorten=next((r for n, r in built if n == "shorten"), None),
    )
    if cascade.digest is not None:
        config = next((s for s in names if isinstance(s, DigestConfig)), DigestConfig())
        cascade.digest_config = config
    if cascade.shorten is not None:
        short = next((s for s in names if isinstance(s, ShortenConfig)), ShortenConfig())
        cascade.shorten_config = short
    if pre:
        cascade.pre, cascade.summarize = pre[-1]
    return cascade


def _with_presummary(
    spec: StrategySpec,
    summarizer: Summarizer,
    pre: list[tuple[PreSummarizer, SummarizeConfig]],
) -> StrategySpec:
    """The summarize strategy wired to a background pre-summarizer; others unchanged."""
    if spec == "summarize":
        spec = SummarizeConfig(summarizer=summarizer)
    if not isinstance(spec, SummarizeConfig) or spec.presummarized is not None:
        return spec
    presummarizer = PreSummarizer(spec.summarizer or summarizer, spec.timeout)
    wired = dataclasses.replace(spec, presummarized=presummarizer.take)
    pre.append((presummarizer, wired))
    return wired
