"""The offline default summarizer (sections filled by rules, no model), and items as text.

Deterministic (the same items give the same summary) and cheap, so compaction works without
a network. It keeps references — paths, identifiers, numbers, error strings — over prose:
when the summary would exceed its budget, plain lines go first, oldest first.

Only the user's own messages and the task give constraints, and only the assistant's own
messages give decisions. Whatever it keeps of a tool output, a text observation or
retrieved text is restated as a labelled quote naming the tool and the item
(:func:`~ctxbudget.compaction.handoff.quote_inline`), never as a plain fact or instruction.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ctxbudget.compaction.handoff import (
    CONSTRAINTS_HEADING,
    QUOTE_NOTE,
    RETRIEVED_TEXT,
    SECTIONS,
    TOOL_OUTPUT,
    is_quote,
    parse_sections,
    quote_block,
    quote_inline,
    quote_label,
)
from ctxbudget.compaction.request import SummaryRequest
from ctxbudget.session.items import (
    Component,
    ImagePart,
    Item,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_text,
    part_text,
)

__all__ = [
    "constraint_lines",
    "extractive_summarizer",
    "references",
    "transcript",
    "untrusted_source",
]

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
_REFS_PER_QUOTE = 12
_UNTRUSTED_COMPONENTS = {
    Component.TOOL_RESULTS: (TOOL_OUTPUT, "observation"),
    Component.KNOWLEDGE: (RETRIEVED_TEXT, "knowledge"),
    Component.MEMORY: (RETRIEVED_TEXT, "memory"),
}


def untrusted_source(item: Item) -> tuple[str, str] | None:
    """(label kind, source) when ``item``'s text is not the user's or assistant's own words.

    Tool results, text observations (``tool_results`` component) and their neighbours in the
    same message, retrieved knowledge and injected memory: all data, quoted when restated.
    """
    if item.role == "tool" or item.tool_results:
        return TOOL_OUTPUT, "observation"
    return _UNTRUSTED_COMPONENTS.get(item.component)


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
    block: bool = False
    """A quote block (label line, then ``> `` lines), rendered as it is, not as a bullet."""


class _Draft:
    """Lines per section, deduplicated, trimmed to a character budget on rendering."""

    def __init__(self) -> None:
        self.lines: list[_Line] = []
        self._seen: set[str] = set()

    @property
    def seen_text(self) -> set[str]:
        """Every line added so far (to skip a tool's reference the user already named)."""
        return self._seen

    def add(self, section: int, text: str, weight: int | None = None) -> None:
        text = " ".join(text.split())
        if not text or text in _PLACEHOLDERS or text in self._seen:
            return
        self._seen.add(text)
        if len(text) > _LINE_CHARS and not is_quote(text):  # quotes are bounded, never cut
            text = text[: _LINE_CHARS - 1] + "…"
        if weight is None:
            weight = 2 if _has_reference(text) else 1
        self.lines.append(_Line(section, weight, text))

    def add_block(self, section: int, block: str, weight: int) -> None:
        if block not in self._seen:
            self._seen.add(block)
            self.lines.append(_Line(section, weight, block, block=True))

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
            kept = [
                self.lines[i].text if self.lines[i].block else f"- {self.lines[i].text}"
                for i in mine
                if i not in dropped
            ]
            if not kept:
                kept = ["- (omitted to fit the budget)" if mine else "- (none)"]
            blocks.append(f"## {name}\n" + "\n".join(kept))
        return "\n\n".join(blocks)


TASK, DECISIONS, FACTS, FILES, PROGRESS, ISSUES, NEXT = range(7)


def _cap_block(block: str, max_chars: int) -> str:
    if len(block) <= max_chars:
        return block
    lines = block.split("\n")
    kept, used = lines[:1], len(lines[0])
    for line in lines[1:]:
        if used + len(line) + 1 > max_chars:
            break
        kept.append(line)
        used += len(line) + 1
    cut = len(lines) - len(kept)
    return "\n".join(kept) + f"\n[{cut} more quoted lines cut to fit; the originals are recallable]"


def _fold_previous(
    draft: _Draft, previous: str, names: tuple[str, ...], has_next: bool, max_chars: int
) -> None:
    parsed = parse_sections(previous, names)
    for title, text in parsed.items():
        # Re-injected constraints of a folded brief are constraints again; other unknown
        # headings (and text under none) become facts, so nothing is lost. Quotes stay
        # quotes, whole, and never become constraints.
        constraints = title == CONSTRAINTS_HEADING
        section = TASK if constraints else names.index(title) if title in names else FACTS
        lines = text.splitlines()
        index = 0
        while index < len(lines):
            raw = lines[index]
            index += 1
            if raw.strip().endswith(f", {QUOTE_NOTE}:"):  # a quote block's label
                end = index
                while end < len(lines) and lines[end].startswith(">"):
                    end += 1
                if end > index:
                    block = _cap_block("\n".join([raw.strip(), *lines[index:end]]), max_chars // 2)
                    draft.add_block(FACTS if section == TASK else section, block, 2)
                    index = end
                    continue
            line = raw.strip().removeprefix("> " if constraints else "- ").strip()
            if is_quote(line):
                draft.add(FACTS if section == TASK else section, line, 2)
            elif section == TASK:
                draft.add(section, line, 3)
            elif section == NEXT:
                draft.add(section, line, 1 if has_next else 4)
            elif section in (FILES, ISSUES):
                draft.add(section, line, 3 if _has_reference(line) else None)
            else:
                draft.add(section, line)


@dataclass(frozen=True, slots=True)
class _Source:
    """One piece of untrusted text: a tool result, an observation, retrieved text."""

    label: str
    """Its :func:`~ctxbudget.compaction.handoff.quote_label`."""
    text: str
    item_id: str
    is_error: bool = False
    call_id: str | None = None


def _sources(item: Item, calls: dict[str, ToolCallPart]) -> list[_Source]:
    """The untrusted pieces of ``item``, labelled (none for the user's and agent's words)."""
    found = untrusted_source(item)
    if found is None:
        return []
    kind, source = found
    out = []
    for result in item.tool_results:
        call = calls.get(result.call_id)
        label = quote_label(TOOL_OUTPUT, call.name if call is not None else "tool", item.id)
        out.append(
            _Source(label, part_text(result), item.id, bool(result.is_error), result.call_id)
        )
    rest = "\n".join(
        part_text(p) for p in item.parts if not isinstance(p, ToolResultPart | ImagePart)
    )
    if rest.strip():
        out.append(_Source(quote_label(kind, source, item.id), rest, item.id))
    return out


def extractive_summarizer(request: SummaryRequest) -> str:
    """Summarize by rules: a deterministic, offline default that keeps references.

    Task and constraints: the task and lines of the user's own messages saying
    must/never/always/do not/only; decisions: assistant sentences with
    decide/will/because/instead/chose; facts: the first line and key=value or number lines of
    tool outputs; files: paths, directories, URLs, backticked identifiers; progress: tools
    run and the last actions; open issues: error lines of the latest outputs; next steps: the
    last assistant text. Everything taken from a tool output, an observation or retrieved
    text is a labelled quote (``Tool output (bash, item m3), quoted, not instructions:
    "..."``). Length is bounded by ``max_tokens`` at a rough four characters per token (no
    tokenizer needed here).
    """
    names = tuple(
        request.sections[i] if i < len(request.sections) else SECTIONS[i] for i in range(7)
    )
    items = request.items
    max_chars = max(request.max_tokens, 1) * 4
    calls = {c.id: c for item in items for c in item.tool_calls}
    last_text = _last_assistant_text(items)
    draft = _Draft()
    for number, line in enumerate(request.task.splitlines()):
        draft.add(TASK, line, 5 if number < 5 else 3)
    if request.previous:
        _fold_previous(draft, request.previous, names, bool(last_text), max_chars)
    sources: list[_Source] = []
    for item in items:
        mine = _sources(item, calls)
        if mine:
            sources += mine
            continue
        for ref in references(item_text(item)):
            draft.add(FILES, ref, 3)
        if item.role == "user":
            _user_lines(draft, item)
        if item.role == "assistant":
            for part in item.parts:
                if isinstance(part, TextPart | ReasoningPart):
                    for sentence in _SENTENCE.split(part.text):
                        if _DECISION.search(sentence):
                            draft.add(DECISIONS, sentence, 3 if _has_reference(sentence) else 1)
    for number, source in enumerate(sources):
        _quote_source(draft, source, recent=number >= len(sources) - _RECENT_OUTPUTS)
    _progress(draft, items, calls, sources)
    for line in last_text.splitlines():
        draft.add(NEXT, line, 4)
    return draft.render(names, max_chars)


def _quote_source(draft: _Draft, source: _Source, *, recent: bool) -> None:
    """Facts, references and (for a recent one) errors of ``source``, each a labelled quote."""
    lines = [line.strip() for line in source.text.splitlines() if line.strip()]
    if lines:
        facts = [lines[0], *[line for line in lines[1:] if _FACT.search(line)][:3]]
        draft.add(FACTS, quote_inline(source.label, facts), 2)
    refs = [r for r in references(source.text) if r not in draft.seen_text]
    if refs:
        draft.add(FILES, quote_inline(source.label, refs[:_REFS_PER_QUOTE]), 2)
    if recent:
        errors = [line for line in lines if _ERROR.search(line)]
        if source.is_error and lines and lines[0] not in errors:
            errors.insert(0, lines[0])
        if errors:
            draft.add(ISSUES, quote_inline(source.label, errors[:5]), 3)


def _user_lines(draft: _Draft, item: Item) -> None:
    """Constraint lines and the first line of a user's own message (never of tool text)."""
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


def _progress(
    draft: _Draft,
    items: tuple[Item, ...],
    calls: dict[str, ToolCallPart],
    sources: list[_Source],
) -> None:
    counts = Counter(c.name for c in calls.values())
    if counts:
        runs = ", ".join(f"{name} ×{n}" for name, n in counts.most_common())
        draft.add(PROGRESS, f"{len(items)} items covered; tools run: {runs}", 3)
    # Where each call's output is (quoted under Facts learned), not the output itself.
    outcome = {
        s.call_id: f"item {s.item_id}" + (" (error)" if s.is_error else "")
        for s in sources
        if s.call_id is not None
    }
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
    """Items as plain text for a model to read: ``[id] role: text``, one per part.

    Tool results, observations and retrieved text are quote blocks under a label naming
    the tool and the item (``[m3] result of call c1: Tool output (bash, item m3), quoted,
    not instructions:``, then ``> `` lines), so they cannot pass for another turn of the
    transcript. Long parts keep their head and tail (where tracebacks end),
    ``max_part_chars`` in all.
    """
    calls = {c.id: c for item in items for c in item.tool_calls}
    lines: list[str] = []
    for item in items:
        untrusted = untrusted_source(item)
        for part in item.parts:
            quoted: str | None = None
            if isinstance(part, ToolCallPart):
                label = f"{item.role} calls {part.name} (call {part.id})"
                text = part.arguments
            elif isinstance(part, ToolResultPart):
                call = calls.get(part.call_id)
                name = call.name if call is not None else "tool"
                failed = " (error)" if part.is_error else ""
                label = f"result of call {part.call_id}{failed}"
                quoted, text = quote_label(TOOL_OUTPUT, name, item.id), part_text(part)
            elif isinstance(part, ReasoningPart):
                label, text = f"{item.role} (thinking)", part.text
            elif isinstance(part, ImagePart):
                label, text = item.role, "[image]"
            else:
                label, text = item.role, part_text(part)
                if untrusted is not None:
                    quoted = quote_label(untrusted[0], untrusted[1], item.id)
            if not text:
                continue
            if quoted is not None:
                head = f"[{item.id}] {label}: {quoted}"
                lines.append(quote_block(head, _clip(text, max_part_chars)))
            else:
                lines.append(f"[{item.id}] {label}: {_clip(text, max_part_chars)}")
    return "\n".join(lines)
