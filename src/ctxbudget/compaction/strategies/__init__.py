"""Compaction strategies, one per module, and the single registry that builds them.

A policy names strategies (``"dedup"``, ``"clear_tool_results"``...) or passes configured
instances; :func:`build_runner` turns either into a runner the planner calls. An unknown
name or a config of the wrong type raises :class:`~ctxbudget.errors.ConfigError`: a typo
never silently means "no compaction".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeAlias

from ctxbudget.compaction.strategies import (
    clean,
    clear_tool_results,
    dedup,
    digest,
    importance,
    reset,
    shorten,
    sliding_window,
    summarize,
    truncate,
)
from ctxbudget.compaction.strategies.base import CompactionInput, Proposal, Runner
from ctxbudget.compaction.strategies.clean import CleanConfig
from ctxbudget.compaction.strategies.clear_tool_results import ClearToolResultsConfig
from ctxbudget.compaction.strategies.dedup import DedupConfig
from ctxbudget.compaction.strategies.digest import DigestConfig
from ctxbudget.compaction.strategies.importance import ImportanceConfig
from ctxbudget.compaction.strategies.reset import ResetConfig
from ctxbudget.compaction.strategies.shorten import ShortenConfig
from ctxbudget.compaction.strategies.sliding_window import SlidingWindowConfig
from ctxbudget.compaction.strategies.summarize import SummarizeConfig
from ctxbudget.compaction.strategies.truncate import TruncateConfig
from ctxbudget.compaction.summarizers import Summarizer
from ctxbudget.errors import ConfigError
from ctxbudget.tokens.backends import Tokenizer

__all__ = [
    "STRATEGY_KINDS",
    "CleanConfig",
    "ClearToolResultsConfig",
    "DedupConfig",
    "DigestConfig",
    "ImportanceConfig",
    "ResetConfig",
    "ShortenConfig",
    "SlidingWindowConfig",
    "StrategyConfig",
    "StrategySpec",
    "SummarizeConfig",
    "TruncateConfig",
    "build_runner",
]

StrategyConfig: TypeAlias = (
    DedupConfig
    | CleanConfig
    | TruncateConfig
    | DigestConfig
    | ShortenConfig
    | ClearToolResultsConfig
    | SlidingWindowConfig
    | ImportanceConfig
    | SummarizeConfig
    | ResetConfig
)
StrategySpec: TypeAlias = str | StrategyConfig
"""A strategy by name (default settings) or a configured instance."""


def _edits_only(
    fn: Callable[[Any, CompactionInput], tuple[Any, ...]],
) -> Callable[[Any, CompactionInput], Proposal]:
    def run(config: Any, view: CompactionInput) -> Proposal:
        return Proposal(edits=fn(config, view))

    return run


_REGISTRY: dict[str, tuple[type[Any], Callable[[Any, CompactionInput], Proposal]]] = {
    "dedup": (DedupConfig, _edits_only(dedup.propose)),
    "clean": (CleanConfig, _edits_only(clean.propose)),
    "truncate": (TruncateConfig, _edits_only(truncate.propose)),
    "digest": (DigestConfig, _edits_only(digest.propose)),
    "shorten": (ShortenConfig, _edits_only(shorten.propose)),
    "clear_tool_results": (ClearToolResultsConfig, _edits_only(clear_tool_results.propose)),
    "sliding_window": (SlidingWindowConfig, _edits_only(sliding_window.propose)),
    "importance": (ImportanceConfig, _edits_only(importance.propose)),
    "summarize": (SummarizeConfig, summarize.propose_with_status),
    "reset": (ResetConfig, reset.propose_reset),
}

STRATEGY_KINDS: tuple[str, ...] = tuple(_REGISTRY)
"""Every strategy name, in the default order of aggression."""


def build_runner(
    spec: StrategySpec,
    *,
    tokenizer: Tokenizer | None = None,
    summarizer: Summarizer | None = None,
) -> tuple[str, Runner]:
    """``(name, runner)`` for a strategy name or config; injects the session's tokenizer
    and summarizer into configs that need them and were not given one."""
    if isinstance(spec, str):
        entry = _REGISTRY.get(spec)
        if entry is None:
            raise ConfigError(
                f"unknown compaction strategy {spec!r}; expected one of {', '.join(_REGISTRY)}"
            )
        config: Any = entry[0]()
    else:
        config = spec
    kind = getattr(config, "kind", None)
    entry = _REGISTRY.get(str(kind))
    if entry is None or not isinstance(config, entry[0]):
        raise ConfigError(
            f"not a strategy config: {config!r}; pass a name ({', '.join(_REGISTRY)}) or one "
            "of the *Config classes"
        )
    fields = {f.name for f in dataclasses.fields(config)}
    if "tokenizer" in fields and config.tokenizer is None and tokenizer is not None:
        config = dataclasses.replace(config, tokenizer=tokenizer)
    if "summarizer" in fields and config.summarizer is None and summarizer is not None:
        config = dataclasses.replace(config, summarizer=summarizer)
    propose = entry[1]
    frozen = config

    def runner(view: CompactionInput) -> Proposal:
        return propose(frozen, view)

    return str(kind), runner
