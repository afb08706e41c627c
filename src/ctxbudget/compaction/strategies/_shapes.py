"""Structure recognisers for door compaction (:mod:`.clean`): JSON documents, directory
listings, test and build logs, each trimmed along its own grain.

A blind middle cut of a 500-element JSON array keeps two broken halves, of a ``find .``
only the first and last directories, of a test run the collection header and the tail of
the summary. Knowing the shape, the cut can keep a few elements of *every* array, a few
files of *every* directory, and *every* failure with its traceback, dropping the passing
lines between. Recognition is conservative: an output that is not clearly one of these
shapes (source code above all) comes back unchanged, and is left to the head + tail cut.

Each trimmer takes ``keep``, how many elements of a long run survive at its head (a
quarter as many, at least one, survive at its tail); :func:`fit_structure` picks the
largest ``keep`` whose result fits the caller's budget.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

__all__ = ["Shape", "fit_structure", "recognise", "trim_structure"]

Shape = Literal["json", "listing", "log"]
"""The shapes :func:`recognise` knows."""

MIN_LINES = 12
"""Fewer lines than this are never taken for a listing or a log: too little to trim."""
LISTING_SHARE = 0.85
"""Share of the non-blank lines that must be paths for a listing."""
MAX_KEEP = 256
"""Most elements :func:`fit_structure` keeps at the head of a run."""
PASSING_SHARE = 0.3
"""Share of the non-blank lines that, when passing test lines, make a log by themselves."""


def _run_cut(length: int, keep: int) -> tuple[int, int] | None:
    """How many elements of a run to keep at its head and tail (the tail gets a quarter of
    ``keep``, at least one), or None when the run is too short for a marker to pay: it must
    stand for at least two elements."""
    tail = max(keep // 4, 1)
    return (keep, tail) if length >= keep + tail + 2 else None


# -- JSON ---------------------------------------------------------------------------------


def _json(text: str) -> Any:
    """The document when the whole of ``text`` is a JSON object or array, else None."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        value: Any = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return value


def _trim_json(value: Any, keep: int, marker: Callable[[int], str]) -> Any:
    if isinstance(value, dict):
        return {k: _trim_json(v, keep, marker) for k, v in value.items()}
    if not isinstance(value, list):
        return value
    cut = _run_cut(len(value), keep)
    if cut is None:
        return [_trim_json(v, keep, marker) for v in value]
    head, tail = cut
    kept = [_trim_json(v, keep, marker) for v in value[:head]]
    last = [_trim_json(v, keep, marker) for v in value[len(value) - tail :]]
    return [*kept, marker(len(value) - head - tail), *last]


def _trim_json_text(text: str, value: Any, keep: int, ref: str) -> str:
    made: list[int] = []

    def marker(omitted: int) -> str:
        # The first marker carries the recall pointer: the document stays valid JSON.
        pointer = f'; full output: recall("{ref}")' if ref and not made else ""
        made.append(omitted)
        return f"… {omitted:,} more items{pointer}"

    try:
        trimmed = _trim_json(value, keep, marker)
        if not made:
            return text
        if "\n" in text.strip():  # pretty-printed: stay readable
            return json.dumps(trimmed, ensure_ascii=False, indent=2)
        return json.dumps(trimmed, ensure_ascii=False, separators=(", ", ": "))
    except RecursionError:  # nested deeper than Python recurses: left to the middle cut
        return text


# -- directory listings -------------------------------------------------------------------

_LS_LONG = re.compile(r"^[-dlcbpsD][-rwxsStT]{9}[.@+]?\s+\d+\s+\S")
_LS_TOTAL = re.compile(r"^total \d+(\.\d+)?[KMG]?$")
_LS_HEADER = re.compile(r"^[^\s:]+:$")
_TREE = re.compile(r"^(?P<prefix>[│| \t\xa0]*)(?:├──|└──|\|--|`--)\s")
_BLANK = re.compile(r"\s")
_DU = re.compile(r"^\d+(?:\.\d+)?[KMGT]?\t(?P<path>\S+)$")


def _path_key(path: str) -> str:
    """The directory a path sits in (``.`` for a bare name)."""
    parent, slash, _ = path.rstrip("/").rpartition("/")
    return parent + slash if slash else "./"


def _listing_key(line: str, directory: str) -> str | None:
    """The group a listing line belongs to (entries of one directory), None if not an entry."""
    if _LS_LONG.match(line):
        return f"ls:{directory}"
    tree = _TREE.match(line)
    if tree:
        return f"tree:{tree.group('prefix')}"
    du = _DU.match(line)
    if du:
        return f"in {_path_key(du.group('path'))}"
    if "/" in line and not _BLANK.search(line):
        return f"in {_path_key(line)}"
    return None


