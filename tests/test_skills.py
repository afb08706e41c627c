"""Skills: only names and descriptions until activated; bodies and files load within budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxbudget import ContextManager
from ctxbudget.budget.policy import Policy
from ctxbudget.errors import ConfigError, ContextOverflow, UsageError
from ctxbudget.session.items import Component
from ctxbudget.skills import SkillLibrary, load_skill, split_front_matter

BODY = "To fill a PDF form, list its fields first, then write each value. MARKER-BODY-7731"
REFERENCE = "Field types: text, checkbox, radio. MARKER-FILE-5520"


def write_skill(root: Path, name: str, description: str, body: str = BODY) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    front = f"---\nname: {name}\ndescription: {description}\nlicense: MIT\n---\n"
    (folder / "SKILL.md").write_text(front + body + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def library(tmp_path: Path) -> SkillLibrary:
    pdf = write_skill(tmp_path, "pdf-forms", "Fill PDF forms; use when a task mentions a PDF form.")
    (pdf / "reference").mkdir()
    (pdf / "reference" / "fields.md").write_text(REFERENCE, encoding="utf-8")
    write_skill(tmp_path / "more", "release-notes", "Write release notes from a changelog.")
    (tmp_path / "secret.txt").write_text("do not read", encoding="utf-8")
    return SkillLibrary.discover(tmp_path)


def manager(policy: str | Policy = "agent") -> ContextManager:
    mgr = ContextManager("gpt-4o", clock=lambda: 0.0, policy=policy)
    mgr.append({"role": "user", "content": "Fill in the attached form."})
    return mgr


def sent(mgr: ContextManager) -> str:
    return json.dumps(mgr.prepare("openai"))


def test_discovery_reads_front_matter_only(library: SkillLibrary) -> None:
    assert sorted(library.skills) == ["pdf-forms", "release-notes"]
    skill = library.get("pdf-forms")
    assert skill.metadata == {"license": "MIT"}
    assert skill.files() == ("reference/fields.md",)
    catalog = library.catalog()
    assert "pdf-forms: Fill PDF forms" in catalog
    assert "release-notes" in catalog
    assert "MARKER-BODY" not in catalog


def test_a_skill_body_is_absent_until_activated_then_present_within_budget(
    library: SkillLibrary,
) -> None:
    mgr = manager()
    library.install(mgr)
    before = sent(mgr)
    assert "pdf-forms" in before
    assert "MARKER-BODY-7731" not in before
    item = library.activate(mgr, "pdf-forms")
    assert item.component is Component.WORKING
    assert item.role == "user"
    after = sent(mgr)
    assert "MARKER-BODY-7731" in after
    assert "MARKER-FILE-5520" not in after
    row = mgr.snapshot().row(Component.WORKING)
    assert row.budget is not None
    assert 0 < row.used <= row.budget
    assert library.activate(mgr, "pdf-forms") == item  # activating twice adds nothing
    assert sent(mgr).count("MARKER-BODY-7731") == 1


def test_extra_files_load_only_when_referenced(library: SkillLibrary) -> None:
    mgr = manager()
    library.activate(mgr, "pdf-forms")
    assert "MARKER-FILE-5520" not in sent(mgr)
    library.load_file(mgr, "pdf-forms", "reference/fields.md")
    assert "MARKER-FILE-5520" in sent(mgr)


@pytest.mark.parametrize("path", ["../secret.txt", "../../secret.txt", "/etc/passwd", ""])
def test_paths_outside_the_skill_folder_are_refused(library: SkillLibrary, path: str) -> None:
    with pytest.raises(UsageError, match=r"outside the skill folder|relative to its folder"):
        library.load_file(manager(), "pdf-forms", path)


def test_a_missing_file_names_the_files_there_are(library: SkillLibrary) -> None:
    with pytest.raises(UsageError, match=r"reference/fields\.md"):
        library.load_file(manager(), "pdf-forms", "nope.md")


def test_a_body_over_the_working_budget_raises_and_appends_nothing(tmp_path: Path) -> None:
    write_skill(tmp_path, "huge", "A very long skill.", body="lots of words here " * 400)
    lib = SkillLibrary.discover(tmp_path)
    mgr = manager(Policy.from_dict({"name": "small", "budgets": {"working": 200}}))
    total = mgr.total()
    with pytest.raises(ContextOverflow, match="working budget") as info:
        lib.activate(mgr, "huge")
    assert info.value.component == "working"
    assert info.value.size > 200
    assert mgr.total() == total
    assert lib.active == {}


def test_deactivation_hides_the_body_and_keeps_it_recallable(library: SkillLibrary) -> None:
    mgr = manager()
    item = library.activate(mgr, "pdf-forms")
    library.load_file(mgr, "pdf-forms", "reference/fields.md")
    record = library.deactivate(mgr, "pdf-forms")
    assert record.strategy == "skills"
    assert len(record.edits) == 2
    text = sent(mgr)
    assert "MARKER-BODY-7731" not in text
    assert "MARKER-FILE-5520" not in text
    assert mgr.recall(item.id) == item
    again = library.activate(mgr, "pdf-forms")  # a fresh id: the log never reuses one
    assert again.id != item.id
    assert "MARKER-BODY-7731" in sent(mgr)


def test_activation_waits_for_pending_tool_results(library: SkillLibrary) -> None:
    mgr = manager()
    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
    mgr.append({"role": "assistant", "content": None, "tool_calls": [call]})
    with pytest.raises(UsageError, match="append the results first"):
        library.activate(mgr, "pdf-forms")


def test_unknown_and_duplicate_skills_are_clear_errors(tmp_path: Path) -> None:
    write_skill(tmp_path / "a", "same", "One.")
    write_skill(tmp_path / "b", "same", "Two.")
    with pytest.raises(ConfigError, match="two skills are named 'same'"):
        SkillLibrary.discover(tmp_path)
    with pytest.raises(UsageError, match="no skill named 'x'"):
        SkillLibrary([]).get("x")
    with pytest.raises(ConfigError, match="does not exist"):
        SkillLibrary.discover(tmp_path / "missing")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter\n", "must start with YAML front matter"),
        ("---\nname: x\n", "not closed"),
        ("---\nname: [unclosed\n---\n", "not valid YAML"),
        ("---\n- a list\n---\n", "must be a mapping"),
        ("---\ndescription: d\n---\n", "'name' must be"),
        ("---\nname: Bad_Name\ndescription: d\n---\n", "'name' must be"),
        ("---\nname: ok\n---\nbody", "'description' must be"),
        ("---\nname: ok\ndescription: '" + "x" * 1025 + "'\n---\n", "at most 1024"),
    ],
)
def test_invalid_front_matter_names_the_file_and_the_fix(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "SKILL.md").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_skill(tmp_path)
    assert "SKILL.md" in str(info.value)


def test_front_matter_splits_from_the_body() -> None:
    front, body = split_front_matter("---\nname: a\ndescription: b\n---\n\nDo this.\n")
    assert front == {"name": "a", "description": "b"}
    assert body == "Do this."
