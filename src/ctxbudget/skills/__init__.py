"""Skills disclosed progressively: a catalog line each, the body only when activated.

A feature: may import the manager and everything below it, never another feature.

::

    library = SkillLibrary.discover("skills/")   # folders with a SKILL.md
    library.install(manager)                     # names + descriptions in the system prompt
    library.activate(manager, "pdf-forms")       # its body enters the working layer, budgeted
    library.load_file(manager, "pdf-forms", "reference/fields.md")   # only when referenced

See docs/scoping.md.
"""

from ctxbudget.skills.library import SkillLibrary, discover_skills
from ctxbudget.skills.skill import SKILL_FILE, Skill, load_skill, split_front_matter

__all__ = [
    "SKILL_FILE",
    "Skill",
    "SkillLibrary",
    "discover_skills",
    "load_skill",
    "split_front_matter",
]
