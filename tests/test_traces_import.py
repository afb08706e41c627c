"""Every real agent log in ../shared/traces imports, with the counts SOURCES.md records.

The expected numbers (sessions per file, model calls per session) are read from the
per-file list of ../shared/traces/SOURCES.md at test time; nothing is copied here.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest

from _traces import TRACES, requires_traces
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import Component
from ctxbudget.traces import FORMATS, Session, detect_format, load_sessions

pytestmark = requires_traces

FOLDER_FORMAT = {
    "mini-swe-agent-v1": "mini-swe-agent",
    "mini-swe-agent-v2-toolcalls": "mini-swe-agent",
    "swe-agent-traj": "swe-agent",
    "openhands-output-jsonl": "openhands",
    "tau-bench-openai-chat": "openai-chat",
    "terminus2-chat-messages": "terminus",
}
TEXT_ONLY = ("mini-swe-agent-v1", "swe-agent-traj", "terminus2-chat-messages")


@cache
def listed() -> dict[str, dict[str, str]]:
    """SOURCES.md's per-file list: folder → file → the ``steps`` and ``has_usage`` cells."""
    text = (TRACES / "SOURCES.md").read_text(encoding="utf-8")
    rows: dict[str, dict[str, str]] = {}
    folder = None
    for line in text.split("## Per-file list", 1)[1].splitlines():
        if line.startswith("### "):
            folder = line[4:].strip()
            rows[folder] = {}
        elif folder and line.startswith("| ") and not line.startswith(("| file", "|---")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            name = cells[0].split(" (+ ")[0]
            rows[folder][name] = f"{cells[5]} || {cells[6]}"
    return rows


@cache
def everything() -> dict[str, list[Session]]:
    by_folder: dict[str, list[Session]] = {}
    for session in load_sessions(TRACES):
        by_folder.setdefault(session.name.split("/")[0], []).append(session)
    return by_folder


def data_files() -> list[Path]:
    if not TRACES.is_dir():
        return []
    return sorted(p for p in TRACES.glob("*/*") if p.suffix in (".json", ".jsonl"))


@pytest.mark.parametrize("path", data_files(), ids=lambda p: p.name[-60:])
def test_every_file_imports(path: Path) -> None:
    fmt = detect_format(path)
    assert fmt == FOLDER_FORMAT[path.parent.name]
    assert fmt in FORMATS
    sessions = load_sessions(path)
    assert sessions
    assert all(s.items and s.calls for s in sessions)
    if path.name.endswith("response.json"):  # one half of a terminus pair: the pair
        assert sessions[0].name.endswith("prompt.json")


def test_session_counts_per_folder_match_sources() -> None:
    for folder, rows in listed().items():
        expected = 0
        for cells in rows.values():
            many = re.match(r"(\d+) sessions", cells)
            expected += int(many.group(1)) if many else 1
        assert len(everything()[folder]) == expected, folder
    assert len(everything()["openhands-output-jsonl"]) == 3
    assert len(everything()["tau-bench-openai-chat"]) == 200
    assert len(everything()["terminus2-chat-messages"]) == 3
    names = [s.name for sessions in everything().values() for s in sessions]
    assert len(names) == len(set(names))


def expected_calls(folder: str, cells: str) -> list[int]:
    steps, usage = cells.split(" || ")
    if folder == "openhands-output-jsonl":
        return [int(n) for n in re.findall(r"=(\d+) LLM calls", steps)]
    if folder == "mini-swe-agent-v2-toolcalls":  # steps = api_calls; saved calls in the usage cell
        return [int(re.search(r"\((\d+) assistant msgs", usage).group(1))]  # type: ignore[union-attr]
    return [int(steps)]


def test_calls_per_session_match_sources() -> None:
    for folder, rows in listed().items():
        if folder == "tau-bench-openai-chat":
            continue
        sessions = everything()[folder]
        for name, cells in rows.items():
            mine = [s for s in sessions if s.name.split("/")[1].split("#")[0] == name]
            assert [len(s.calls) for s in mine] == expected_calls(folder, cells), name


def test_tau_bench_turns_match_sources() -> None:
    calls = sorted(len(s.calls) for s in everything()["tau-bench-openai-chat"])
    assert (calls[0], calls[len(calls) // 2], calls[-1]) == (2, 11, 30)
    assert sum(n >= 20 for n in calls) == 22
    assert sum(n >= 15 for n in calls) == 67


def test_mini_swe_agent_calls_are_billed_and_costs_add_up() -> None:
    for folder in ("mini-swe-agent-v1", "mini-swe-agent-v2-toolcalls"):
        for session in everything()[folder]:
            assert session.billed
            assert all(c.cost is not None and c.model for c in session.calls)
            raw = json.loads(Path(session.source).read_text(encoding="utf-8"))
            instance_cost = Decimal(str(raw["info"]["model_stats"]["instance_cost"]))
            assert session.recorded_cost is not None
            assert abs(session.recorded_cost - instance_cost) <= Decimal("1e-6")
            for call in session.calls:
                assert call.usage is not None
                assert call.usage.cache_read_tokens <= call.usage.input_tokens
                assert call.usage.reasoning_tokens <= call.usage.output_tokens
    v2 = everything()["mini-swe-agent-v2-toolcalls"]
    assert any(c.usage and c.usage.reasoning_tokens for s in v2 for c in s.calls)
    assert any(c.usage and c.usage.cache_read_tokens for s in v2 for c in s.calls)


def test_openhands_calls_carry_usage() -> None:
    for session in everything()["openhands-output-jsonl"]:
        assert session.billed
        assert session.model
        assert session.totals is not None
        assert session.totals.input_tokens
        total = sum(c.usage.input_tokens for c in session.calls if c.usage)
        assert total == session.totals.input_tokens


def test_swe_agent_totals_and_models() -> None:
    models = {"deepseek-chat-v2", "deepseek-coder-v2", "doubao-pro-128k", "gpt-4o-mini-2024-07-18"}
    for session in everything()["swe-agent-traj"]:
        assert session.model in models
        assert session.totals is not None
        assert session.totals.cost is not None
        assert session.totals.calls == len(session.calls)
        assert session.totals.input_tokens
        assert session.totals.output_tokens
        assert session.recorded_cost == session.totals.cost
        assert all(c.usage is None for c in session.calls)
        assert sum(i.component == Component.EXAMPLES for i in session.items) == 1


def test_no_tool_call_without_its_result() -> None:
    for sessions in everything().values():
        for session in sessions:
            assert not find_orphans(session.items), session.name


def test_call_positions_point_at_assistant_items() -> None:
    for sessions in everything().values():
        for session in sessions:
            assistant = [i for i, item in enumerate(session.items) if item.role == "assistant"]
            assert [c.position for c in session.calls] == assistant


def test_text_only_observations_are_marked() -> None:
    for folder in TEXT_ONLY:
        for session in everything()[folder]:
            assert session.observations, session.name
            by_id = {item.id: item for item in session.items}
            for item_id, tool in session.observations.items():
                assert by_id[item_id].role == "user"
                assert by_id[item_id].component == Component.TOOL_RESULTS
                assert tool
                assert " " not in tool
            first = next(i for i, item in enumerate(session.items) if item.role == "assistant")
            unmarked = [
                item
                for item in session.items[first:]
                if item.role == "user" and item.id not in session.observations
            ]
            if folder == "swe-agent-traj":  # every user message after the task is output
                assert not unmarked
            if folder == "mini-swe-agent-v1":  # only format-error reminders stay history
                assert all("EXACTLY ONE action" in str(item.parts) for item in unmarked)
    tools = Counter(
        tool for s in everything()["swe-agent-traj"] for tool in s.observations.values()
    )
    assert {"open", "edit", "search_dir", "create"} <= set(tools)
    terminus = Counter(
        tool for s in everything()["terminus2-chat-messages"] for tool in s.observations.values()
    )
    assert terminus["terminal"] > terminus["load_skill"] > 0
    for folder in (
        "mini-swe-agent-v2-toolcalls",
        "openhands-output-jsonl",
        "tau-bench-openai-chat",
    ):
        assert all(not s.observations for s in everything()[folder])
