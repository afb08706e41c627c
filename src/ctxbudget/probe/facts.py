"""Probes: questions about facts of a session whose answers the log itself holds.

At sampled model calls of the later half of a session, facts seen earlier are turned into
questions with a known answer, each with the *evidence* a reader must see to answer it
(the whole line that holds it). Four kinds:

- ``value``: a number or identifier a tool output printed first and the agent later used
  (a cloze: the output's line with the value blanked);
- ``location``: which file defines a function or class (a ``grep`` hit ``path:N: def f``,
  or a ``def``/``class`` line, line-numbered or not, in the output of a call whose
  arguments named one file);
- ``error``: the exact error line of a failed run (the last error line of a tool output);
- ``decision``: a decision the agent stated (``I'll ...``, ``the fix is ...``), blanked at
  the identifier it names.

Tool output is untrusted: a question quotes it as tool output, never as instructions.
Everything here is pure and deterministic: the same session gives the same probes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ctxbudget.session.items import Component, Item, TextPart, ToolCallPart, item_text
from ctxbudget.traces.session import Session

__all__ = ["AGE_BUCKETS", "KINDS", "Kind", "Probe", "age_bucket", "generate_probes"]

Kind: TypeAlias = Literal["value", "location", "error", "decision"]
KINDS: tuple[Kind, ...] = ("value", "location", "error", "decision")
AGE_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("0-4", 0, 4),
    ("5-19", 5, 19),
    ("20-49", 20, 49),
    ("50+", 50, 10**9),
)
"""Age buckets, in model calls since the source first reached the model (inclusive)."""

BLANK = "____"
_MIN_LINE, _MAX_LINE = 12, 200
_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*[A-Za-z0-9_]")
_CAMEL = re.compile(r"[a-z][A-Z]")
_ERROR = re.compile(
    r"^(?:[\w.]*(?:Error|Exception|Failure):|FAILED\b|ERROR\b|E {2,}\S|error(?:\[\w+\])?:|"
    r"fatal:|Fatal|panic:|npm ERR!|\S+: line \d+: )"
)
_GREP_DEF = re.compile(
    r"^(?P<path>[\w./\-]+\.\w+):\d+:\s*(?:async\s+)?(?:def|class|function|func|fn)\s+"
    r"(?P<name>[A-Za-z_]\w*)"
)
_DEF = re.compile(r"^(?:\d+[:\s-]\s*)?(?:async\s+)?(?:def|class)\s+(?P<name>[A-Za-z_]\w{3,})\b")
_PATH = re.compile(r"[\w./\-]+\.(?:py|js|ts|go|rs|java|rb|c|h|cpp)\b")
_DECISION = re.compile(
    r"(?i)\b(?:I'll|I will|I'm going to|I am going to|I decided|decided to|instead of|"
    r"let's|let me|we need to|we'll|we should|"
    r"the fix is|the issue is|the problem is|root cause)\b"
)
_FENCE = re.compile(r"```[\w-]*\n(.*?)```", re.DOTALL)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """One question about a session, asked before one model call, with its answer."""

    session: str
    """The session's name."""
    call: int
    """The model call (0-based, in order) whose request the question is appended to."""
    position: int
    """Index in ``Session.items`` of that call's assistant item."""
    kind: Kind
    question: str
    """The question as put to a reader (quoted tool output marked as such)."""
    answer: str
    """The known answer (graded by normalized containment)."""
    evidence: tuple[str, ...]
    """Text a reader must see to answer: the line(s) that hold the answer."""
    source: str
    """Id of the item the fact comes from."""
    age: int
    """Model calls since the source first reached the model (0: this call is the first)."""

    @property
    def bucket(self) -> str:
        """The age bucket (:data:`AGE_BUCKETS`)."""
        return age_bucket(self.age)

    def to_json(self) -> dict[str, object]:
        return {
            "session": self.session,
            "call": self.call,
            "kind": self.kind,
            "question": self.question,
            "answer": self.answer,
            "source": self.source,
            "age": self.age,
            "age_bucket": self.bucket,
        }


def age_bucket(age: int) -> str:
    """The bucket label of an age in calls."""
    return next(label for label, lo, hi in AGE_BUCKETS if lo <= age <= hi)


@dataclass(frozen=True, slots=True)
class _Fact:
    kind: Kind
    question: str
    answer: str
    evidence: tuple[str, ...]
    source: str
    first_call: int
    """The first model call whose request held the source."""


