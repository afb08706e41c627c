"""The repository behind the demo session: the package's real files and the tool outputs
an agent would get from them.

Everything an agent *reads* (listings, grep hits, whole files, numbered regions, diffs) is
computed from ctxbudget's sources (the frozen copy ``data/sources.json.xz``). What cannot
be run offline (pytest, linters, the network) is scripted, but names only real files,
lines and functions. Pure and deterministic; edits change this in-memory copy only.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

ROOT = "src/ctxbudget"
"""Where the package lives in the scripted repository."""

_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(")
_CLASS = re.compile(r"^(\s*)class\s+(\w+)")
_METHOD = re.compile(r"([\w.]+)\.(\w+)\(")
_FOR = re.compile(r"^\s*for (\w+) in ([\w.]+):\s*$")
_CALL = re.compile(r"^\s*([\w.]+)\.(\w+)\((\w+)\)\s*$")
_RAISE = re.compile(r"^\s*raise (\w+)\(")


def shown(path: str) -> str:
    """A package-relative path as the agent's tools show it."""
    return f"{ROOT}/{path}"


def stem(path: str) -> str:
    """``traces/_common.py`` → ``traces_common`` (the test file's name)."""
    return "_".join(part.strip("_") for part in path.removesuffix(".py").split("/"))


@dataclass(frozen=True, slots=True)
class Def:
    """One function or method of the package."""

    path: str
    """Package-relative file path."""
    name: str
    """The function's name."""
    owner: str | None
    """The enclosing class, if a method."""
    start: int
    """Line of ``def`` (1-based)."""
    end: int
    """Last line of its body (1-based)."""
    params: tuple[str, ...]
    """Parameter names, ``self`` included."""


def _params(lines: list[str], start: int) -> tuple[str, ...]:
    """Parameter names of the ``def`` at index ``start`` (signatures may span lines)."""
    text, depth = "", 0
    for line in lines[start : start + 12]:
        text += line
        depth += line.count("(") - line.count(")")
        if depth <= 0 and "(" in text:
            break
    inner = text[text.find("(") + 1 : text.rfind(")")]
    names, depth, piece = [], 0, ""
    for char in inner + ",":
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            name = re.split(r"[:=]", piece)[0].strip().lstrip("*")
            if name and name != "/":
                names.append(name)
            piece = ""
        else:
            piece += char
    return tuple(names)


def _defs(path: str, text: str) -> list[Def]:
    lines = text.splitlines()
    classes: list[tuple[int, str]] = []  # (indent, name) of the enclosing classes
    out: list[Def] = []
    for index, line in enumerate(lines):
        match = _DEF.match(line) or _CLASS.match(line)
        if match is None:
            continue
        indent = len(match.group(1))
        classes = [c for c in classes if c[0] < indent]
        if line.lstrip().startswith("class"):
            classes.append((indent, match.group(2)))
            continue
        end = index
        for later in range(index + 1, len(lines)):
            body = lines[later]
            closing = body.lstrip().startswith((")", "]", "}"))
            if body.strip() and len(body) - len(body.lstrip()) <= indent and not closing:
                break
            end = later
        owner = classes[-1][1] if classes else None
        name = match.group(2)
        out.append(Def(path, name, owner, index + 1, end + 1, _params(lines, index)))
    return out


