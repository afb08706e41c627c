"""Routing: rules first, an embedding fallback, decisions ready for the metrics record."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from ctxbudget.errors import ConfigError, UsageError
from ctxbudget.routing import (
    EmbeddingRouter,
    KeywordRouter,
    Route,
    RoutingDecision,
    Rule,
    hashing_embedder,
    routing_accuracy,
)

RULES = [
    Rule(
        name="cancel", keywords=("cancel", "refund"), domains=("policy",), tool_groups=("modify",)
    ),
    Rule(
        name="book",
        keywords=("book", "new flight"),
        domains=("fares",),
        tool_groups=("search", "book"),
    ),
    Rule(name="ids", pattern=r"\b[A-Z0-9]{6}\b", tool_groups=("lookup",), weight=0.5),
]


def test_rules_route_to_every_fired_target_ranked_by_weight() -> None:
    router = KeywordRouter(RULES, default_groups=("lookup",))
    decision = router.route("Please CANCEL reservation ZFA04Y and refund me")
    assert decision.method == "rules"
    assert decision.matched == ("cancel", "ids")
    assert decision.tool_groups == ("modify", "lookup")
    assert decision.domains == ("policy",)
    assert dict(decision.scores) == {"domain:policy": 1.0, "tools:modify": 1.0, "tools:lookup": 0.5}


def test_keywords_match_whole_words_only() -> None:
    router = KeywordRouter(RULES, default_groups=("lookup",))
    assert router.route("the bookkeeping is late").method == "default"
    assert router.route("book it").tool_groups == ("book", "search")


def test_no_match_falls_back_then_to_defaults() -> None:
    default = KeywordRouter(RULES, default_domains=("general",), default_groups=("lookup",))
    decision = default.route("hello there")
    assert (decision.method, decision.domains, decision.tool_groups) == (
        "default",
        ("general",),
        ("lookup",),
    )
    embed = hashing_embedder(512)
    routes = [
        Route(
            name="baggage",
            examples=("add a checked bag", "baggage allowance"),
            tool_groups=("modify",),
        ),
        Route(name="weather", examples=("is it raining", "weather forecast"), domains=("weather",)),
    ]
    fallback = KeywordRouter(RULES, fallback=EmbeddingRouter(routes, embed, threshold=0.2))
    decision = fallback.route("how many checked baggage pieces may I add")
    assert decision.method == "embedding"
    assert decision.matched == ("baggage",)
    assert decision.tool_groups == ("modify",)
    assert decision.scores[0][0] == "baggage"


def test_embedding_router_defaults_below_the_threshold() -> None:
    routes = [Route(name="bags", examples=("checked baggage allowance",), tool_groups=("modify",))]
    router = EmbeddingRouter(routes, hashing_embedder(), threshold=0.9, default_groups=("lookup",))
    decision = router.route("completely unrelated words")
    assert decision.method == "default"
    assert decision.tool_groups == ("lookup",)
    assert [name for name, _ in decision.scores] == ["bags"]


def test_a_bad_embedding_function_is_a_clear_error() -> None:
    def short(texts: Sequence[str]) -> list[list[float]]:
        return [[1.0]]

    with pytest.raises(UsageError, match="returned 1 vectors for 2 texts"):
        EmbeddingRouter([Route(name="r", examples=("a", "b"))], short)


def test_decisions_serialize_for_metrics() -> None:
    decision = KeywordRouter(RULES).route("cancel ABC123")
    data = json.loads(json.dumps(decision.as_dict()))
    assert data["method"] == "rules"
    assert data["tool_groups"] == ["modify", "lookup"]
    assert data["matched"] == ["cancel", "ids"]
    assert data["scores"]["tools:lookup"] == 0.5


def test_routing_accuracy_counts_decisions_that_covered_the_needed_groups() -> None:
    def d(*groups: str) -> RoutingDecision:
        return RoutingDecision(query="q", domains=(), tool_groups=groups, method="rules")

    decisions = [d("a", "b"), d("a"), d("c")]
    assert routing_accuracy(decisions, [["a"], ["b"], ["c"]]) == pytest.approx(2 / 3)
    assert routing_accuracy([], []) is None
    with pytest.raises(UsageError, match="one expected group list per decision"):
        routing_accuracy(decisions, [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "r", "tool_groups": ("a",)}, "needs keywords or a pattern"),
        ({"name": "r", "keywords": ("x",)}, "routes nowhere"),
        (
            {"name": "r", "keywords": ("x",), "tool_groups": ("a",), "weight": 0},
            "weight must be positive",
        ),
        ({"name": "r", "pattern": "(", "tool_groups": ("a",)}, "bad pattern"),
    ],
)
def test_bad_rules_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Rule(**kwargs)  # type: ignore[arg-type]
