"""Route a query to knowledge domains and tool groups: rules first, embeddings optional.

A feature: may import the manager and everything below it, never another feature.

::

    router = KeywordRouter([Rule(name="refunds", keywords=("refund", "cancel"),
                                 domains=("billing",), tool_groups=("orders",))],
                           fallback=EmbeddingRouter(routes, embed=my_embed))
    decision = router.route(user_message)   # RoutingDecision; decision.as_dict() for metrics
    scope.follow(decision)                  # the tool groups become the scope's phase

See docs/scoping.md.
"""

from ctxbudget.routing.decision import Router, RoutingDecision, routing_accuracy
from ctxbudget.routing.embedding import Embed, EmbeddingRouter, Route, hashing_embedder
from ctxbudget.routing.rules import KeywordRouter, Rule

__all__ = [
    "Embed",
    "EmbeddingRouter",
    "KeywordRouter",
    "Route",
    "Router",
    "RoutingDecision",
    "Rule",
    "hashing_embedder",
    "routing_accuracy",
]
