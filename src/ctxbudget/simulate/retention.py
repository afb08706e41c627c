"""Retention: how much of what the agent reuses was still in front of it.

Token savings alone reward throwing everything away, so every policy is also scored on
this measure: *of the references (file paths, identifiers, numbers, error names) that the
agent's own output at call t uses and that it had seen earlier in the session outside the
system prompt and the task, the share still visible in the view at call t, verbatim or
inside a summary.* A reference the agent reuses was worth keeping; one it reuses after a
policy dropped it was either re-fetched (paid for twice) or recalled from its own words.

Presence is lenient: a digest listing ``names: foo_bar.py, baz`` keeps ``foo_bar.py`` while
the line that said what it was is gone. *Line retention* is the stricter share: a used
reference is **line-kept** when a whole earlier line containing it (a line of a
non-background item observed before the output, among whose references it is), longer
than the reference by more than 8 characters, is still in the view verbatim (as a line of
any item there, surrounding whitespace stripped on both sides); when no such line exists,
presence counts. So line-kept ≤ kept, and the full history line-keeps everything.

Everything here is pure and linear in the session's text: each version of an item is
scanned once, and a view is checked through an inverted index (reference → item versions
holding it) instead of rescanning its text, so a 300-call session costs about one pass
over its text, not one per call. Text is searched again only for the few references not
found as keys (a substring check, see :meth:`RetentionTracker.score`). Lines work the same
way: each version's stripped lines are indexed once (line → versions holding it), each
distinct observed line is scanned once (reference → lines that count for it), so a call
costs a look-up per counting line of each used reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeAlias

from ctxbudget.session.items import Item, item_text
from ctxbudget.simulate._lines import LineIndex, lines_of

__all__ = [
    "Retention",
    "RetentionTotals",
    "RetentionTracker",
    "references",
    "retention_by_call",
    "task_length",
]

_TOKEN = re.compile(r"[A-Za-z0-9_./\-]+")
_ESCAPES = re.compile(r"\\[nrt\"']")  # JSON escapes inside tool-call arguments
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_CAMEL = re.compile(r"[a-z][A-Z]")
_MAX_TOKEN = 200
"""Longer runs (base64, minified code) are data, not references."""
_MIN_LENGTH = 4

_STOP = frozenset(
    """e.g i.e ph.d a.m p.m and/or either/or input/output read/write yes/no true/false
    iphone ipad macos github gitlab javascript typescript powershell openai youtube
    linkedin paypal wordpress""".split()  # noqa: SIM905 - a word list reads best as words
)
"""Tokens that pass the rules below but are ordinary words."""


def _identifier(word: str) -> bool:
    """An underscored, camelCase or letters-with-digits word (``foo_bar``, ``E501``)."""
    if word.isalpha():
        return _CAMEL.search(word) is not None
    has_letter = any(c.isalpha() for c in word)
    return has_letter and ("_" in word or any(c.isdigit() for c in word))


Token: TypeAlias = tuple[tuple[str, ...], tuple[str, ...]]
"""One run of text: its *mentions* (the forms an output using it is matched under, most
specific first; never a leading run, as a directory is not the file named) and its *keys*
(every form it offers later outputs, see :func:`references`)."""


def _words(word: str) -> list[str]:
    """References in a word with no ``/`` nor ``.``: identifiers and numbers, split at ``-``."""
    out: list[str] = []
    for piece in word.split("-"):
        if piece.isdigit():
            if len(piece) >= 3:
                out.append(piece)
        elif len(piece) >= _MIN_LENGTH and _identifier(piece):
            out.append(piece)
    return out


def _runs(segments: list[str], sep: str) -> tuple[list[str], list[str]]:
    """Runs of two or more ``segments`` ending at the last one, and starting at the first."""
    n = len(segments)
    trailing = [sep.join(segments[i:]) for i in range(n - 1)]
    leading = [sep.join(segments[:j]) for j in range(n - 1, 1, -1)]
    return trailing, leading


def _dotted(token: str) -> list[Token]:
    """A run with no ``/``: a number, a dotted name or words."""
    token = token.lstrip(".")
    if _NUMBER.fullmatch(token):
        found = "." in token or len(token) >= 3
        return [((token,), (token,))] if found else []
    if "." not in token:
        return [((w,), (w,)) for w in _words(token)]
    segments = [s for s in token.split(".") if s]
    trailing, leading = _runs(segments, ".")
    words = sorted((w for s in segments for w in _words(s)), key=len, reverse=True)
    mentions = (token, *trailing, *words)
    return [(mentions, (*mentions, *leading))]


def _path(token: str) -> list[Token]:
    """A run with ``/``: the path, its sub-paths from either end, its segments' names."""
    token = token.rstrip("/")
    segments = [s for s in token.split("/") if s not in ("", ".", "..")]
    if not segments:
        return []
    trailing, leading = _runs(segments, "/")
    inner = [t for s in segments for t in _dotted(s)]
    basename = [m for t in _dotted(segments[-1]) for m in t[0]]
    mentions = (token, *trailing, *basename)
    return [(mentions, (*mentions, *leading, *(k for t in inner for k in t[1])))]


