"""One skill: a folder with a ``SKILL.md`` (YAML front matter, then instructions).

Only the front matter is read when a skill is discovered: ``name`` (lowercase letters,
digits and hyphens, at most 64 characters) and ``description`` (at most 1,024). The body is
read when the skill is activated, and the folder's other files only when one is referenced,
each by a path that must stay inside the folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ctxbudget.errors import ConfigError, UsageError

__all__ = ["SKILL_FILE", "Skill", "load_skill", "split_front_matter"]

SKILL_FILE = "SKILL.md"
"""The file that makes a folder a skill."""
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_NAME = 64
_MAX_DESCRIPTION = 1024


def _meta() -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Skill:
    """A discovered skill: its name and description; the rest stays on disk until needed."""

    name: str
    """Unique name, as the catalog shows it and activation asks for it."""
    description: str
    """What the skill does and when to use it (the only text in context before activation)."""
    folder: Path
    """The skill's folder (holds ``SKILL.md`` and any extra files)."""
    metadata: dict[str, Any] = field(default_factory=_meta)
    """Other front-matter fields, as written."""

    def body(self) -> str:
        """The instructions: ``SKILL.md`` after its front matter (read now, from disk)."""
        _, body = split_front_matter(_read(self.folder / SKILL_FILE), self.folder / SKILL_FILE)
        return body

    def files(self) -> tuple[str, ...]:
        """Paths (relative, ``/``-separated) of the folder's other files; none is read."""
        top = self.folder / SKILL_FILE
        return tuple(
            sorted(
                p.relative_to(self.folder).as_posix()
                for p in self.folder.rglob("*")
                if p.is_file() and p != top
            )
        )

    def path(self, relative: str) -> Path:
        """The file ``relative`` inside the folder; UsageError if it would leave the folder."""
        if not relative or Path(relative).is_absolute():
            raise UsageError(
                f"skill {self.name!r}: give a file path relative to its folder, got {relative!r}"
            )
        root = self.folder.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            raise UsageError(
                f"skill {self.name!r}: {relative!r} points outside the skill folder; "
                "only files inside it can be loaded"
            )
        if not target.is_file():
            known = ", ".join(self.files()) or "none"
            raise UsageError(f"skill {self.name!r} has no file {relative!r}; its files: {known}")
        return target

    def read(self, relative: str) -> str:
        """The text of one extra file, read only now."""
        return _read(self.path(relative))


def split_front_matter(text: str, source: Path | str = "SKILL.md") -> tuple[dict[str, Any], str]:
    """(front matter, body) of a ``SKILL.md``; ConfigError naming the file when malformed."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ConfigError(
            f"{source}: a SKILL.md must start with YAML front matter between '---' lines, "
            "with at least 'name' and 'description'"
        )
    end = next((n for n in range(1, len(lines)) if lines[n].strip() == "---"), None)
    if end is None:
        raise ConfigError(f"{source}: the front matter is not closed by a '---' line")
    try:
        front = yaml.safe_load("".join(lines[1:end]))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: the front matter is not valid YAML: {exc}") from exc
    if not isinstance(front, dict):
        raise ConfigError(f"{source}: the front matter must be a mapping (name: ..., ...)")
    return front, "".join(lines[end + 1 :]).strip("\n")


def load_skill(folder: Path) -> Skill:
    """Read a skill's front matter (not its body); ConfigError when it is missing or invalid."""
    source = folder / SKILL_FILE
    front, _ = split_front_matter(_read(source), source)
    name = front.get("name")
    description = front.get("description")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > _MAX_NAME:
        raise ConfigError(
            f"{source}: 'name' must be lowercase letters, digits and hyphens "
            f"(at most {_MAX_NAME} characters), got {name!r}"
        )
    if not isinstance(description, str) or not description.strip():
        raise ConfigError(f"{source}: 'description' must be a non-empty string")
    if len(description) > _MAX_DESCRIPTION:
        raise ConfigError(
            f"{source}: 'description' is {len(description)} characters; "
            f"at most {_MAX_DESCRIPTION} are allowed (it is always in the context)"
        )
    rest = {k: v for k, v in front.items() if k not in ("name", "description")}
    return Skill(name=name, description=description.strip(), folder=folder, metadata=rest)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text: {exc.reason}") from exc
