"""Route by keywords and patterns first: cheap, predictable and easy to review.

A rule matches when any of its keywords appears in the query as a whole word or phrase
(case-insensitive), or its regular expression (as written) matches. Each target (domain
or tool group) scores the summed weight of its matching rules; every target with a positive
score is chosen. When nothing matches, the optional ``fallback`` router decides (an embedding
router, say), else the defaults are used with method ``default``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ctxbudget.errors import ConfigError
from ctxbudget.routing.decision import Router, RoutingDecision

__all__ = ["KeywordRouter", "Rule"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """When a query mentions these words, send it to these domains and tool groups."""

    name: str
    """Shown in decisions, so a wrong route can be traced to its rule."""
    keywords: tuple[str, ...] = ()
    """Words or phrases; any one matching (whole words, any case) fires the rule."""
    pattern: str | None = None
    """A regular expression (searched as written: add ``(?i)`` to ignore case) that also fires
    the rule."""
    domains: tuple[str, ...] = ()
    """Knowledge domains it routes to."""
    tool_groups: tuple[str, ...] = ()
    """Tool groups it routes to."""
    weight: float = 1.0
    """Added to each target's score when the rule fires."""

    def __post_init__(self) -> None:
        if not self.keywords and self.pattern is None:
            raise ConfigError(f"rule {self.name!r} needs keywords or a pattern")
        if not self.domains and not self.tool_groups:
            raise ConfigError(f"rule {self.name!r} routes nowhere: give domains or tool_groups")
        if self.weight <= 0:
            raise ConfigError(f"rule {self.name!r}: weight must be positive, got {self.weight}")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ConfigError(f"rule {self.name!r}: bad pattern: {exc}") from exc


class KeywordRouter:
    """Rules first, then a fallback router or the defaults."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        default_domains: Sequence[str] = (),
        default_groups: Sequence[str] = (),
        fallback: Router | None = None,
    ) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ConfigError("rule names must be unique")
        self.rules = tuple(rules)
        self.default_domains = tuple(default_domains)
        self.default_groups = tuple(default_groups)
        self.fallback = fallback
        self._compiled = [(rule, _matcher(rule)) for rule in self.rules]

    def route(self, query: str) -> RoutingDecision:
        """Where ``query`` goes: every target of the rules it fires."""
        fired = [rule for rule, match in self._compiled if match.search(query)]
        if not fired:
            if self.fallback is not None:
                return self.fallback.route(query)
            return RoutingDecision(
                query=query,
                domains=self.default_domains,
                tool_groups=self.default_groups,
                method="default",
            )
        domains: dict[str, float] = {}
        groups: dict[str, float] = {}
        for rule in fired:
            for d in rule.domains:
                domains[d] = domains.get(d, 0.0) + rule.weight
            for g in rule.tool_groups:
                groups[g] = groups.get(g, 0.0) + rule.weight
        scores = sorted(
            [(f"domain:{k}", v) for k, v in domains.items()]
            + [(f"tools:{k}", v) for k, v in groups.items()],
            key=lambda kv: (-kv[1], kv[0]),
        )
        return RoutingDecision(
            query=query,
            domains=_ranked(domains) or self.default_domains,
            tool_groups=_ranked(groups) or self.default_groups,
            method="rules",
            scores=tuple(scores),
            matched=tuple(r.name for r in fired),
        )


def _ranked(scores: dict[str, float]) -> tuple[str, ...]:
    return tuple(k for k, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])))


def _matcher(rule: Rule) -> _Match:
    words = [r"(?<!\w)" + re.escape(k.strip()) + r"(?!\w)" for k in rule.keywords if k.strip()]
    keywords = re.compile("|".join(words), re.IGNORECASE) if words else None
    pattern = re.compile(rule.pattern) if rule.pattern is not None else None
    return _Match(keywords, pattern)


@dataclass(frozen=True, slots=True)
class _Match:
    keywords: re.Pattern[str] | None
    pattern: re.Pattern[str] | None

    def search(self, text: str) -> bool:
        return any(p is not None and p.search(text) for p in (self.keywords, self.pattern))