def _is_listing(lines: list[str]) -> bool:
    filled = [line for line in lines if line.strip()]
    if len(filled) < MIN_LINES:
        return False
    entries = sum(
        1
        for line in filled
        if _listing_key(line, "") is not None or _LS_TOTAL.match(line) or _LS_HEADER.match(line)
    )
    return entries >= LISTING_SHARE * len(filled)


def _listing_marker(key: str, omitted: int) -> str:
    if key.startswith("tree:"):
        return f"{key[5:]}├── [… {omitted:,} more entries]"
    where = f" {key}" if key.startswith("in ") else ""
    return f"[… {omitted:,} more entries{where}]"


def _trim_listing(lines: list[str], keep: int) -> list[str]:
    keys: list[str | None] = []
    directory = ""
    for line in lines:
        if _LS_HEADER.match(line) and not _LS_LONG.match(line):
            directory = line[:-1]
        keys.append(_listing_key(line, directory))
    out: list[str] = []
    i = 0
    while i < len(lines):
        key = keys[i]
        j = i + 1
        while key is not None and j < len(lines) and keys[j] == key:
            j += 1
        cut = _run_cut(j - i, keep) if key is not None else None
        if key is not None and cut is not None:
            head, tail = cut
            marker = _listing_marker(key, j - i - head - tail)
            out += [*lines[i : i + head], marker, *lines[j - tail : j]]
        else:
            out += lines[i:j]
        i = j
    return out


# -- test and build logs ------------------------------------------------------------------

_SIGNATURE = re.compile(
    r"^=+ .{0,200}?(?:test session starts|passed|failed|error|FAILURES|ERRORS|short test "
    r"summary).{0,200} =+$"  # pytest
    r"|^collected \d+ items?"  # pytest
    r"|^Ran \d+ tests? in "  # unittest
    r"|^(?:test result: |running \d+ tests?$)"  # cargo test
    r"|^(?:ok|FAIL)\s+\S+\s+(?:[\d.]+s|\(cached\))"  # go test package lines
    r"|^--- (?:PASS|FAIL): "  # go test
    r"|^(?:Tests|Test Suites):\s+\d"  # jest
    r"|^Traceback \(most recent call last\):$"  # python
    r"|^\S+:\d+:\d+: (?:fatal )?(?:error|warning):"  # gcc, clang, go vet
    r"|^(?:error|warning)(?:\[\w+\])?: "  # rustc
    r"|tests finished: \d+ passed",  # sympy's runner
    re.MULTILINE,
)
_PASSING = re.compile(
    r"\b(?:PASSED|SKIPPED|XFAIL|XPASS)\b(?!.*\b(?:FAILED|ERROR)\b)"  # pytest -v
    r"|\.\.\. (?:ok|skipped.*)$"  # unittest -v, cargo test
    r"|^\s*(?:=== (?:RUN|PAUSE|CONT)|--- (?:PASS|SKIP):)"  # go test -v
    r"|^\s*[✓✔√]\s|^PASS\s+\S"  # jest, mocha
    r"|^\S+\s+[.sx]+\s*(?:\[\s*\d+%\])?$|^[.sx]{3,}\s*(?:\[\s*\d+%\])?$"  # pytest dots
    r"|\[OK\]$"  # sympy's runner
)
_IMPORTANT = re.compile(
    r"fail|error|exception|traceback|assert|warn|panic|fatal|abort|timed? ?out"
    r"|^E\s{3}|^\s*File \".*\", line \d+|^>\s"  # pytest, python tracebacks
    r"|^\s+--> \S+:\d+"  # rustc locations
    r"|^\S+\s+[.sxX]*[FE][.sxXFE]*\s*(?:\[\s*\d+%\])?$",  # pytest dots with a failure
    re.IGNORECASE,
)
_SUMMARY = re.compile(
    r"^=+ .{0,300} =+$|^_{3,} .{0,300} _{3,}$"  # pytest section headers and test headers
    r"|^Ran \d+ tests?|^(?:OK|FAILED)(?: \(.*\))?$"  # unittest
    r"|^(?:ok|FAIL)\s+\S+\s+(?:[\d.]+s|\(cached\))|^(?:ok|FAIL|PASS)$"  # go test
    r"|^\?\s+\S+\s+\[no test files\]"
    r"|^test result: |^running \d+ tests?$|^failures:$"  # cargo test
    r"|^(?:Tests|Test Suites|Snapshots|Time):\s"  # jest
    r"|^collected \d+ items?"
    r"|\b\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|warnings?|tests?)\b",
)
_FAILURE_SECTION = re.compile(r"^=+ (?:FAILURES|ERRORS) =+$")
_ANY_SECTION = re.compile(r"^=+ .{0,300} =+$")
_LOG_LINE = re.compile(
    r"^\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}|^\[?(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR)\b"
)