@lru_cache(maxsize=1 << 16)
def _run(raw: str) -> tuple[Token, ...]:
    """One run's mentions and keys, stop words and short forms dropped (runs recur a lot)."""
    token = raw.lstrip("-").rstrip(".-")
    if not token or len(token) > _MAX_TOKEN:
        return ()
    while token.startswith("./"):
        token = token[2:]
    return tuple(
        (
            tuple(dict.fromkeys(m for m in mentions if _good(m))),
            tuple(k for k in keys if _good(k)),
        )
        for mentions, keys in (_path(token) if "/" in token else _dotted(token))
    )


def _scan(text: str) -> Iterator[Token]:
    """Every run's mentions and keys."""
    for raw in _TOKEN.findall(_ESCAPES.sub(" ", text)):
        if raw.isalpha() and (raw.islower() or raw.isupper() or raw.istitle()):
            continue  # plain words: the bulk of prose, skipped before any work
        yield from _run(raw)


def _good(form: str) -> bool:
    """Long enough (numbers were checked already) and not a stop word."""
    long = len(form) >= _MIN_LENGTH or _NUMBER.fullmatch(form) is not None
    return long and form.lower() not in _STOP


def references(text: str) -> frozenset[str]:
    """The references in ``text``: every form under which it names something.

    Text is cut into runs of ``[A-Za-z0-9_./-]`` (JSON escapes such as ``\\n`` count as
    spaces, so tool-call arguments read like prose); leading ``-`` and ``./``, trailing
    ``.`` and ``-`` are trimmed, and runs over 200 characters skipped. From each run:

    - **paths** (a ``/`` inside): the path (trailing ``/`` dropped), every sub-path of two
      or more segments that starts at its first or ends at its last segment (so
      ``wcsapi/sliced_wcs.py`` matches ``/testbed/astropy/wcsapi/sliced_wcs.py``), and
      each segment by the rules below;
    - **numbers**: three or more digits, or any decimal / dotted number (``3.11``,
      ``127.0.0.1``);
    - **dotted names** (a ``.`` inside, not a number; leading dots dropped, as in
      ``obj().shape``): the whole name (``np.linalg.norm``, ``setup.py``), its leading and
      trailing runs of two or more segments, and each segment as a word;
    - **words** (split at ``-``): underscored (``sliced_wcs``, ``__init__``,
      ``MAX_SIZE``), camelCase or PascalCase with an inner capital (``makeChild``,
      ``ValueError``, ``JSONDecodeError``), or letters mixed with digits (``E501``,
      ``sha256``); all-digit pieces of three or more digits are numbers.

    Forms shorter than four characters (numbers aside), plain English words, all-caps
    words and a small stop list of identifier-looking words (``e.g``, ``GitHub``,
    ``and/or``) are not references. Error names are caught as identifiers; quoted error
    messages are not extracted. Case-sensitive and deterministic; a text's references are
    the union of its lines' (no run spans whitespace).

    These are the keys a text *offers*. What an output *uses* is counted once per run (see
    :meth:`RetentionTracker.score`), so a deep path is one reference, not ten.
    """
    return frozenset(k for _, keys in _scan(text) for k in keys)


@lru_cache(maxsize=1 << 16)
def _keys(raw: str) -> tuple[str, ...]:
    """Every key of one run, in :func:`_run`'s order."""
    return tuple(k for _, keys in _run(raw) for k in keys)


def _line_keys(line: str) -> tuple[str, ...]:
    """:func:`references` of one line, possibly repeated: a leaner :func:`_scan`."""
    out: list[str] = []
    for raw in _TOKEN.findall(_ESCAPES.sub(" ", line) if "\\" in line else line):
        if raw.isalpha() and (raw.islower() or raw.isupper() or raw.istitle()):
            continue
        out.extend(_keys(raw))
    return tuple(out)


_cached_line_keys = lru_cache(maxsize=1 << 14)(_line_keys)
_CACHED_LINE = 400
"""Longer lines are scanned afresh, so the cache holds a few megabytes at most."""


