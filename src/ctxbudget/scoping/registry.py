"""Every tool an agent may use, in one stable order, sorted into groups and task phases.

The order is the registration order and never changes: the cache-stable mode sends the whole
list on every request, so its bytes must not move, and the remove mode sends a subset in the
same relative order, so two phases with the same tools render the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ctxbudget.convert.request import read_tools
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import ToolSpec

__all__ = ["Phase", "ToolGroup", "ToolRegistry", "read_tool_specs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolGroup:
    """Tools that belong together (e.g. ``files``: read, write, list)."""

    name: str
    """Group name, as phases and routing rules refer to it."""
    tools: tuple[str, ...]
    """Names of its tools."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    """A stage of the task (explore, edit, test, deploy...) and the groups it needs."""

    name: str
    """Phase name."""
    groups: tuple[str, ...]
    """Groups whose tools the model may use in this phase (the ``always`` groups are added)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolRegistry:
    """Tools, groups, phases and the groups every phase gets; checked when built."""

    tools: tuple[ToolSpec, ...]
    """Every tool, in the one stable order."""
    groups: tuple[ToolGroup, ...]
    """The groups."""
    phases: tuple[Phase, ...]
    """The phases; the first is the default one."""
    always: tuple[str, ...] = ()
    """Groups offered in every phase (e.g. ``core``: think, ask the user)."""

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def build(
        cls,
        tools: Sequence[Mapping[str, Any] | ToolSpec],
        *,
        groups: Mapping[str, Sequence[str]],
        phases: Mapping[str, Sequence[str]],
        always: Sequence[str] = (),
    ) -> ToolRegistry:
        """A registry from tool schemas (OpenAI or Anthropic dicts, or ``ToolSpec``)."""
        return cls(
            tools=tuple(read_tool_specs(tools)),
            groups=tuple(ToolGroup(name=g, tools=tuple(t)) for g, t in groups.items()),
            phases=tuple(Phase(name=p, groups=tuple(g)) for p, g in phases.items()),
            always=tuple(always),
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Every tool name, in order."""
        return tuple(t.name for t in self.tools)

    def phase(self, name: str) -> Phase:
        """The phase called ``name``; ConfigError naming the known ones otherwise."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        known = ", ".join(p.name for p in self.phases)
        raise ConfigError(f"unknown phase {name!r}; this registry has: {known}")

    def tools_of(self, groups: Sequence[str]) -> tuple[str, ...]:
        """Names of the tools of ``groups`` plus the ``always`` groups, in registry order."""
        by_name = {g.name: g for g in self.groups}
        wanted: set[str] = set()
        for name in (*self.always, *groups):
            group = by_name.get(name)
            if group is None:
                known = ", ".join(by_name)
                raise ConfigError(f"unknown tool group {name!r}; this registry has: {known}")
            wanted.update(group.tools)
        return tuple(n for n in self.names if n in wanted)

    def phase_tools(self, name: str) -> tuple[str, ...]:
        """Names of the tools phase ``name`` offers, in registry order."""
        return self.tools_of(self.phase(name).groups)

    def specs(self, names: Sequence[str]) -> tuple[ToolSpec, ...]:
        """The specs of ``names``, in registry order."""
        wanted = set(names)
        return tuple(t for t in self.tools if t.name in wanted)

    def covering_phase(self, groups: Sequence[str]) -> str | None:
        """The phase offering every tool of ``groups`` with the fewest tools, if any."""
        need = set(self.tools_of(groups))
        fits = [(len(self.phase_tools(p.name)), i, p.name) for i, p in enumerate(self.phases)]
        fits = [f for f in fits if need <= set(self.phase_tools(f[2]))]
        return min(fits)[2] if fits else None


read_tool_specs = read_tools
"""Tool specs from any provider's schemas (:func:`ctxbudget.convert.request.read_tools`)."""


def _check(registry: ToolRegistry) -> None:
    names = registry.names
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"tool names must be unique; given more than once: {', '.join(twice)}")
    known = set(names)
    group_names = [g.name for g in registry.groups]
    if len(set(group_names)) != len(group_names):
        raise ConfigError("tool group names must be unique")
    for group in registry.groups:
        missing = [t for t in group.tools if t not in known]
        if missing:
            raise ConfigError(
                f"tool group {group.name!r} names tools that are not registered: "
                f"{', '.join(missing)}; register their schemas or fix the names"
            )
    if not registry.phases:
        raise ConfigError("a tool registry needs at least one phase (e.g. {'work': [...]})")
    phase_names = [p.name for p in registry.phases]
    if len(set(phase_names)) != len(phase_names):
        raise ConfigError("phase names must be unique")
    for phase in registry.phases:
        registry.tools_of(phase.groups)  # raises on an unknown group
    registry.tools_of(())  # the always groups exist
