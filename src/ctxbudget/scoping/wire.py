"""How each provider lets a request narrow the tools without changing the tool list.

* OpenAI Chat Completions and Responses: ``tool_choice`` of type ``allowed_tools`` names the
  tools the model may call (``mode`` ``auto``: it may also answer in text; ``required``: it
  must call one of them) while ``tools`` keeps every schema, so the cached prefix holds.
  Chat nests the list (``{"type": "allowed_tools", "allowed_tools": {"mode", "tools"}}``,
  tools as ``{"type": "function", "function": {"name"}}``); Responses is flat
  (``{"type": "allowed_tools", "mode", "tools"}``, tools as ``{"type": "function", "name"}``).
* Anthropic: ``tool_choice`` cannot name a subset (``auto``, ``any``, ``tool``, ``none``), and
  changing it invalidates the cached messages. The cache-stable way is deferred loading
  (beta ``advanced-tool-use-2025-11-20``): tools marked ``defer_loading: true`` stay out of
  the prompt prefix until the model finds them with the tool search tool, which is itself
  never deferred. The marks depend on the registry only, not the phase, so the bytes stay.

Pure functions over tool specs; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from ctxbudget.convert import from_anthropic_tools, to_anthropic_tools
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import ToolSpec

__all__ = [
    "ANTHROPIC_TOOL_SEARCH_BETA",
    "TOOL_SEARCH_TOOLS",
    "AllowedMode",
    "ToolSearch",
    "allowed_tools_choice",
    "anthropic_deferred",
]

AllowedMode = Literal["auto", "required"]
"""``auto``: the model may call an allowed tool or answer; ``required``: it must call one."""
ToolSearch = Literal["bm25", "regex"]
"""Which Anthropic tool search tool finds deferred tools (natural language or regex)."""

ANTHROPIC_TOOL_SEARCH_BETA = "advanced-tool-use-2025-11-20"
"""The ``anthropic-beta`` header value deferred loading and tool search need."""
TOOL_SEARCH_TOOLS: dict[str, dict[str, str]] = {
    "bm25": {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"},
    "regex": {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
}
"""Anthropic's server-side tool search tools, by variant."""


def allowed_tools_choice(
    names: Sequence[str], provider: str, mode: AllowedMode = "auto"
) -> dict[str, Any]:
    """The OpenAI ``tool_choice`` restricting calls to ``names`` (Chat or Responses shape)."""
    if mode not in ("auto", "required"):
        raise ConfigError(f"allowed-tools mode must be 'auto' or 'required', got {mode!r}")
    if provider == "openai_responses":
        return {
            "type": "allowed_tools",
            "mode": mode,
            "tools": [{"type": "function", "name": n} for n in names],
        }
    if provider in ("openai", "openai_chat"):
        return {
            "type": "allowed_tools",
            "allowed_tools": {
                "mode": mode,
                "tools": [{"type": "function", "function": {"name": n}} for n in names],
            },
        }
    raise ConfigError(f"allowed_tools is an OpenAI option; provider {provider!r} has none")


def anthropic_deferred(
    tools: Sequence[ToolSpec], loaded: Sequence[str], search: ToolSearch = "bm25"
) -> list[ToolSpec]:
    """Anthropic tool specs: ``loaded`` as they are, the rest ``defer_loading``, plus search.

    The search tool comes first so the list's bytes depend on the registry only.
    """
    if search not in TOOL_SEARCH_TOOLS:
        raise ConfigError(f"tool search must be 'bm25' or 'regex', got {search!r}")
    if not tools:
        return []
    keep = set(loaded)
    wire = to_anthropic_tools(list(tools))
    for spec, schema in zip(tools, wire, strict=True):
        if spec.name not in keep:
            schema["defer_loading"] = True
    return from_anthropic_tools([dict(TOOL_SEARCH_TOOLS[search]), *wire])