class Source:
    """The package's files (edited in memory as the agent edits them) and their functions."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = dict(sorted(files.items()))
        self.original = dict(self.files)
        self._defs = {path: _defs(path, text) for path, text in self.files.items()}
        self._methods = {(d.owner.lower(), d.name): d for d in reversed(self.defs()) if d.owner}

    def lines(self, path: str) -> list[str]:
        """The lines of ``path``."""
        return self.files[path].splitlines()

    def defs(self, path: str | None = None) -> list[Def]:
        """Functions of one file, or of the whole package, in file and line order."""
        if path is not None:
            return self._defs.get(path, [])
        return [d for found in self._defs.values() for d in found]

    def find(self, path: str, name: str) -> Def | None:
        """The first function ``name`` of ``path``."""
        return next((d for d in self.defs(path) if d.name == name), None)

    def raises(self, found: Def) -> int | None:
        """The line of the first ``raise`` in ``found``'s body, if any."""
        lines = self.lines(found.path)
        return next(
            (n for n in range(found.start, found.end + 1) if _RAISE.match(lines[n - 1])), None
        )

    def statement(self, found: Def) -> tuple[int, int]:
        """First and last line of the first ``raise`` in ``found`` (its ``def`` if none)."""
        at = self.raises(found) or found.start
        return at, _statement_end(self.lines(found.path), at)

    def resolve(self, path: str, text: str) -> Def | None:
        """The function a method call in ``text`` (a line of ``path``) reaches, when the
        receiver says: ``self.name(`` is this file's; ``x.accountant.name(`` is
        ``Accountant.name``. ``None`` when the receiver's type is unknown."""
        for receiver, name in _METHOD.findall(text):
            if receiver in ("self", "cls"):
                found = self.find(path, name)
            else:
                cls = receiver.split(".")[-1].replace("_", "").lower()
                found = self._methods.get((cls, name))
            if found is not None:
                return found
        return None

    def grep(self, pattern: str, limit: int = 120) -> tuple[str, list[tuple[str, int, str]]]:
        """``grep -rn`` over the package: the output and its hits ``(path, line, text)``."""
        regex = re.compile(pattern)
        hits = [
            (path, number, line)
            for path, text in self.files.items()
            for number, line in enumerate(text.splitlines(), start=1)
            if regex.search(line)
        ]
        rows = [f"{shown(p)}:{n}:{line.rstrip()}" for p, n, line in hits[:limit]]
        if len(hits) > limit:
            rows.append(f"[... {len(hits) - limit} more matches not shown]")
        return ("\n".join(rows) if hits else "(no matches)"), hits

    def listing(self, folder: str) -> str:
        """``ls -p`` of a package folder (``""`` for the top)."""
        prefix = f"{folder}/" if folder else ""
        names = {
            p[len(prefix) :].split("/")[0] + ("/" if "/" in p[len(prefix) :] else "")
            for p in self.files
            if p.startswith(prefix)
        }
        return "\n".join(sorted(names))

    def numbered(self, path: str, start: int, end: int) -> str:
        """Lines ``start..end`` of ``path`` as ``cat -n`` prints them."""
        lines = self.lines(path)
        start, end = max(1, start), min(len(lines), end)
        rows = [f"{n:6d}\t{lines[n - 1]}" for n in range(start, end + 1)]
        return "\n".join(rows) + f"\n[{shown(path)}: lines {start}-{end} of {len(lines)}]"

    def replace(self, path: str, old: str, new: str) -> str | None:
        """Edit ``path`` like ``str_replace``: the tool's answer, or ``None`` if no match."""
        text = self.files[path]
        if text.count(old) != 1:
            return None
        at = text[: text.index(old)].count("\n")  # 0-based first line of the match
        self.files[path] = text.replace(old, new)
        self._defs[path] = _defs(path, self.files[path])
        lines = self.lines(path)
        shown_from = max(0, at - 2)
        rows = lines[shown_from : at + new.count("\n") + 3]
        snippet = "\n".join(f"{shown_from + i + 1:6d}\t{row}" for i, row in enumerate(rows))
        return (
            f"The file {shown(path)} has been edited. Here's the result of running `cat -n` on "
            f"a snippet of {shown(path)}:\n{snippet}\nReview the changes and make sure they "
            "are as expected. Edit the file again if necessary."
        )

    def diff(self) -> str:
        """``git diff`` of every edited file against the original."""
        chunks: list[str] = []
        for path, text in self.files.items():
            before = self.original[path]
            if text == before:
                continue
            name = shown(path)
            chunks.append(f"diff --git a/{name} b/{name}")
            chunks.extend(
                line.rstrip("\n")
                for line in difflib.unified_diff(
                    before.splitlines(), text.splitlines(), f"a/{name}", f"b/{name}", lineterm=""
                )
            )
        return "\n".join(chunks)

    def changed(self) -> list[str]:
        """Edited files."""
        return [p for p, text in self.files.items() if text != self.original[p]]


@dataclass(frozen=True, slots=True)
class Scenario:
    """The bug the scripted agent fixes: a loop in ``caller`` hands each id to ``callee``,
    which raises on an id it already dropped, so an id listed twice fails half-way."""

    caller: Def
    """The function with the loop (``ContextManager.apply`` today)."""
    loop_line: int
    """Line of ``for <arg> in <iterable>:`` in the caller's file."""
    call_line: int
    """The line right after it, calling the callee with ``arg``."""
    callee: Def
    """The method that raises (``Accountant.remove`` today)."""
    raise_line: int
    """First line of the callee's ``raise`` statement."""
    raise_end: int
    """Last line of that statement."""
    error: str
    """The exception class raised."""
    arg: str
    """The loop variable (``item_id``)."""


def _statement_end(lines: list[str], start: int) -> int:
    """Last line (1-based) of the statement starting at 1-based ``start``."""
    depth = 0
    for number in range(start, len(lines) + 1):
        depth += lines[number - 1].count("(") - lines[number - 1].count(")")
        if depth <= 0:
            return number
    return start


def find_scenario(source: Source) -> Scenario | None:
    """The first loop that hands each item to another module's method that raises.

    The receiver must name the method's class (``self.accountant.remove`` →
    ``Accountant.remove``), so the match is the call the code really makes.
    """
    for path in source.files:
        lines = source.lines(path)
        for number in range(2, len(lines) + 1):
            loop, call = _FOR.match(lines[number - 2]), _CALL.match(lines[number - 1])
            if not (loop and call and call.group(3) == loop.group(1)):
                continue
            callee = source.resolve(path, lines[number - 1])
            caller = next((d for d in source.defs(path) if d.start < number <= d.end), None)
            if callee is None or caller is None or callee.path == path:
                continue
            at = source.raises(callee)
            raised = _RAISE.match(source.lines(callee.path)[at - 1]) if at else None
            if at is None or raised is None:
                continue
            end = _statement_end(source.lines(callee.path), at)
            return Scenario(
                caller, number - 1, number, callee, at, end, raised.group(1), loop.group(1)
            )
    return None
