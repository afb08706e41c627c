"""The offline default summarizer (sections filled by rules, no model), and items as text.

Deterministic (the same items give the same summary) and cheap, so compaction works without
a network. It keeps references — paths, identifiers, numbers, error strings — over prose:
when the summary would exceed its budget, plain lines go first, oldest first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ctxbudget.compaction.handoff import CONSTRAINTS_HEADING, SECTIONS, parse_sections
from ctxbudget.compaction.request import SummaryRequest
from ctxbudget.session.items import (
    ImagePart,
    Item,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_text,
    part_text,
)

__all__ = ["constraint_lines", "extractive_summarizer", "references", "transcript"]

_CONSTRAINT = re.compile(
    r"\b(?:must|never|always|do not|don't|only|required|forbidden|should not)\b", re.IGNORECASE
)
_DECISION = re.compile(
    r"\b(?:decid\w*|will|because|instead|chose|choose|chosen|going to)\b", re.IGNORECASE
)
_ERROR = re.compile(r"error|exception|traceback|failed|failure|fatal|panic", re.IGNORECASE)
_FACT = re.compile(
    r"\b[\w.-]+=\S|\b[\w.-]+\s*:\s*-?\d|\b\d+(?:\.\d+)?\s*(?:%|passed|failed|errors?|tests?"
    r"|files?|lines?|rows?|items?|ms|s|[KMG]i?B)\b"
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_FILE = re.compile(r"(?:~/|\.{1,2}/|/)?(?:[\w.-]+/)*[\w-][\w.-]*\.[A-Za-z][A-Za-z0-9]{0,4}")
_DIR = re.compile(r"(?:~|\.{1,2})?/?(?:[\w.-]+/)+[\w.-]*")
_TICKS = re.compile(r"`([^`\n]{1,80})`")
_STRIP = "\"'`,;:()[]{}<>!?"
_NOT_FILES = frozenset({"e.g", "i.e", "etc", "vs"})
_PLACEHOLDERS = frozenset({"- (none)", "(none)", "- (omitted to fit the budget)"})
_LINE_CHARS = 300
_RECENT_OUTPUTS = 5
_LAST_ACTIONS = 5


def constraint_lines(text: str) -> list[str]:
    """Lines of ``text`` that state a constraint (must, never, always, do not, only...)."""
    return [line.strip() for line in text.splitlines() if _CONSTRAINT.search(line)]


def references(text: str) -> list[str]:
    """File paths, directories, URLs and backticked identifiers in ``text``, in order, once."""
    found: dict[str, None] = {}
    for ident in _TICKS.findall(text):
        found.setdefault(f"`{ident.strip()}`", None)
    for raw in text.split():
        token = raw.strip(_STRIP).rstrip(".")
        if _is_reference(token):
            found.setdefault(token, None)
    return list(found)


def _is_reference(token: str) -> bool:
    if token.startswith(("http://", "https://")):
        return True
    if _FILE.fullmatch(token):
        return token.lower() not in _NOT_FILES
    return "/" in token and bool(_DIR.fullmatch(token)) and _looks_like_dir(token)


def _looks_like_dir(token: str) -> bool:
    # "and/or" is prose; "src/app/", "/tmp/x" and "a/b/c" are places.
    return token.startswith(("/", "~", "./", "../")) or token.endswith("/") or token.count("/") > 1


def _has_reference(line: str) -> bool:
    return bool(re.search(r"\d|`|/|\.\w{1,5}\b", line) or _ERROR.search(line))


@dataclass(slots=True)
class _Line:
    section: int
    weight: int
    """Higher stays longer: 5 task, 4 next steps, 3 key lines, 2 references, 1 prose."""
    text: str


class _Draft:
    """Lines per section, deduplicated, trimmed to a character budget on rendering."""

    def __init__(self) -> None:
        self.lines: list[_Line] = []
        self._seen: set[str] = set()

    def add(self, section: int, text: str, weight: int | None = None) -> None:
        text = " ".join(text.split())
        if not text or text in _PLACEHOLDERS or text in self._seen:
            return
        self._seen.add(text)
        if len(text) > _LINE_CHARS:
            text = text[: _LINE_CHARS - 1] + "…"
        if weight is None:
            weight = 2 if _has_reference(text) else 1
        self.lines.append(_Line(section, weight, text))

    def render(self, names: tuple[str, ...], max_chars: int) -> str:
        cost = sum(len(n) + 5 for n in names) + sum(len(line.text) + 3 for line in self.lines)
        order = sorted(range(len(self.lines)), key=lambda i: (self.lines[i].weight, i))
        dropped: set[int] = set()
        for index in order:
            if cost <= max_chars:
                break
            dropped.add(index)
            cost -= len(self.lines[index].text) + 3
        blocks = []
        for number, name in enumerate(names):
            mine = [i for i, line in enumerate(self.lines) if line.section == number]
            kept = [f"- {self.lines[i].text}" for i in mine if i not in dropped]
            if not kept:
                kept = ["- (omitted to fit the budget)" if mine else "- (none)"]
            blocks.append(f"## {name}\n" + "\n".join(kept))
        return "\n\n".join(blocks)


TASK, DECISIONS, FACTS, FILES, PROGRESS, ISSUES, NEXT = range(7)


def _fold_previous(draft: _Draft, previous: str, names: tuple[str, ...], has_next: bool) -> None:
    parsed = parse_sections(previous, names)
    for title, text in parsed.items():
        # Re-injected constraints of a folded brief are constraints again; other unknown
        # headings (and text under none) become facts, so nothing is lost.
        constraints = title == CONSTRAINTS_HEADING
        section = TASK if constraints else names.index(title) if title in names else FACTS
        for raw in text.splitlines():
            line = raw.strip().removeprefix("> " if constraints else "- ").strip()
            if section == TASK:
                draft.add(section, line, 3)
            elif section == NEXT:
                draft.add(section, line, 1 if has_next else 4)
            elif section in (FILES, ISSUES):
                draft.add(section, line, 3 if _has_reference(line) else None)
            else:
                draft.add(section, line)


def extractive_summarizer(request: SummaryRequest) -> str:
    """Summarize by rules: a deterministic, offline default that keeps references.

    Task and constraints: the task and lines saying must/never/always/do not/only; decisions:
    assistant sentences with decide/will/because/instead/chose; facts: the first line and
    key=value or number lines of tool outputs; files: paths, directories, URLs, backticked
    identifiers; progress: tools run and the last actions; open issues: error lines of the
    latest outputs; next steps: the last assistant text. Length is bounded by
    ``max_tokens`` at a rough four characters per token (no tokenizer needed here).
    """
    names = tuple(
        request.sections[i] if i < len(request.sections) else SECTIONS[i] for i in range(7)
    )
    items = request.items
    calls = {c.id: c for item in items for c in item.tool_calls}
    last_text = _last_assistant_text(items)
    draft = _Draft()
    for number, line in enumerate(request.task.splitlines()):
        draft.add(TASK, line, 5 if number < 5 else 3)
    if request.previous:
        _fold_previous(draft, request.previous, names, has_next=bool(last_text))
    results = [(item, r) for item in items for r in item.tool_results]
    recent = {id(r) for _, r in results[-_RECENT_OUTPUTS:]}
    for item in items:
        for ref in references(item_text(item)):
            draft.add(FILES, ref, 3 if item.role != "tool" and not item.tool_results else 2)
        if item.role == "user" and not item.tool_results:
            _user_lines(draft, item)
        if item.role == "assistant":
            for part in item.parts:
                if isinstance(part, TextPart | ReasoningPart):
                    for sentence in _SENTENCE.split(part.text):
                        if _DECISION.search(sentence):
                            draft.add(DECISIONS, sentence, 3 if _has_reference(sentence) else 1)
        for result in item.tool_results:
            call = calls.get(result.call_id)
            name = call.name if call is not None else "tool"
            lines = [line for line in part_text(result).splitlines() if line.strip()]
            if lines:
                draft.add(FACTS, f"{name}: {lines[0]}")
            for line in [line for line in lines[1:] if _FACT.search(line)][:3]:
                draft.add(FACTS, line)
            if id(result) in recent:
                errors = [line for line in lines if _ERROR.search(line)]
                if result.is_error and lines and lines[0] not in errors:
                    errors.insert(0, lines[0])
                for line in errors[:5]:
                    draft.add(ISSUES, line, 3)
    _progress(draft, items, calls)
    for line in last_text.splitlines():
        draft.add(NEXT, line, 4)
    return draft.render(names, max(request.max_tokens, 1) * 4)


def _user_lines(draft: _Draft, item: Item) -> None:
    text = "\n".join(p.text for p in item.parts if isinstance(p, TextPart))
    constraints = constraint_lines(text)
    for line in constraints:
        draft.add(TASK, line, 3)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first and first not in constraints:
        draft.add(TASK, f"User: {first}", 2)


def _last_assistant_text(items: tuple[Item, ...]) -> str:
    for item in reversed(items):
        if item.role == "assistant":
            text = "\n".join(p.text for p in item.parts if isinstance(p, TextPart)).strip()
            if text:
                return text
    return ""


def _progress(draft: _Draft, items: tuple[Item, ...], calls: dict[str, ToolCallPart]) -> None:
    counts = Counter(c.name for c in calls.values())
    if counts:
        runs = ", ".join(f"{name} ×{n}" for name, n in counts.most_common())
        draft.add(PROGRESS, f"{len(items)} items covered; tools run: {runs}", 3)
    outcome: dict[str, str] = {}
    for item in items:
        for result in item.tool_results:
            first = next((s for s in part_text(result).splitlines() if s.strip()), "")
            outcome[result.call_id] = first.strip()
    for call in list(calls.values())[-_LAST_ACTIONS:]:
        arguments = " ".join(call.arguments.split())[:120]
        after = outcome.get(call.id)
        draft.add(PROGRESS, f"{call.name} {arguments}" + (f" → {after}" if after else ""), 3)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]} … [{len(text) - limit} chars omitted] … {text[-tail:]}"


def transcript(items: Sequence[Item], *, max_part_chars: int = 4000) -> str:
    """Items as plain text lines for a model to read: ``[id] role: text``, one per part.

    Long parts keep their head and tail (where tracebacks end), ``max_part_chars`` in all.
    """
    lines: list[str] = []
    for item in items:
        for part in item.parts:
            if isinstance(part, ToolCallPart):
                label = f"{item.role} calls {part.name} (call {part.id})"
                text = part.arguments
            elif isinstance(part, ToolResultPart):
                failed = " (error)" if part.is_error else ""
                label, text = f"tool result for call {part.call_id}{failed}", part_text(part)
            elif isinstance(part, ReasoningPart):
                label, text = f"{item.role} (thinking)", part.text
            elif isinstance(part, ImagePart):
                label, text = item.role, "[image]"
            else:
                label, text = item.role, part_text(part)
            if text:
                lines.append(f"[{item.id}] {label}: {_clip(text, max_part_chars)}")
    return "\n".join(lines)