def _is_log(text: str, lines: list[str]) -> bool:
    filled = [line for line in lines if line.strip()]
    if len(filled) < MIN_LINES:
        return False
    if _SIGNATURE.search(text):
        return True
    passing = sum(1 for line in filled if _PASSING.search(line))
    logged = sum(1 for line in filled if _LOG_LINE.match(line))
    return passing >= PASSING_SHARE * len(filled) or logged >= 0.5 * len(filled)


def _classify(line: str) -> Literal["summary", "important", "passing", "other"]:
    if _SUMMARY.search(line):
        return "summary"
    if _PASSING.search(line):
        return "passing"
    if _IMPORTANT.search(line):
        return "important"
    return "other"


def _trim_log(lines: list[str], keep: int) -> list[str]:
    kinds = [_classify(line) for line in lines]
    kept = [kind in ("summary", "important") for kind in kinds]
    context = min(keep, 3)
    in_failures = False
    for i, line in enumerate(lines):
        if _ANY_SECTION.match(line):
            in_failures = bool(_FAILURE_SECTION.match(line))
        elif in_failures and keep > 1 and kinds[i] != "passing":
            kept[i] = True  # the failure reports themselves, whole
        if kinds[i] == "important":
            for j in range(max(i - context, 0), min(i + context + 1, len(lines))):
                kept[j] = kept[j] or kinds[j] == "other"
    out: list[str] = []
    i = 0
    while i < len(lines):
        if kept[i]:
            out.append(lines[i])
            i += 1
            continue
        passing = kinds[i] == "passing"
        j = i + 1
        while j < len(lines) and not kept[j] and (kinds[j] == "passing") == passing:
            j += 1
        if passing and j - i >= 3:
            out.append(f"[… {j - i:,} passing lines omitted]")
        elif not passing and (cut := _run_cut(j - i, keep)) is not None:
            head, tail = cut
            marker = f"[… {j - i - head - tail:,} lines omitted]"
            out += [*lines[i : i + head], marker, *lines[j - tail : j]]
        else:
            out += lines[i:j]
        i = j
    return out


# -- entry points -------------------------------------------------------------------------


def recognise(text: str) -> Shape | None:
    """The shape of ``text``, or None when it is none of them clearly (source code, prose...)."""
    if _json(text) is not None:
        return "json"
    lines = text.split("\n")
    if _is_listing(lines):
        return "listing"
    if _is_log(text, lines):
        return "log"
    return None


def trim_structure(text: str, *, keep: int = 3, ref: str = "") -> str:
    """``text`` trimmed along its shape, or ``text`` itself when no shape is recognised.

    Long runs keep their first ``keep`` elements and their last ``max(keep // 4, 1)``:

    * JSON: long arrays keep their head and tail elements, with a string element
      ``"… N more items"`` between (the document stays valid JSON; the first marker names
      ``recall("<ref>")`` when ``ref`` is given);
    * listings: long runs of entries of one directory (``find``, ``ls -l``, ``tree``,
      ``du``) keep their head and tail entries and a count;
    * logs: every failure, error, warning, traceback frame and summary line is kept, with
      a little context, and whole pytest failure reports (unless ``keep`` is 1); runs of
      passing lines become a count; other long runs keep their head and tail lines.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    value = _json(text)
    if value is not None:
        return _trim_json_text(text, value, keep, ref)
    lines = text.split("\n")
    if _is_listing(lines):
        return "\n".join(_trim_listing(lines, keep))
    if _is_log(text, lines):
        return "\n".join(_trim_log(lines, keep))
    return text


def fit_structure(
    texts: Sequence[str], fits: Callable[[list[str]], bool], *, ref: str = "", most: int = MAX_KEEP
) -> list[str]:
    """``texts`` trimmed with the largest ``keep`` (up to ``most``) whose result ``fits``,
    found by bisection, so an output just over its limit loses little; ``keep=1`` when
    none fits (what is still over is for the caller to cut)."""

    def trim(keep: int) -> list[str]:
        return [trim_structure(t, keep=keep, ref=ref) for t in texts]

    best = trim(1)
    if best == list(texts) or not fits(best):
        return best
    low, high = 2, most  # invariant: trim(low - 1) fits
    while low <= high:
        middle = (low + high) // 2
        trimmed = trim(middle)
        if fits(trimmed):
            best, low = trimmed, middle + 1
        else:
            high = middle - 1
    return best
