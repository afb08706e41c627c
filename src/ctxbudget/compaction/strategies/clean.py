"""Clean: make each new tool output smaller at the door, before it is ever sent or cached.

Tool output is written for a terminal, not a model: colour codes, progress bars redrawn a
hundred times on one line, repeated lines, five hundred passing tests around the two that
failed. Cleaning it once, as it is appended, costs no cache write later and saves its
tokens on every request after. Three stages, each a pure function of a string:

1. :func:`clean_text` — what a terminal shows (:func:`render_terminal`: escapes stripped,
   ``\\r`` redraws, backspaces resolved), repeated lines collapsed (:func:`collapse_repeats`);
2. :func:`trim_structure` — only when still over ``max_tokens`` (it drops detail; the
   alternative is a blind middle cut): JSON arrays, directory listings and test logs
   trimmed along their grain, keeping as much as fits;
3. :func:`cut_middle` — still over: head and tail, on line boundaries when cheap.

Whatever is dropped stays recallable: the output then names ``recall("<original id>")``.
Image and document parts pass untouched; pinned, fixed and (unless last resort)
protected items are never changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ctxbudget.compaction.strategies._mechanical import (
    TEXT_OBSERVATION,
    Content,
    fair_shares,
    omission_marker,
    replace_item,
    result_refs,
    with_contents,
)
from ctxbudget.compaction.strategies._shapes import fit_structure, recognise, trim_structure
from ctxbudget.compaction.strategies.base import CompactionInput, derived_kind, editable
from ctxbudget.compaction.strategies.truncate import TruncateConfig
from ctxbudget.errors import ConfigError
from ctxbudget.session.items import DocumentPart, ImagePart, Item, Part, TextPart
from ctxbudget.session.log import Edit
from ctxbudget.tokens.backends import Tokenizer
from ctxbudget.tokens.slicing import truncate_middle

__all__ = [
    "MIN_LOSSY_GAIN",
    "MIN_SIMILAR_RUN",
    "CleanConfig",
    "clean_text",
    "collapse_repeats",
    "cut_middle",
    "propose",
    "render_terminal",
    "trim_structure",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CleanConfig:
    """Clean every new tool output; trim and cut the ones still over ``max_tokens``."""

    kind: Literal["clean"] = "clean"
    max_tokens: int = 2000
    """Largest tool output text kept after cleaning (tokens). Measured on the long sessions
    of the shared traces (``bench/bench_simulate.py``): 2,000 against 1,000 costs about 1%
    more input and keeps about half a point more of the references the agent reuses."""
    head_share: float = 0.5
    """Share of ``max_tokens`` given to the head when cutting; the tail gets the rest."""
    tokenizer: Tokenizer | None = field(default=None, compare=False)
    """The model's tokenizer, filled in by the manager; required to run."""

    def __post_init__(self) -> None:
        if self.kind != "clean":
            raise ConfigError(f"CleanConfig.kind must be 'clean', got {self.kind!r}")
        # The same limits as truncate's (room for the marker, a share, a real tokenizer).
        TruncateConfig(
            max_tokens=self.max_tokens, head_share=self.head_share, tokenizer=self.tokenizer
        )


# -- stage 1: what a terminal shows, repeats collapsed -----------------------------------

_NEWLINE = re.compile(r"\r+\n")
_TO_COLUMN_ONE = re.compile(r"\x1b\[[01]?G")  # cursor to column 1: a carriage return
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erase line
    r"|\x9b[0-?]*[ -/]*[@-~]"  # the same, 8-bit
    r"|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[PX^_][^\x1b\n]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]+[0-~]"  # charset selects (ESC ( B) and other nF escapes
    r"|\x1b[0-~]"  # ESC 7, ESC =, ESC M...
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\x80-\x9f]")
_VARYING = re.compile(r"\d+|[#=█▉▊▋▌▍▎▏━─░▒▓>-]+|\s+")  # counters, bars and their padding
_FAILURE = re.compile(r"fail|error|exception|traceback", re.IGNORECASE)
_PROGRESS = re.compile(
    r"\d\s*%|\beta\b|\d\s*(?:[kKMGT]i?B|B|it)/s|(?<!\d)\d+/\d|[#=█▉▊▋▌▍▎▏━>]{4,}",
    re.IGNORECASE,
)
MIN_SIMILAR_RUN = 5
"""Shortest run of similar progress lines collapsed (first, marker, last)."""
MIN_LOSSY_GAIN = 50
"""Tokens a collapse of similar lines must save, net of its recall pointer, on an output
that fits ``max_tokens`` anyway; else those lines stay (they may be data, not progress)."""


