"""Clear tool results (observation masking): replace old tool outputs by a short note.

Old observations are most of an agent's context and rarely read again; the calls and the
model's own reasoning carry the thread. Masking them, oldest first, frees the most for the
least information lost (the placeholder says what ran and how to recall it), and keeps
every call paired with its result. Modelled on Anthropic's ``clear_tool_uses`` context
edit: ``keep`` latest results, ``exclude_tools``, ``clear_at_least`` (do nothing unless
that much can be freed, so the cache is not broken for crumbs), optional clearing of the
calls' inputs. Reasoning may be dropped too, but never from the latest assistant item,
and opaque (signed, redacted, encrypted) reasoning never from the current turn, which
Anthropic and OpenAI require back verbatim during tool use. Text-only agents'
observations (user messages marked ``TOOL_RESULTS``, see ``is_text_observation``) are
cleared the same way, whole.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ctxbudget.compaction.strategies._mechanical import (
    TEXT_OBSERVATION,
    Content,
    ResultRef,
    call_label,
    is_text_observation,
    replace_item,
    result_refs,
    result_tokens,
    tail_ids,
    with_contents,
)
from ctxbudget.compaction.strategies.base import CompactionInput, editable
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import (
    Item,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from ctxbudget.session.log import Edit

__all__ = ["ClearToolResultsConfig", "propose"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearToolResultsConfig:
    """Replace old tool results by placeholders, oldest first."""

    kind: Literal["clear_tool_results"] = "clear_tool_results"
    keep_last: int = 3
    """Latest tool results kept verbatim (results, counted over the whole view)."""
    exclude_tools: tuple[str, ...] = ()
    """Tools whose results are never cleared (e.g. ``("memory",)``)."""
    clear_at_least: int = 0
    """Propose nothing unless at least this many tokens can be freed (tokens)."""
    clear_tool_inputs: bool = False
    """Also replace the cleared calls' arguments by ``{}``."""
    clear_reasoning: bool = False
    """Also drop reasoning from the assistant items of cleared exchanges."""

    def __post_init__(self) -> None:
        if self.kind != "clear_tool_results":
            raise ConfigError(
                f"ClearToolResultsConfig.kind must be 'clear_tool_results', got {self.kind!r}"
            )
        for name in ("keep_last", "clear_at_least"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be an int >= 0, got {value!r}")
        tools: object = self.exclude_tools
        if not isinstance(tools, tuple | list) or not all(isinstance(t, str) for t in tools):
            raise ConfigError(
                f"exclude_tools must be a tuple of tool names, e.g. ('memory',), got {tools!r}"
            )
        object.__setattr__(self, "exclude_tools", tuple(tools))


def _placeholder(ref: ResultRef, tokens: int, inputs_cleared: bool) -> str:
    if ref.index == TEXT_OBSERVATION:
        return (
            f"[environment output cleared to save context: {tokens:,} tokens. "
            f'Full text: recall("{ref.item.id}")]'
        )
    what = f"{call_label(ref.call)} → {tokens:,} tokens"
    if inputs_cleared and ref.caller is not None:
        return (
            f"[tool result cleared to save context: {what}; the call's arguments were cleared "
            f'too. Full text: recall("{ref.item.id}"), arguments: recall("{ref.caller.id}")]'
        )
    return f'[tool result cleared to save context: {what}. Full text: recall("{ref.item.id}")]'


def _current_turn(items: tuple[Item, ...]) -> tuple[set[str], str | None]:
    """Ids of the assistant items after the last real user message, and the latest one's."""
    start = 0
    for index, item in enumerate(items):
        if item.role == "user" and not item.tool_results and not is_text_observation(item):
            start = index + 1
    turn = {i.id for i in items[start:] if i.role == "assistant"}
    latest = next((i.id for i in reversed(items) if i.role == "assistant"), None)
    return turn, latest


def _opaque(part: ReasoningPart) -> bool:
    return bool(part.signature or part.redacted_data or part.encrypted_content)


class _Plan:
    """Changes planned so far, per item, and the tokens they free."""

    def __init__(self, config: ClearToolResultsConfig, view: CompactionInput) -> None:
        self.config, self.view = config, view
        self.turn, self.latest = _current_turn(view.items)
        self.tail = tail_ids(view)
        self.results: dict[str, dict[int, Content]] = {}
        self.calls: dict[str, set[str]] = {}
        self.originals: dict[str, Item] = {}
        self.gains: dict[str, int] = {}

    def parts(self, item: Item) -> tuple[Part, ...]:
        parts = with_contents(item, self.results.get(item.id, {}))
        cleared = self.calls.get(item.id)
        if cleared is None:
            return parts
        out: list[Part] = []
        for part in parts:
            if isinstance(part, ReasoningPart) and self._may_drop(item, part):
                continue
            if (
                isinstance(part, ToolCallPart)
                and part.id in cleared
                and self.config.clear_tool_inputs
                and part.arguments.strip() not in ("", "{}")
            ):
                out.append(replace(part, arguments="{}"))
            else:
                out.append(part)
        return tuple(out)

    def _may_drop(self, item: Item, part: ReasoningPart) -> bool:
        if not self.config.clear_reasoning or item.id == self.latest:
            return False
        return not (item.id in self.turn and _opaque(part))

    def touch(self, item: Item) -> None:
        self.originals[item.id] = item
        new = item.with_(parts=self.parts(item))
        self.gains[item.id] = self.view.count(item) - self.view.count(new)

    def caller_editable(self, ref: ResultRef) -> bool:
        """Whether the assistant item making ``ref``'s call may be changed."""
        caller = ref.caller
        return caller is not None and editable(caller, self.view) and caller.id not in self.tail

    def inputs_cleared(self, ref: ResultRef) -> bool:
        """Whether clearing ``ref`` also clears its call's (non-empty) arguments."""
        return (
            self.config.clear_tool_inputs
            and ref.call is not None
            and ref.call.arguments.strip() not in ("", "{}")
            and self.caller_editable(ref)
        )

    def add(self, ref: ResultRef, placeholder: str) -> None:
        self.results.setdefault(ref.item.id, {})[ref.index] = placeholder
        self.touch(ref.item)
        if not (self.config.clear_tool_inputs or self.config.clear_reasoning):
            return
        if ref.caller is not None and ref.call is not None and self.caller_editable(ref):
            self.calls.setdefault(ref.caller.id, set()).add(ref.call.id)
            self.touch(ref.caller)

    def edits(self) -> tuple[Edit, ...]:
        out: list[Edit] = []
        for item in self.view.items:
            parts = self.parts(item)
            if item.id not in self.originals or parts == item.parts:
                continue
            note = "tool result cleared" if item.id in self.results else "cleared exchange's call"
            out.append(replace_item(item, parts, "placeholder", "clear", note))
        return tuple(out)


def propose(config: ClearToolResultsConfig, view: CompactionInput) -> tuple[Edit, ...]:
    """Clear tool results oldest first until ``view.need`` (and ``clear_at_least``) is freed."""
    if view.need <= 0:
        return ()
    target = max(view.need, config.clear_at_least)
    refs = result_refs(view.items, text_observations=True)
    refs = refs[: max(len(refs) - config.keep_last, 0)]
    plan = _Plan(config, view)
    for ref in refs:
        if ref.item.id in plan.tail or not editable(ref.item, view):
            continue
        if ref.call is not None and ref.call.name in config.exclude_tools:
            continue
        tokens = result_tokens(view, ref)
        placeholder = _placeholder(ref, tokens, plan.inputs_cleared(ref))
        probe: Part = (
            TextPart(text=placeholder)
            if ref.index == TEXT_OBSERVATION
            else ToolResultPart(call_id=ref.part.call_id, content=placeholder)
        )
        if view.count(ref.item.with_(parts=(probe,))) >= tokens:
            continue  # already short (or already cleared): nothing to gain
        plan.add(ref, placeholder)
        if sum(plan.gains.values()) >= target:
            break
    if sum(plan.gains.values()) < config.clear_at_least:
        return ()
    return plan.edits()
