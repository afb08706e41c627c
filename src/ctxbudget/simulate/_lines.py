"""Line retention's index: the lines each reference was seen in, and which versions hold a line.

A reference is *line-kept* when a whole earlier line naming it, longer than it by more than
:data:`SLACK` characters, is still in the view verbatim (see
:meth:`ctxbudget.simulate.retention.RetentionTracker.score`). Lines are compared stripped
of surrounding whitespace. Each item version's lines are split once, each distinct
observed line scanned once, so checking a reference at a call costs one look-up per line
that counts for it, not a rescan of the view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet

__all__ = ["SLACK", "LineIndex", "lines_of"]

SLACK = 8
"""A line counts for a reference only when longer than it by more than this many characters."""
_SHORTEST_REFERENCE = 3
"""No reference is shorter (``120``, ``3.5``), so no shorter line than this + slack counts."""
_MIN_LINE = _SHORTEST_REFERENCE + SLACK + 1


def lines_of(text: str) -> list[str]:
    """The distinct stripped lines of ``text`` long enough to count for a reference, in order."""
    stripped = (line.strip() for line in text.splitlines())
    return list(dict.fromkeys(line for line in stripped if len(line) >= _MIN_LINE))


class LineIndex:
    """Lines of item versions (line → versions holding it) and of observations (ref → lines).

    ``keys_of`` gives the references of one line (the tracker's
    :func:`~ctxbudget.simulate.retention.references` rules). Versions are the tracker's
    integer keys; observation indices are its observation counter.
    """

    def __init__(self, keys_of: Callable[[str], Iterable[str]]) -> None:
        self._keys_of = keys_of
        self._holders: dict[str, list[int]] = {}
        """Line → keys of the item versions holding it."""
        self._first: dict[str, int] = {}
        """Line → index of the first non-background observation holding it."""
        self._counted: dict[str, list[str]] = {}
        """Reference → the lines that count for it, in order of first observation."""
        self._observed: set[int] = set()
        """Keys of the versions observed outside the background."""

    def add(self, key: int, text: str) -> list[str]:
        """Index the lines of a new item version; returns them (see :func:`lines_of`)."""
        holders, lines = self._holders, []
        for raw in text.splitlines():
            line = raw.strip()
            if len(line) >= _MIN_LINE:
                held = holders.get(line)
                if held is None:
                    holders[line] = [key]
                elif held[-1] != key:  # keys only grow: a repeat within this version
                    held.append(key)
                else:
                    continue
                lines.append(line)
        return lines

    def observed(self, key: int) -> bool:
        """Whether the version ``key`` was observed outside the background already."""
        return key in self._observed

    def observe(self, key: int, lines: Sequence[str], index: int) -> None:
        """Record the version ``key`` (its ``lines``) as observed at ``index``, outside the
        background: each line seen for the first time counts for every reference in it
        that it is longer than by more than :data:`SLACK` characters."""
        if key in self._observed:
            return
        self._observed.add(key)
        first, counted = self._first, self._counted
        for line in lines:
            if line in first:
                continue
            first[line] = index
            limit = len(line) - SLACK
            for ref in self._keys_of(line):
                if len(ref) < limit:
                    found = counted.get(ref)
                    if found is None:
                        counted[ref] = [line]
                    elif found[-1] is not line:  # a reference repeated in the line
                        found.append(line)

    def line_kept(self, ref: str, cutoff: int, shown: Callable[[str], bool]) -> bool:
        """Whether some line counting for ``ref``, first observed before ``cutoff``, is
        ``shown``; true as well when no such line exists (presence counts then)."""
        counted = False
        for line in reversed(self._counted.get(ref, ())):  # the latest lines first
            if self._first[line] < cutoff:
                if shown(line):
                    return True
                counted = True
        return not counted

    def held_by(self, keys: AbstractSet[int]) -> Callable[[str], bool]:
        """Whether a line is in one of the item versions ``keys``."""
        holders = self._holders

        def shown(line: str) -> bool:
            return any(k in keys for k in reversed(holders.get(line, ())))

        return shown