def _after_redraws(line: str) -> str:
    """The last thing drawn on a line redrawn with ``\\r`` (what a terminal ends up showing)."""
    segments = line.split("\r")
    return next((s for s in reversed(segments) if s.strip()), segments[-1])


def _overstrike(line: str) -> str:
    """A line with each backspace erasing the character before it (``a\\bb`` shows ``b``)."""
    out: list[str] = []
    for char in line:
        if char != "\b":
            out.append(char)
        elif out:
            out.pop()
    return "".join(out)


def render_terminal(text: str) -> str:
    """``text`` as a terminal shows it: escape sequences (CSI, OSC, charset selects...)
    stripped, ``\\r`` redraws and backspace overstrikes resolved, stray control characters
    dropped (tabs, newlines and form feeds stay). ``\\r\\n`` is a newline. Loses nothing a
    reader of the terminal would see."""
    text = _NEWLINE.sub("\n", text)
    if "\x1b" in text or "\x9b" in text:
        text = _ESCAPE.sub("", _TO_COLUMN_ONE.sub("\r", text))
    if "\r" in text:
        text = "\n".join(_after_redraws(line) for line in text.split("\n"))
    if "\b" in text:
        text = "\n".join(_overstrike(line) for line in text.split("\n"))
    return _CONTROL.sub("", text)


def _similar(line: str) -> str:
    """``line`` with its counters, bars and padding blanked: progress lines become equal."""
    return _VARYING.sub(
        lambda m: "0" if m[0][0].isdigit() else " " if m[0][0].isspace() else "=", line
    )


def _saves(lines: list[str], marker: str) -> bool:
    return sum(len(line) + 1 for line in lines) > len(marker) + 1


def _collapse(text: str, *, similar: bool = True) -> tuple[str, bool]:
    """:func:`collapse_repeats`, and whether similar lines were dropped (identical lines
    collapse losslessly: the marker says exactly what was there)."""
    lines = text.split("\n")
    out: list[str] = []
    dropped = False
    i = 0
    while i < len(lines):
        line = lines[i]
        key = _similar(line)
        k = i + 1
        if similar and _PROGRESS.search(line) and not _FAILURE.search(line):
            while k < len(lines) and _similar(lines[k]) == key:
                k += 1
        marker = f"[… {k - i - 2:,} similar lines omitted]"
        run = lines[i:k]
        if len(run) >= MIN_SIMILAR_RUN and run != [line] * len(run) and _saves(run[1:-1], marker):
            out += [line, marker, lines[k - 1]]
            dropped, i = True, k
            continue
        j = i + 1
        while j < len(lines) and lines[j] == line:
            j += 1
        marker = f"[… previous line repeated {j - i - 1:,} more times]"
        if j - i >= 3 and _saves(lines[i + 1 : j], marker):
            out += [line, marker]
        else:
            out += lines[i:j]
        i = j
    return "\n".join(out), dropped


def collapse_repeats(text: str) -> str:
    """``text`` with runs of repeated lines collapsed.

    * 3 or more identical lines: the line once, then ``[… previous line repeated N more
      times]``;
    * 5 or more progress lines (a percentage, a rate, ``12/40``, a bar; no failure or
      error) identical once counters, bars and padding are ignored: the first,
      ``[… N similar lines omitted]``, the last.

    A run is collapsed only when the marker is shorter than what it replaces.
    """
    return _collapse(text)[0]


def clean_text(text: str) -> str:
    """Stage 1: :func:`render_terminal`, then :func:`collapse_repeats`."""
    return collapse_repeats(render_terminal(text))


# -- stage 3: head and tail --------------------------------------------------------------


def _pieces(text: str, cut: str, marker: str) -> tuple[str, str] | None:
    """The head and tail ``cut`` was made of (``head + marker + tail``), if it was."""
    at = cut.find(marker)
    while at >= 0:
        head, tail = cut[:at], cut[at + len(marker) :]
        if text.startswith(head) and text.endswith(tail) and len(head) + len(tail) < len(text):
            return head, tail
        at = cut.find(marker, at + 1)
    return None