def _line_references(line: str) -> tuple[str, ...]:
    """:func:`_line_keys`, cached for lines up to 400 characters: a replay's lanes (one
    tracker per policy) observe the same lines one after another."""
    return _cached_line_keys(line) if len(line) <= _CACHED_LINE else _line_keys(line)


def _occurs(ref: str, text: str) -> bool:
    """Whether ``ref`` is in ``text`` with no letter, digit or ``_`` glued to either end."""
    start = text.find(ref)
    while start >= 0:
        end = start + len(ref)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before == "_" or after.isalnum() or after == "_"):
            return True
        start = text.find(ref, start + 1)
    return False


@dataclass(frozen=True, slots=True)
class Retention:
    """Retention at one model call."""

    used: int
    """References the output uses that were seen earlier outside the background."""
    kept: int
    """Of those, how many the view still showed."""
    lost: frozenset[str] = frozenset()
    """The used references the view no longer showed (for reports)."""
    line_kept: int = field(default=-1, compare=False)
    """Of those used, how many were line-kept (see :meth:`RetentionTracker.score`); left
    out, the same as ``kept``. Not compared, so a score equals ``Retention(used, kept,
    lost)``: check it on its own."""

    def __post_init__(self) -> None:
        if self.line_kept < 0:
            object.__setattr__(self, "line_kept", self.kept)

    @property
    def share(self) -> float | None:
        """``kept / used``; ``None`` when nothing was used."""
        return self.kept / self.used if self.used else None

    @property
    def line_share(self) -> float | None:
        """``line_kept / used``; ``None`` when nothing was used."""
        return self.line_kept / self.used if self.used else None


@dataclass(frozen=True, slots=True)
class RetentionTotals:
    """Retention summed over calls: weighted by references, not by calls."""

    used: int = 0
    """References used, summed over calls."""
    kept: int = 0
    """References kept, summed over calls."""
    calls: int = 0
    """Calls that used at least one earlier reference."""
    line_kept: int = -1
    """References line-kept, summed over calls; left out, the same as ``kept``."""

    def __post_init__(self) -> None:
        if self.line_kept < 0:
            object.__setattr__(self, "line_kept", self.kept)

    @classmethod
    def of(cls, scores: Iterable[Retention | None]) -> RetentionTotals:
        """The totals of per-call scores (``None`` scores are skipped)."""
        total = cls()
        for score in scores:
            total = total.add(score)
        return total

    def add(self, score: Retention | None) -> RetentionTotals:
        """These totals with one more call's score."""
        if score is None or score.used == 0:
            return self
        return RetentionTotals(
            self.used + score.used,
            self.kept + score.kept,
            self.calls + 1,
            self.line_kept + score.line_kept,
        )

    def __add__(self, other: RetentionTotals) -> RetentionTotals:
        return RetentionTotals(
            self.used + other.used,
            self.kept + other.kept,
            self.calls + other.calls,
            self.line_kept + other.line_kept,
        )

    @property
    def share(self) -> float | None:
        """``kept / used``; ``None`` when no call used anything."""
        return self.kept / self.used if self.used else None

    @property
    def line_share(self) -> float | None:
        """``line_kept / used``; ``None`` when no call used anything."""
        return self.line_kept / self.used if self.used else None


