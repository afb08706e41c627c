"""Progressive disclosure: a catalog of skills in context, a skill's body only once activated.

Before activation the model sees one line per skill (name and description, in the system
prompt via :meth:`SkillLibrary.install`). :meth:`SkillLibrary.activate` reads the skill's
body and appends it to the **working** component, counted first: when it does not fit the
working budget (or, if that is unbudgeted, the room left in the usable window) it raises
:class:`~ctxbudget.errors.ContextOverflow` and appends nothing. A referenced extra file is
loaded the same way with :meth:`SkillLibrary.load_file`. Deactivation hides the item through
a log record, so it stays recallable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctxbudget.compaction.strategies.base import Proposal
from ctxbudget.errors import ConfigError, ContextOverflow, UsageError
from ctxbudget.session.items import Component, Item, TextPart
from ctxbudget.session.log import CompactionRecord, Edit
from ctxbudget.skills.skill import SKILL_FILE, Skill, load_skill

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = ["SkillLibrary", "discover_skills"]

CATALOG_HEADER = (
    "Skills you can use. Each line is a skill's name and when to use it; ask for a skill by "
    "name to load its full instructions."
)
"""First line of the catalog text."""


def discover_skills(*roots: str | Path) -> list[Skill]:
    """Every skill folder (one holding ``SKILL.md``) under ``roots``, sorted by path."""
    skills: list[Skill] = []
    for root in roots:
        base = Path(root)
        if not base.is_dir():
            raise ConfigError(f"skills folder {base} does not exist or is not a folder")
        for found in sorted(base.rglob(SKILL_FILE)):
            skills.append(load_skill(found.parent))
    return skills


class SkillLibrary:
    """The skills of one session and which of them are active in its context."""

    def __init__(self, skills: Iterable[Skill]) -> None:
        self.skills: dict[str, Skill] = {}
        """Skills by name."""
        for skill in skills:
            if skill.name in self.skills:
                raise ConfigError(
                    f"two skills are named {skill.name!r}: {self.skills[skill.name].folder} and "
                    f"{skill.folder}; rename one"
                )
            self.skills[skill.name] = skill
        self.active: dict[str, str] = {}
        """Active skill name → id of the working item holding its body."""
        self.loaded: dict[tuple[str, str], str] = {}
        """(skill, file) → id of the working item holding that file."""

    @classmethod
    def discover(cls, *roots: str | Path) -> SkillLibrary:
        """A library of every skill under ``roots`` (front matter read, bodies not)."""
        return cls(discover_skills(*roots))

    def get(self, name: str) -> Skill:
        """The skill called ``name``; UsageError naming the known ones otherwise."""
        skill = self.skills.get(name)
        if skill is None:
            known = ", ".join(sorted(self.skills)) or "none"
            raise UsageError(f"no skill named {name!r}; known skills: {known}")
        return skill

    def catalog(self) -> str:
        """Names and descriptions, one line each: all the context holds before activation."""
        lines = [f"- {s.name}: {s.description}" for s in self.skills.values()]
        return "\n".join([CATALOG_HEADER, *lines])

    def install(self, manager: ContextManager) -> Item:
        """Add the catalog to the system prompt (fixed, cached with it)."""
        return manager.set_system(self.catalog())

    def activate(self, manager: ContextManager, name: str) -> Item:
        """Load the skill's body into the working layer, within budget; returns the item.

        Activating an active skill returns its item again. Call it between turns (not
        between a tool call and its result). Raises ContextOverflow, appending nothing,
        when the body does not fit.
        """
        skill = self.get(name)
        if name in self.active:
            return manager.recall(self.active[name])
        text = f'<skill name="{skill.name}">\n{skill.body()}\n</skill>'
        item = self._add(manager, f"skill-{skill.name}", text, f"skill {skill.name!r}")
        self.active[name] = item.id
        return item

    def load_file(self, manager: ContextManager, name: str, relative: str) -> Item:
        """Load one file the skill references into the working layer, within budget."""
        skill = self.get(name)
        key = (name, relative)
        if key in self.loaded:
            return manager.recall(self.loaded[key])
        body = skill.read(relative)
        text = f'<skill-file skill="{skill.name}" path="{relative}">\n{body}\n</skill-file>'
        item = self._add(manager, f"skill-{skill.name}-file", text, f"{relative!r} of {name!r}")
        self.loaded[key] = item.id
        return item

    def deactivate(self, manager: ContextManager, name: str) -> CompactionRecord:
        """Take a skill's body and its loaded files out of the view (recallable from the log)."""
        if name not in self.active:
            raise UsageError(f"skill {name!r} is not active; active: {sorted(self.active)}")
        ids = [self.active.pop(name)]
        ids += [self.loaded.pop(k) for k in list(self.loaded) if k[0] == name]
        present = {i.id for i in manager.view.items}
        edits = tuple(
            Edit(kind="hide", remove=(i,), note=f"skill {name} deactivated")
            for i in ids
            if i in present
        )
        record = manager.apply("skills", Proposal(edits=edits), f"skill {name!r} deactivated")
        if isinstance(record, str):
            raise UsageError(f"could not deactivate skill {name!r}: {record}")
        return record

    def _add(self, manager: ContextManager, stem: str, text: str, what: str) -> Item:
        _check_between_turns(manager, what)
        item = Item(
            id=_new_id(manager, stem),
            role="user",
            component=Component.WORKING,
            parts=(TextPart(text=text),),
        )
        tokens = manager.accountant.counter.count_item(item).tokens
        room, where = _room(manager, Component.WORKING)
        if tokens > room:
            raise ContextOverflow(
                f"{what} needs {tokens:,} tokens but {where} has {max(room, 0):,} left; "
                "deactivate another skill, raise the working share in the policy, or split "
                "the skill's instructions into files loaded on demand",
                component=Component.WORKING.value,
                size=tokens,
                limit=max(room, 0),
            )
        manager.extend([item])
        return item


def _room(manager: ContextManager, component: Component) -> tuple[int, str]:
    """Tokens left for ``component``: its budget, else the usable window; and which."""
    row = manager.snapshot().row(component)
    if row.remaining is not None:
        return row.remaining, f"the {component.value} budget ({row.budget:,} tokens)"
    usable = manager.accountant.ledger.allocation.usable
    return usable - manager.total(), f"the usable window ({usable:,} tokens)"


def _new_id(manager: ContextManager, stem: str) -> str:
    n = 1
    candidate = stem
    while candidate in manager.log:
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def _check_between_turns(manager: ContextManager, what: str) -> None:
    items: Sequence[Any] = manager.view.items
    if items and items[-1].tool_calls:
        raise UsageError(
            f"cannot load {what} now: the last message calls tools whose results are not "
            "appended yet; append the results first, then load it"
        )
