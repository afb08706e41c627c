"""The strategies one manager runs, built once from its policy or its ``strategies`` list.

``truncate`` runs at the door (each new tool result), ``reset`` only as the last resort,
the others in order when the planner compacts; with a model summarizer, ``summarize`` is
wired to a background pre-summarizer so compaction does not wait for the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ctxbudget.compaction.strategies import StrategySpec, build_runner
from ctxbudget.compaction.strategies.base import Runner
from ctxbudget.compaction.strategies.summarize import SummarizeConfig
from ctxbudget.compaction.summarizers import PreSummarizer, Summarizer
from ctxbudget.tokens.backends import Tokenizer

__all__ = ["Cascade", "build_cascade"]


@dataclass(slots=True)
class Cascade:
    """The built strategies, by the role each plays."""

    steps: list[tuple[str, Runner]]
    """Run in order when compaction is due (everything but the door's and the reset)."""
    reset: tuple[str, Runner] | None
    """The last resort, when the steps cannot reach the target."""
    door: Runner | None
    """Truncates each new tool result as it is appended (``truncate`` in the list)."""
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
        steps=[(n, r) for n, r in built if n != "reset"],
        reset=next(((n, r) for n, r in built if n == "reset"), None),
        door=next((r for n, r in built if n == "truncate"), None),
    )
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
