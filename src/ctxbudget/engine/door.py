"""The door: nothing enters the log that would make every later request fail.

Every message appended (by the caller, the wrappers' history sync or an importer) passes
here first, the whole batch before any of it is added. What no provider accepts is refused
with a :class:`~ctxbudget.errors.ConversionError` naming the message, the field and what
to do, or, with ``repair=True``, repaired in the stated way:

=================================  ============================  ==============================
input                              refused (default)             repaired (``repair=True``)
=================================  ============================  ==============================
a lone surrogate (invalid          ConversionError at its path   each one becomes U+FFFD
Unicode) anywhere in a message
nesting deeper than 100 levels     ConversionError               (refused)
a tool result whose call is not    ConversionError               (refused: no call to pair it)
in the session, or a second
result for one call
a tool-call id used twice in one   ConversionError               renamed ``<id>_dup2``...;
turn (or while its call is open)                                 its result follows
the id of an earlier, answered     renamed ``<id>_dup2``...      (the same): Anthropic refuses
call                               (OpenAI accepts repeats)      two tool_use blocks of one id
an empty tool-call id              ConversionError               (refused)
a system message with non-text     ConversionError               (refused)
parts; a call or reasoning outside
an assistant message, a result
outside a user or tool message
a message (or new calls) while     ConversionError               a marked error result for each
calls are unanswered                                             open call is put first
=================================  ============================  ==============================

Pure: the door's state is which call ids the session holds and which are still open.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctxbudget.errors import ConversionError
from ctxbudget.session.items import (
    Component,
    Item,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_from_dict,
    item_to_dict,
)

__all__ = ["MAX_DEPTH", "UNANSWERED_NOTE", "Door", "check_json"]

MAX_DEPTH = 100
"""How deeply a message may nest (a real one nests about 6 levels; past ~1,000 no JSON
writer in Python can encode it)."""

UNANSWERED_NOTE = (
    "[ctxbudget: no result was recorded for this call before the conversation went on; "
    "treat it as not run]"
)
"""The result put in for an unanswered call when the door repairs (``repair=True``)."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_json(value: Any, path: str, *, repair: bool) -> Any:
    """``value`` unchanged when every string in it is valid Unicode and it nests at most
    :data:`MAX_DEPTH` levels; with ``repair``, a copy with each lone surrogate replaced by
    U+FFFD; else a ConversionError at the first bad place. Iterative: no depth recursion."""
    bad = _first_bad(value, path)
    if bad is None:
        return value
    where, what = bad
    if what == "depth" or not repair:
        raise ConversionError(_BAD[what], path=where)
    return _repaired(value)


_BAD = {
    "depth": f"nested more than {MAX_DEPTH} levels deep; no provider accepts such a message "
    "(flatten it, or send it as a JSON string)",
    "unicode": "not valid Unicode (a lone surrogate, e.g. from a file name read with "
    "surrogateescape or JSON holding a lone \\ud83d); no provider accepts it. Decode the "
    "text with errors='replace', or pass repair=True to have each one replaced by U+FFFD",
}


def _first_bad(value: Any, path: str) -> tuple[str, str] | None:
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            return where, "depth"
        if isinstance(node, str):
            if _SURROGATE.search(node):
                return where, "unicode"
        elif isinstance(node, Mapping):
            for key, child in node.items():
                if isinstance(key, str) and _SURROGATE.search(key):
                    return f"{where}.{key!a}", "unicode"
                stack.append((child, f"{where}.{key}", depth + 1))
        elif isinstance(node, list | tuple):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(node))
    return None


