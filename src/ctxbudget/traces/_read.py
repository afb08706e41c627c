"""Reading agent logs: JSON or JSON Lines, with line numbers, and errors that say where.

Every importer reads through :func:`read_document` and checks fields through
:class:`Where`, so whatever is wrong with a file surfaces as one
:class:`~ctxbudget.errors.TraceError` naming the file, the line (JSONL: the record's line;
JSON: the line of a parse error) and what was expected — never a ``KeyError`` from deep
inside an importer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

from ctxbudget.errors import ConversionError, ProviderError, TraceError

__all__ = ["Document", "Line", "Where", "converting", "read_document", "sub"]

_TOO_DEEP = (
    "JSON nested too deeply to read (arrays or objects inside each other past Python's "
    "recursion limit); expected an agent log (JSON or JSONL)"
)
_INDEX = re.compile(r"(?:messages|input)\[(\d+)\]")

Line = tuple[int | None, Any]
"""One record: its 1-based line number (``None`` for a whole JSON file) and its value."""


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a log file; every check raises :class:`TraceError` naming it."""

    file: str
    line: int | None = None

    def at(self, line: int | None) -> Where:
        """The same file at another line."""
        return Where(self.file, line)

    def fail(self, message: str) -> NoReturn:
        """Raise the one error type of the importers, naming this place."""
        raise TraceError(message, file=self.file, line=self.line)

    def obj(self, value: Any, what: str) -> dict[str, Any]:
        """``value`` as a JSON object, or fail naming ``what``."""
        if not isinstance(value, dict):
            self.fail(f"{what}: expected a JSON object, got {describe(value)}")
        return value

    def arr(self, value: Any, what: str) -> list[Any]:
        """``value`` as a JSON array, or fail naming ``what``."""
        if not isinstance(value, list):
            self.fail(f"{what}: expected a JSON array, got {describe(value)}")
        return value

    def field(self, obj: Mapping[str, Any], key: str, what: str) -> Any:
        """A required field, or fail naming it (``what.key``)."""
        if key not in obj:
            self.fail(f"missing required field '{what}.{key}'")
        return obj[key]

    def text(self, obj: Mapping[str, Any], key: str, what: str) -> str:
        """A required string field."""
        value = self.field(obj, key, what)
        if not isinstance(value, str):
            self.fail(f"'{what}.{key}': expected a string, got {describe(value)}")
        return value

    def count(self, obj: Mapping[str, Any], key: str, what: str, default: int | None = None) -> int:
        """A non-negative integer field (token counts); ``default`` when absent or null."""
        value = obj.get(key)
        if value is None:
            if default is None:
                self.fail(f"missing required field '{what}.{key}'")
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(f"'{what}.{key}': expected a non-negative integer, got {value!r}")
        return value

    def money(self, value: Any, what: str) -> Decimal | None:
        """A dollar figure as an exact :class:`Decimal` (``None`` stays ``None``)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.fail(f"'{what}': expected a number, got {describe(value)}")
        try:
            return Decimal(str(value))
        except InvalidOperation:
            self.fail(f"'{what}': expected a number, got {value!r}")


def sub(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    """An optional nested object (``{}`` when absent or not an object)."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def describe(value: Any) -> str:
    """A short name of a JSON value's type, for error messages."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__


@contextmanager
def converting(where: Where, context: str = "", lines: Sequence[int | None] = ()) -> Iterator[None]:
    """Re-raise converter and usage-mapper errors as :class:`TraceError` at ``where``.

    ``context`` names the part of the file being converted; ``lines`` gives the line of
    each converted message, so an error at ``messages[i]`` / ``input[i]`` names its line.
    """
    try:
        yield
    except (ConversionError, ProviderError) as exc:
        message = f"{context}: {exc}" if context else str(exc)
        line = where.line
        found = _INDEX.match(getattr(exc, "path", ""))
        if found and int(found.group(1)) < len(lines):
            line = lines[int(found.group(1))]
        raise TraceError(message, file=where.file, line=line) from exc


@dataclass(frozen=True, slots=True)
class Document:
    """A log file read once: one JSON value, or the records of a JSON Lines file.

    A JSONL file whose line cannot be parsed keeps the records before it and the error,
    so a reader can still tell the format from the first lines and then report the line.
    """

    path: Path
    value: Any = None
    """The JSON value (JSON files)."""
    lines: tuple[Line, ...] | None = None
    """The records (JSONL files), blank lines skipped."""
    error: TraceError | None = None
    """The first line that could not be parsed (JSONL), if any."""

    @property
    def where(self) -> Where:
        return Where(str(self.path))

    def records(self) -> tuple[Line, ...]:
        """Every record, raising the parse error (if any) once the reader asks for all."""
        if self.error is not None:
            raise self.error
        if self.lines is not None:
            return self.lines
        return ((None, self.value),)


def read_document(path: Path) -> Document:
    """Read ``path`` as JSON, or as JSON Lines when it holds one value per line.

    An empty file, a file that is not UTF-8, or JSON that does not parse raise
    :class:`TraceError` with the line. The last line of a JSONL file that is cut short
    (no final newline: a log still being written) is ignored.
    """
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start}); expected an agent log "
            "(JSON or JSONL, UTF-8)",
            file=file,
        ) from exc
    except OSError as exc:
        raise TraceError(f"cannot read the file: {exc.strerror or exc}", file=file) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise TraceError("the file is empty; expected an agent log (JSON or JSONL)", file=file)
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise TraceError(_TOO_DEEP, file=file) from exc
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data" and not path.name.endswith(".jsonl"):
            raise TraceError(f"invalid JSON: {exc.msg}", file=file, line=exc.lineno) from exc
        return _read_lines(path, text)
    if path.name.endswith(".jsonl") and "\n" not in text.strip():
        first = text[: len(text) - len(text.lstrip())].count("\n") + 1
        return Document(path, lines=((first, value),))
    return Document(path, value=value)


def _read_lines(path: Path, text: str) -> Document:
    lines: list[Line] = []
    raw = text.split("\n")
    for n, line in enumerate(raw, 1):
        if not line.strip():
            continue
        try:
            lines.append((n, json.loads(line)))
        except RecursionError as exc:
            raise TraceError(_TOO_DEEP, file=str(path), line=n) from exc
        except json.JSONDecodeError as exc:
            if n == len(raw) and lines:  # cut short: the writer has not finished this line
                break
            message = f"invalid JSON: {exc.msg} (column {exc.colno})"
            error = TraceError(message, file=str(path), line=n)
            return Document(path, lines=tuple(lines), error=error)
    return Document(path, lines=tuple(lines))
