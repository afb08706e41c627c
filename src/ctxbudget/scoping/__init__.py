"""Dynamic tool scoping: only the tools of the current task phase, without busting the cache.

A feature: may import the manager and everything below it, never another feature.

::

    registry = ToolRegistry.build(TOOLS, groups={...}, phases={...}, always=["core"])
    scope = ToolScope(registry, mode="cache_stable")   # or "remove"
    scope.set_phase("edit")                            # or scope.follow(router.route(query))
    body, report = scope.prepare(manager, "openai")    # tools set, tool_choice constrained

See docs/scoping.md.
"""

from ctxbudget.scoping.costs import ToolCost, ToolCosts, tool_costs
from ctxbudget.scoping.pricing import PhaseChange, price_change
from ctxbudget.scoping.registry import Phase, ToolGroup, ToolRegistry, read_tool_specs
from ctxbudget.scoping.scope import ScopeMode, ScopeReport, ToolScope
from ctxbudget.scoping.wire import (
    ANTHROPIC_TOOL_SEARCH_BETA,
    TOOL_SEARCH_TOOLS,
    AllowedMode,
    ToolSearch,
    allowed_tools_choice,
    anthropic_deferred,
)

__all__ = [
    "ANTHROPIC_TOOL_SEARCH_BETA",
    "TOOL_SEARCH_TOOLS",
    "AllowedMode",
    "Phase",
    "PhaseChange",
    "ScopeMode",
    "ScopeReport",
    "ToolCost",
    "ToolCosts",
    "ToolGroup",
    "ToolRegistry",
    "ToolScope",
    "ToolSearch",
    "allowed_tools_choice",
    "anthropic_deferred",
    "price_change",
    "read_tool_specs",
    "tool_costs",
]