def _on_lines(text: str, head: str, tail: str) -> tuple[str, str]:
    """Head and tail moved back to whole lines, when that drops at most a quarter of each."""
    end = head.rfind("\n")
    if end >= 0 and len(head) - end <= max(len(head) // 4, 1):
        head = head[:end]
    starts_line = not tail or text[len(text) - len(tail) - 1] == "\n"
    start = tail.find("\n")
    if not starts_line and 0 <= start < len(tail) // 4:
        tail = tail[start + 1 :]
    return head, tail


def cut_middle(
    tokenizer: Tokenizer, text: str, max_tokens: int, item_id: str, *, head_share: float = 0.5
) -> str:
    """Stage 3: ``text`` if it fits ``max_tokens``, else its head and tail around a marker
    naming the omitted tokens and ``recall("<item_id>")`` (truncate's marker), cut on line
    boundaries when that is cheap. Always counts at most ``max_tokens``."""
    total = tokenizer.count(text)
    if total <= max_tokens:
        return text
    marker = omission_marker(item_id)
    drawn: list[int] = []

    def recording(omitted: int) -> str:
        drawn.append(omitted)
        return marker(omitted)

    cut = truncate_middle(tokenizer, text, max_tokens, recording, head_share=head_share)
    pieces = _pieces(text, cut, marker(drawn[-1])) if drawn else None
    if pieces is None:
        return cut
    head, tail = _on_lines(text, *pieces)
    if (head, tail) == pieces:
        return cut
    omitted = max(total - tokenizer.count(head) - tokenizer.count(tail), drawn[-1])
    snapped = head + marker(omitted) + tail
    return snapped if tokenizer.count(snapped) <= max_tokens else cut


# -- the pipeline --------------------------------------------------------------------------


_RENDERED = "terminal codes and redraws resolved"


def _has_pointer(texts: list[str], item_id: str) -> bool:
    pointers = (f'recall("{item_id}")', f'recall(\\"{item_id}\\")')  # JSON escapes quotes
    return any(p in t for t in texts for p in pointers)


def _trailer(item_id: str, what: str) -> str:
    return f'\n\n[… {what} to save context. Full text: recall("{item_id}") …]'


class _Pass:
    """One output going through the stages: token counts (memoised) and what was done."""

    def __init__(self, config: CleanConfig, tok: Tokenizer, item_id: str) -> None:
        self.limit, self.share = config.max_tokens, config.head_share
        self.tok, self.item_id = tok, item_id
        self.done: list[str] = []
        self.lossy = False
        self._counted: dict[str, int] = {}

    def tokens(self, texts: list[str]) -> int:
        for text in texts:
            if text not in self._counted:
                self._counted[text] = self.tok.count(text)
        return sum(self._counted[t] for t in texts)

    def terminal(self, texts: list[str], small: bool) -> list[str]:
        """Stage 1, keeping a lossy collapse only when it pays (or the output is large)."""
        rendered = [render_terminal(t) for t in texts]
        if rendered != texts:
            self.done.append(_RENDERED)
        runs = [_collapse(t) for t in rendered]
        collapsed = [text for text, _ in runs]
        self.lossy = any(dropped for _, dropped in runs)
        if self.lossy and (small or self.tokens(rendered) <= self.limit):
            pointer = self.tok.count(_trailer(self.item_id, ""))
            if self.tokens(rendered) - self.tokens(collapsed) - pointer < MIN_LOSSY_GAIN:
                collapsed = [_collapse(t, similar=False)[0] for t in rendered]
                self.lossy = False
        if collapsed != rendered:
            self.done.append("repeated lines collapsed")
        # Never empty: an output of nothing but control codes stays as it was.
        return [new if new or not old else old for old, new in zip(texts, collapsed, strict=True)]

    def structure(self, texts: list[str]) -> list[str]:
        """Stage 2, when the output is over the limit."""
        if self.tokens(texts) <= self.limit:
            return texts
        trimmed = fit_structure(texts, lambda ts: self.tokens(ts) <= self.limit, ref=self.item_id)
        if trimmed != texts:
            changed = zip(texts, trimmed, strict=True)
            shapes = sorted({s for t, u in changed if t != u and (s := recognise(t))})
            self.done.append(f"{'/'.join(shapes)} trimmed")
            self.lossy = True
        return trimmed

    def finish(self, texts: list[str], originals: list[str]) -> list[str]:
        """Stage 3 when still over the limit; a recall pointer whenever something was lost."""
        budget = self.limit
        pointed = not self.lossy or _has_pointer(texts, self.item_id)
        if not pointed:
            trailer = _trailer(self.item_id, " and ".join(d for d in self.done if d != _RENDERED))
            changed = [i for i, (a, b) in enumerate(zip(texts, originals, strict=True)) if a != b]
            last = changed[-1] if changed else len(texts) - 1
            marked = [t + trailer if i == last else t for i, t in enumerate(texts)]
            if self.tokens(marked) <= self.limit:
                return marked
            budget -= self.tok.count(trailer)
        counts = [self.tokens([t]) for t in texts]
        if sum(counts) <= budget:
            if pointed:
                return texts
            budget = sum(counts) - 1  # a token-merge edge case: cut a little to name recall()
        self.done.append(f"cut to head and tail ({self.limit:,} tokens)")
        return [
            cut_middle(self.tok, t, share, self.item_id, head_share=self.share) if n > share else t
            for t, n, share in zip(texts, counts, fair_shares(counts, budget), strict=True)
        ]


def _clean_content(
    config: CleanConfig, tok: Tokenizer, content: Content, item_id: str, *, small: bool
) -> tuple[Content, list[str]] | None:
    """The cleaned content and what was done, or None when nothing would change. ``small``:
    the whole item is known to fit ``max_tokens`` (no need to count it)."""
    if isinstance(content, str):
        texts = [content]
    else:
        texts = [p.text for p in content if isinstance(p, TextPart)]
    run = _Pass(config, tok, item_id)
    new = run.terminal(texts, small)
    if not (small and new == texts):
        new = run.finish(run.structure(new), texts)
    if new == texts:
        return None
    if isinstance(content, str):
        return new[0], run.done
    replaced = iter(new)
    parts: list[TextPart | ImagePart | DocumentPart] = [
        TextPart(text=next(replaced), provider_details=p.provider_details)
        if isinstance(p, TextPart)
        else p
        for p in content
    ]
    return tuple(parts), run.done


def _observation_content(item: Item) -> Content | None:
    """A text observation's parts as tool-result content (None if it has other parts)."""
    parts = [p for p in item.parts if isinstance(p, TextPart | ImagePart | DocumentPart)]
    return tuple(parts) if len(parts) == len(item.parts) else None


def propose(config: CleanConfig, view: CompactionInput) -> tuple[Edit, ...]:
    """Clean every editable tool output (and text-only observation) not cleaned or cut yet,
    whatever ``need`` says; outputs the stages would not change get no edit."""
    tok = config.tokenizer
    if tok is None:
        raise ConfigError(
            "CleanConfig.tokenizer is not set; pass the model's tokenizer, e.g. "
            "CleanConfig(tokenizer=TiktokenTokenizer.load('o200k_base'))"
        )
    changes: dict[str, tuple[Item, dict[int, Content], dict[str, None]]] = {}
    for ref in result_refs(view.items, text_observations=True):
        item = ref.item
        if derived_kind(item.id) in ("clean", "truncate") or not editable(item, view):
            continue
        content = ref.part.content
        if ref.index == TEXT_OBSERVATION:
            content = _observation_content(item) or content
        small = view.count(item) <= config.max_tokens
        cleaned = _clean_content(config, tok, content, item.id, small=small)
        if cleaned is not None:
            _, contents, notes = changes.setdefault(item.id, (item, {}, {}))
            contents[ref.index] = cleaned[0]
            notes.update(dict.fromkeys(cleaned[1]))
    edits: list[Edit] = []
    for item, contents, notes in changes.values():
        note = "tool output cleaned: " + ", ".join(notes)
        observed = contents.get(TEXT_OBSERVATION)
        parts: tuple[Part, ...] = (
            observed if isinstance(observed, tuple) else with_contents(item, contents)
        )
        edits.append(replace_item(item, parts, "truncate", "clean", note))
    return tuple(edits)