class RetentionTracker:
    """Scores retention call by call over one session, in one pass over its text.

    :meth:`observe` every item appended to the session, in order; :meth:`score` each of
    the agent's outputs against the view the model was given for it.
    """

    def __init__(self) -> None:
        self._count = 0
        self._first_seen: dict[str, int] = {}
        """Reference → index of the first non-background observation holding it."""
        self._position: dict[str, int] = {}
        """Item id → its observation index."""
        self._versions: dict[str, tuple[Item, int, frozenset[str]]] = {}
        """Item id → the latest distinct version met: (item, key, references)."""
        self._holder: dict[str, Item] = {}
        """Reference → the latest non-background item observed holding it."""
        self._postings: dict[str, list[int]] = {}
        """Reference → keys of the item versions holding it."""
        self._lines = LineIndex(_line_references)
        """Line → versions holding it; reference → earlier lines that count for it."""
        self._next_key = 0

    def _entry(self, item: Item, observed: int | None = None) -> tuple[int, frozenset[str]]:
        """The key and references of ``item``, scanning it only if this version is new.

        ``observed``: the observation index when ``item`` is observed outside the
        background (its lines then count for line retention).
        """
        cached = self._versions.get(item.id)
        if cached is not None and (cached[0] is item or cached[0].parts == item.parts):
            key = cached[1]
            if observed is not None and not self._lines.observed(key):
                self._lines.observe(key, lines_of(item_text(item)), observed)
            return key, cached[2]
        text = item_text(item)
        key, refs = self._next_key, references(text)
        self._next_key += 1
        self._versions[item.id] = (item, key, refs)
        for ref in refs:
            self._postings.setdefault(ref, []).append(key)
        lines = self._lines.add(key, text)
        if observed is not None:
            self._lines.observe(key, lines, observed)
        return key, refs

    def observe(self, item: Item, *, background: bool = False) -> None:
        """Record ``item`` as appended to the session.

        ``background`` items (the system prompt and the task) are context the agent was
        given, not something it saw along the way: their references never count as used.
        """
        index = self._count
        self._count += 1
        self._position.setdefault(item.id, index)
        if background:
            return
        for ref in self._entry(item, index)[1]:
            self._first_seen.setdefault(ref, index)
            self._holder[ref] = item

    def sources(self, refs: Iterable[str]) -> list[Item]:
        """The latest observed item holding each of ``refs`` (each item once, in order of
        observation): what an agent that lost them would recall."""
        found = {id(i): i for ref in refs if (i := self._holder.get(ref)) is not None}
        return sorted(found.values(), key=lambda i: self._position.get(i.id, 0))

    def score(self, output: Item, view: str | Iterable[Item]) -> Retention | None:
        """Retention of ``output`` (the agent's reply at this call) given what it saw.

        ``view`` is the request's items (or their text). Used: for each run of the
        output's text that names something, its most specific form (the run, a trailing
        part of it, its last name) that a non-background item observed before the output
        offered; each form counts once. Kept: those among the view's references, else
        (inside a longer run, say) a substring of the view's text with no word character
        glued on. ``None`` when nothing was used. The output may be observed before or
        after scoring.

        Line-kept: a used reference is line-kept when a whole earlier line containing it
        (a line of a non-background item observed before the output, with the reference
        among that line's :func:`references`), stripped of surrounding whitespace and
        longer than the reference by more than 8 characters, is still in the view
        verbatim: a stripped line of some item there (any version: a digest or a
        truncated copy counts if it holds that exact line), or of the view's text. When
        no such earlier line exists, presence counts: line-kept if kept.
        """
        cutoff = self._position.get(output.id, self._count)
        chosen: set[str] = set()
        for forms, _ in _scan(item_text(output)):
            for form in forms:  # ``src/pkg/mod.py``, ``pkg/mod.py``, ``mod.py``: never ``src/pkg``
                if self._first_seen.get(form, cutoff) < cutoff:
                    chosen.add(form)
                    break
        used = sorted(chosen)
        if not used:
            return None
        text: str | None
        shown: Callable[[str], bool]
        if isinstance(view, str):
            text, view_refs = view, references(view)
            missing = [r for r in used if r not in view_refs]
            shown = set(lines_of(view)).__contains__
        else:
            items = list(view)
            keys = {self._entry(item)[0] for item in items}
            missing = [r for r in used if not any(k in keys for k in reversed(self._postings[r]))]
            text = "\n".join(item_text(item) for item in items) if missing else None
            shown = self._lines.held_by(keys)
        lost = frozenset(r for r in missing if text is None or not _occurs(r, text))
        line_kept = sum(r not in lost and self._lines.line_kept(r, cutoff, shown) for r in used)
        return Retention(used=len(used), kept=len(used) - len(lost), lost=lost, line_kept=line_kept)


def task_length(items: Sequence[Item]) -> int:
    """How many leading items are the background: everything before the first assistant item.

    That is the system prompt and the task, and whatever else the harness put before the
    agent's first move (SWE-agent's demonstration, OpenHands' workspace notes).
    """
    for index, item in enumerate(items):
        if item.role == "assistant":
            return index
    return len(items)


def retention_by_call(
    items: Sequence[Item],
    policy: Callable[[Sequence[Item]], Sequence[Item]],
    *,
    background: int | None = None,
) -> list[Retention | None]:
    """Replay a recorded session under ``policy``: one score per assistant item (model call).

    ``policy`` maps the history before a call to the items the model would see;
    ``background`` is how many leading items are the system prompt and task (default
    :func:`task_length`). Sum the result with :meth:`RetentionTotals.of`.
    """
    items = list(items)
    leading = task_length(items) if background is None else background
    tracker = RetentionTracker()
    scores: list[Retention | None] = []
    for index, item in enumerate(items):
        if item.role == "assistant":
            scores.append(tracker.score(item, policy(items[:index])))
        tracker.observe(item, background=index < leading)
    return scores