def _repaired(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_repaired(k): _repaired(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_repaired(v) for v in value]
    return value


@dataclass
class Door:
    """Which call ids one session holds and which are open; admits batches of items."""

    repair: bool = False
    """Repair what can be repaired (see the module table) instead of refusing it."""
    calls: set[str] = field(default_factory=set)
    """Every tool-call id in the session's log (retracted items aside)."""
    open: dict[str, str] = field(default_factory=dict)
    """Calls without a result yet: call id → the exchange of the item that made it."""
    renamed: dict[str, str] = field(default_factory=dict)
    """Repaired duplicate ids still open: the id the model used → the id in the log."""

    def admit(
        self,
        items: Sequence[Item],
        where: Callable[[int], str],
        new_id: Callable[[], str],
        *,
        checked: bool = False,
    ) -> list[Item]:
        """``items`` as they may enter (repaired, with placeholder results put in), or a
        ConversionError; the state moves only when the whole batch is admitted.
        ``where(i)``: how to name the message item ``i`` came from; ``new_id()``: a fresh
        item id for a placeholder; ``checked``: their text passed :func:`check_json` already
        (as wire messages)."""
        trial = Door(self.repair, set(self.calls), dict(self.open), dict(self.renamed))
        out: list[Item] = []
        for index, given in enumerate(items):
            item = given if checked else self._checked_text(given, where(index))
            out.extend(trial._pair(item, where(index), new_id))
        self.calls, self.open, self.renamed = trial.calls, trial.open, trial.renamed
        return out

    def forget(self, retracted: Sequence[Item], view: Sequence[Item]) -> None:
        """After a retraction: the calls ``retracted`` made are free again, and what is
        open is what the ``view`` left unanswered."""
        self.calls -= {c.id for item in retracted for c in item.tool_calls}
        self.open = {}
        for item in view:
            for call in item.tool_calls:
                self.open[call.id] = item.exchange_id or f"x:{item.id}"
            for result in item.tool_results:
                self.open.pop(result.call_id, None)
        self.renamed = {k: v for k, v in self.renamed.items() if v in self.open}

    def _checked_text(self, item: Item, where: str) -> Item:
        data = item_to_dict(item)
        checked = check_json(data, where, repair=self.repair)
        return item if checked is data else item_from_dict(checked)

    def _pair(self, item: Item, where: str, new_id: Callable[[], str]) -> list[Item]:
        out: list[Item] = []
        if item.role in ("system", "developer") and not all(
            isinstance(p, TextPart) for p in item.parts
        ):
            raise ConversionError(
                f"a {item.role} message holds {_kinds(item)}; system prompts take text only "
                "(put images, documents and tool traffic in user or assistant messages)",
                path=where,
            )
        if item.role != "assistant" and any(isinstance(p, ReasoningPart) for p in item.parts):
            raise ConversionError(
                f"a {item.role} message holds reasoning (thinking); only assistant messages do",
                path=where,
            )
        if item.tool_calls and item.role != "assistant":
            raise ConversionError(
                f"a {item.role} message holds tool calls; only assistant messages make calls",
                path=where,
            )
        if item.tool_results and item.role not in ("user", "tool"):
            raise ConversionError(
                f"a {item.role} message holds tool results; results go in tool messages "
                "(OpenAI) or user messages (Anthropic)",
                path=where,
            )
        item = self._results(item, where)
        answered = {r.call_id for r in item.tool_results}
        left = sorted(set(self.open) - answered)
        only_results = bool(item.parts) and all(isinstance(p, ToolResultPart) for p in item.parts)
        speaks = item.role != "tool" and not only_results
        if left and speaks:
            if not self.repair:
                raise ConversionError(
                    f"{item.role} message while tool calls {left} are unanswered; append "
                    "their results first (one per call), or pass repair=True to have an error "
                    "result put in for each",
                    path=where,
                )
            out.append(self._placeholders(left, new_id()))
        out.append(self._calls(item, where))
        return out

    def _results(self, item: Item, where: str) -> Item:
        """``item`` with each result's call closed (and following a renamed call)."""
        parts: list[Part] = []
        exchange: str | None = None
        for part in item.parts:
            if isinstance(part, ToolResultPart):
                call_id = self.renamed.pop(part.call_id, part.call_id)
                if call_id not in self.open:
                    seen = "already has its result" if call_id in self.calls else "was made by"
                    seen += "" if call_id in self.calls else " no earlier message"
                    raise ConversionError(
                        f"a tool result for call {part.call_id!r}, which {seen}; every result "
                        "must answer one call of the assistant message before it (drop this "
                        "result, or append the call first)",
                        path=where,
                    )
                owner = self.open.pop(call_id)
                exchange = exchange or owner
                if call_id != part.call_id:
                    part = _with_call_id(part, call_id)  # noqa: PLW2901
            parts.append(part)
        changes: dict[str, Any] = {}
        if any(a is not b for a, b in zip(parts, item.parts, strict=True)):
            changes["parts"] = tuple(parts)
        if exchange is not None and item.exchange_id is None:
            changes["exchange_id"] = exchange  # a result appended after its call's batch
        return item.with_(**changes) if changes else item

    def _calls(self, item: Item, where: str) -> Item:
        """``item`` with its calls open: an id used twice in one turn is refused (renamed
        when repairing); the id of an earlier, answered call is always renamed (OpenAI
        accepts such repeats, Anthropic refuses any two ``tool_use`` blocks with one id)."""
        parts: list[Part] = []
        seen: set[str] = set()
        for part in item.parts:
            if isinstance(part, ToolCallPart):
                original = part.id
                if not part.id:
                    raise ConversionError(
                        "a tool call with an empty id; give every call a unique id", path=where
                    )
                if part.id in self.calls:
                    twice = part.id in self.open or part.id in seen
                    if twice and not self.repair:
                        raise ConversionError(
                            f"tool-call id {part.id!r} is used twice in one turn; providers "
                            "pair results by id, so ids must be unique (pass repair=True to "
                            "have repeats renamed)",
                            path=where,
                        )
                    fresh = _fresh(part.id, self.calls)
                    self.renamed[part.id] = fresh
                    part = ToolCallPart(  # noqa: PLW2901
                        id=fresh,
                        name=part.name,
                        arguments=part.arguments,
                        provider_details=part.provider_details,
                    )
                self.calls.add(part.id)
                self.open[part.id] = item.exchange_id or f"x:{item.id}"
                seen.add(original)
            parts.append(part)
        if all(a is b for a, b in zip(parts, item.parts, strict=True)):
            return item
        return item.with_(parts=tuple(parts))

    def _placeholders(self, call_ids: Sequence[str], item_id: str) -> Item:
        exchange = self.open[call_ids[0]]
        for call_id in call_ids:
            self.open.pop(call_id, None)
            self.renamed = {k: v for k, v in self.renamed.items() if v != call_id}
        parts = tuple(
            ToolResultPart(call_id=c, content=UNANSWERED_NOTE, is_error=True) for c in call_ids
        )
        return Item(
            id=item_id,
            role="tool",
            component=Component.TOOL_RESULTS,
            parts=parts,
            exchange_id=exchange,
        )


def _kinds(item: Item) -> str:
    return ", ".join(sorted({p.kind for p in item.parts if not isinstance(p, TextPart)}))


def _with_call_id(part: ToolResultPart, call_id: str) -> ToolResultPart:
    return ToolResultPart(
        call_id=call_id,
        content=part.content,
        is_error=part.is_error,
        provider_details=part.provider_details,
    )


def _fresh(call_id: str, taken: set[str]) -> str:
    n = 2
    while f"{call_id}_dup{n}" in taken:
        n += 1
    return f"{call_id}_dup{n}"
