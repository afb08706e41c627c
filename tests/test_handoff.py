"""Handoff briefs: sections parsed leniently, JSON and files that read back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxbudget.compaction.handoff import (
    CONSTRAINTS_HEADING,
    DATA_NOTE,
    SECTIONS,
    HandoffBrief,
    from_json,
    parse_sections,
    read_brief,
    render_sections,
    to_json,
    to_markdown,
    write_brief,
)
from ctxbudget.errors import ConversionError, StorageError, UsageError


def _brief() -> HandoffBrief:
    sections = {name: f"- about {name.lower()}" for name in SECTIONS}
    sections["Open issues"] = "- KeyError: 'timeout' in src/app/config.py:12"
    return HandoffBrief(
        sections=sections,
        constraints=("Never delete files.", "You must keep the public API."),
        covers=("m3", "m4", "summary~m1~m2"),
        session="s-42",
        turn=17,
    )


def test_json_round_trip_is_exact_and_keeps_section_order() -> None:
    brief = _brief()
    data = to_json(brief)
    assert [s["title"] for s in data["sections"]] == list(SECTIONS)
    back = from_json(json.loads(json.dumps(data)))
    assert back == brief
    assert list(back.sections) == list(brief.sections)


@given(
    sections=st.dictionaries(st.text(min_size=1), st.text(), max_size=8),
    constraints=st.lists(st.text()),
    covers=st.lists(st.text(min_size=1)),
    session=st.none() | st.text(),
    turn=st.none() | st.integers(min_value=-(2**40), max_value=2**40),
)
def test_json_round_trip_property(
    sections: dict[str, str],
    constraints: list[str],
    covers: list[str],
    session: str | None,
    turn: int | None,
) -> None:
    brief = HandoffBrief(
        sections=sections,
        constraints=tuple(constraints),
        covers=tuple(covers),
        session=session,
        turn=turn,
    )
    back = from_json(json.loads(json.dumps(to_json(brief))))
    assert back == brief
    assert list(back.sections) == list(sections)


def test_write_and_read_back_equal(tmp_path: Path) -> None:
    brief = _brief()
    md, js = write_brief(brief, tmp_path / "briefs", "handoff-0001")
    assert (md.name, js.name) == ("handoff-0001.md", "handoff-0001.json")
    assert read_brief(js) == brief
    assert read_brief(md) == brief  # the .md path finds its .json twin
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# Handoff brief\n\nSession s-42, turn 17, replaces 3 items")
    for name in (*SECTIONS, CONSTRAINTS_HEADING):
        assert f"## {name}\n" in text
    assert "> Never delete files." in text
    assert sorted(p.name for p in (tmp_path / "briefs").iterdir()) == [
        "handoff-0001.json",
        "handoff-0001.md",
    ]  # no temporary files left behind


def test_rewriting_replaces_the_files(tmp_path: Path) -> None:
    write_brief(_brief(), tmp_path, "b")
    other = HandoffBrief(sections={"Progress": "- done"})
    write_brief(other, tmp_path, "b")
    assert read_brief(tmp_path / "b.json") == other


def test_write_errors_name_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="not-a-dir"):
        write_brief(_brief(), blocker, "b")
    with pytest.raises(UsageError, match="plain file name"):
        write_brief(_brief(), tmp_path, "../escape")


def test_read_errors_are_storage_errors_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"missing\.json"):
        read_brief(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(StorageError, match=r"bad\.json"):
        read_brief(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**to_json(_brief()), "turn": "seven"}))
    with pytest.raises(StorageError, match=r"brief\.turn"):
        read_brief(wrong)


def test_from_json_names_the_bad_field() -> None:
    data = to_json(_brief())
    with pytest.raises(ConversionError, match=r"brief\.sections\[1\]"):
        from_json({**data, "sections": [{"title": "a", "text": "x"}, {"title": "b"}]})
    with pytest.raises(ConversionError, match=r"brief\.covers"):
        from_json({**data, "covers": [1, 2]})
    with pytest.raises(ConversionError, match="version"):
        from_json({**data, "version": 99})
    with pytest.raises(ConversionError, match="not a handoff brief"):
        from_json({"sections": []})


def test_parse_sections_is_lenient_and_loses_nothing() -> None:
    text = (
        "Here is the summary.\n"
        "## 1. Task & Constraints\n- fix it\n"
        "### **Decisions and why**\n- chose A\n"
        "## Facts learned ##\n- x=1\n"
        "## Risks\n- disk is small\n"
        "## facts LEARNED\n- y=2\n"
    )
    sections = parse_sections(text)
    assert list(sections)[: len(SECTIONS)] == list(SECTIONS)
    assert sections["Task and constraints"] == "- fix it"
    assert sections["Decisions and why"] == "- chose A"
    assert sections["Facts learned"] == "- x=1\n- y=2"
    assert sections["Progress"] == ""
    assert sections["Notes"] == "Here is the summary."
    assert sections["Risks"] == "- disk is small"


def test_render_then_parse_round_trips() -> None:
    sections = dict(_brief().sections)
    assert parse_sections(render_sections(sections)) == sections
    assert "## Progress\n- (none)" in render_sections({"Progress": ""})


def test_markdown_without_origin() -> None:
    text = to_markdown(HandoffBrief(sections={"Next steps": "- ship"}))
    assert text == f"# Handoff brief\n\n{DATA_NOTE}\n\n## Next steps\n- ship\n"