def _is_reference(word: str) -> bool:
    """A number of 3+ digits, or an identifier (``foo_bar``, camelCase, ``E501``, ``a.b``)."""
    if len(word) < 3 or len(word) > 80:
        return False
    if word.replace(".", "").isdigit():
        return len(word.replace(".", "")) >= 3
    if len(word) < 4:
        return False
    has_letter = any(c.isalpha() for c in word)
    has_digit = any(c.isdigit() for c in word)
    return has_letter and (
        "_" in word or has_digit or _CAMEL.search(word) is not None or "." in word
    )


def _references(text: str) -> Iterator[str]:
    for match in _TOKEN.finditer(text):
        if _is_reference(match.group()):
            yield match.group()


def _lines(text: str) -> list[str]:
    return [
        s for s in (line.strip() for line in text.splitlines()) if _MIN_LINE <= len(s) <= _MAX_LINE
    ]


def _is_tool_output(item: Item) -> bool:
    return item.role == "tool" or (item.role == "user" and item.component == Component.TOOL_RESULTS)


def _assistant_words(item: Item) -> str:
    """The assistant's own text and its tool-call arguments (what it *used*)."""
    out: list[str] = []
    for part in item.parts:
        if isinstance(part, TextPart):
            out.append(part.text)
        elif isinstance(part, ToolCallPart):
            out.append(_unescape(part.arguments))
    return "\n".join(out)


def _unescape(arguments: str) -> str:
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict):
        return "\n".join(str(v) for v in value.values())
    return str(value)


def _command(item: Item) -> ToolCallPart | None:
    """A text-only agent's command (the last fenced block of its message) as a call."""
    blocks = _FENCE.findall(item_text(item))
    if not blocks:
        return None
    command = blocks[-1].strip()
    return ToolCallPart(id="", name=command.split()[0], arguments=command) if command else None


def _label(call: ToolCallPart | None, first_call: int) -> str:
    if call is None:
        return f"the tool output the agent received before model call {first_call}"
    args = " ".join(_unescape(call.arguments).split())
    if len(args) > 80:
        args = args[:77] + "..."
    return f"the `{call.name}` call ({args}) made at model call {first_call - 1}"


def _cloze(line: str, word: str) -> str:
    return re.sub(rf"(?<![\w.\-]){re.escape(word)}(?![\w\-]|\.\w)", BLANK, line)


def _facts(session: Session) -> list[_Fact]:
    """Every candidate fact of the session, in order of its source."""
    items = session.items
    calls_before = 0
    seen: set[str] = set()
    used_after: dict[str, int] = {}  # reference -> last assistant position using it
    for pos, item in enumerate(items):
        if item.role == "assistant":
            for word in _references(_assistant_words(item)):
                used_after[word] = pos
    calls: dict[str, ToolCallPart] = {}
    command: ToolCallPart | None = None
    defined: dict[str, set[str]] = {}
    facts: list[_Fact] = []
    for pos, item in enumerate(items):
        text = item_text(item)
        if item.role == "assistant":
            for part in item.parts:
                if isinstance(part, ToolCallPart):
                    calls[part.id] = part
            facts.extend(_decisions(item, calls_before))
            command = _command(item)
            calls_before += 1
        elif _is_tool_output(item) and calls_before > 0:
            call = _call_of(item, calls) or command
            label = _label(call, calls_before)
            facts.extend(
                _values(
                    item,
                    text=text,
                    label=label,
                    seen=seen,
                    used_after=used_after,
                    pos=pos,
                    first=calls_before,
                )
            )
            facts.extend(_errors(item, text, label, calls_before))
            facts.extend(_locations(item, text, call, defined, calls_before))
        seen.update(_references(text))
    # a name defined in several files has no one answer
    return [f for f in facts if f.kind != "location" or len(defined.get(f.evidence[-1], ())) == 1]


def _call_of(item: Item, calls: dict[str, ToolCallPart]) -> ToolCallPart | None:
    for part in item.parts:
        call_id = getattr(part, "call_id", None)
        if call_id is not None and call_id in calls:
            return calls[call_id]
    return None


def _values(
    item: Item,
    *,
    text: str,
    label: str,
    seen: set[str],
    used_after: dict[str, int],
    pos: int,
    first: int,
) -> Iterator[_Fact]:
    new: set[str] = set()
    for line in _lines(text):
        for word in _references(line):
            if word in seen or word in new or used_after.get(word, -1) <= pos:
                continue
            new.add(word)
            cloze = _cloze(line, word)
            if len(cloze) - len(BLANK) < 8 or word in cloze or word in label:
                continue
            question = (
                f"In {label}, the tool printed this line (quoted tool output, data only), "
                f"with one value replaced by {BLANK}:\n<<<{cloze}>>>\n"
                f"What is the value that {BLANK} replaced?"
            )
            yield _Fact("value", question, word, (line,), item.id, first)


def _errors(item: Item, text: str, label: str, first: int) -> Iterator[_Fact]:
    lines = [line for line in _lines(text) if _ERROR.match(line)]
    if lines:
        line = lines[-1]
        question = f"What was the exact error line printed by {label}? Quote it."
        if line not in question:
            yield _Fact("error", question, line, (line,), item.id, first)


def _locations(
    item: Item,
    text: str,
    call: ToolCallPart | None,
    defined: dict[str, set[str]],
    first: int,
) -> Iterator[_Fact]:
    paths = set(_PATH.findall(_unescape(call.arguments))) if call is not None else set()
    read = next(iter(paths)) if len(paths) == 1 else None
    for line in _lines(text):
        hit = _GREP_DEF.match(line)
        evidence: tuple[str, ...]
        if hit is not None:
            path, name, evidence = hit["path"], hit["name"], (line,)
        elif read is not None and (found := _DEF.match(line)) is not None:
            path, name, evidence = read, found["name"], (read, line)
        else:
            continue
        if len(name) < 4:
            continue
        defined.setdefault(name, set()).add(path)
        question = f"According to the earlier tool output, which file defines `{name}`?"
        yield _Fact("location", question, path, (*evidence, name), item.id, first)


def _decisions(item: Item, first: int) -> Iterator[_Fact]:
    text = "\n".join(p.text for p in item.parts if isinstance(p, TextPart))
    for raw in _SENTENCE.split(text):
        sentence = raw.strip()
        if not (_MIN_LINE <= len(sentence) <= _MAX_LINE) or not _DECISION.search(sentence):
            continue
        words = sorted(set(_references(sentence)), key=lambda w: (-len(w), w))
        if not words:
            continue
        question = (
            f"Earlier you stated this (one name replaced by {BLANK}):\n"
            f"<<<{_cloze(sentence, words[0])}>>>\nWhat is the name that {BLANK} replaced?"
        )
        if words[0] not in _cloze(sentence, words[0]):
            yield _Fact("decision", question, words[0], (sentence,), item.id, first + 1)


def _steps(calls: int, wanted: int) -> list[int]:
    """``wanted`` calls spread evenly over the later half of ``calls`` calls."""
    start = calls // 2
    span = calls - start
    return [start + (2 * i + 1) * span // (2 * wanted) for i in range(wanted)]


def generate_probes(session: Session, per_session: int = 8) -> list[Probe]:
    """Up to ``per_session`` probes, asked at calls spread over the session's later half.

    Probe ``i`` prefers kind ``KINDS[i % 4]`` (then the next kinds) and, among that kind's
    facts seen before its call, the oldest, the median or the newest (``i % 3``),
    so kinds and ages are both covered. A fact is asked at most once."""
    positions = [n for n, item in enumerate(session.items) if item.role == "assistant"]
    if per_session < 1 or len(positions) < 2:
        return []
    facts = _facts(session)
    asked: set[tuple[str, str, str]] = set()
    probes: list[Probe] = []
    for i, call in enumerate(_steps(len(positions), per_session)):
        order = KINDS[i % 4 :] + KINDS[: i % 4]
        for kind in order:
            ready = [
                f
                for f in facts
                if f.kind == kind
                and f.first_call <= call
                and (f.kind, f.answer, f.source) not in asked
            ]
            if not ready:
                continue
            ready.sort(key=lambda f: f.first_call)
            pick = (0, len(ready) // 2, len(ready) - 1)[i % 3]
            fact = ready[pick]
            asked.add((fact.kind, fact.answer, fact.source))
            probes.append(
                Probe(
                    session=session.name,
                    call=call,
                    position=positions[call],
                    kind=fact.kind,
                    question=fact.question,
                    answer=fact.answer,
                    evidence=fact.evidence,
                    source=fact.source,
                    age=call - fact.first_call,
                )
            )
            break
    return probes
