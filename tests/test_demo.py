"""The embedded demo session: a long, deterministic, well-formed coding-agent run.

It is the default input of the offline replays, so beyond being well formed it must look
like a real agent run: phases (failing tests, edits, a dead end, tool errors, re-reads of
old regions, a final summary), real reads of the package, realistic sizes, and words that
reuse what the agent saw, sometimes long before (what makes retention measurable).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

import pytest

from ctxbudget.budget.accounting import Accountant
from ctxbudget.budget.models import resolve_model
from ctxbudget.convert.openai_chat import from_openai_chat, from_openai_chat_tools
from ctxbudget.demo import DemoSession, _package_sources, demo_session
from ctxbudget.errors import UsageError
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import item_text
from ctxbudget.simulate.retention import references

Call = tuple[str, dict[str, Any], str]


@pytest.fixture(scope="module")
def session() -> DemoSession:
    return demo_session()


def steps(session: DemoSession) -> list[tuple[int, str, list[Call]]]:
    """``(call number, thought, [(tool, arguments, result)])`` per model call."""
    results = {m["tool_call_id"]: m["content"] for m in session.messages if m["role"] == "tool"}
    out: list[tuple[int, str, list[Call]]] = []
    for message in session.messages:
        if message["role"] == "assistant":
            calls = [
                (
                    c["function"]["name"],
                    json.loads(c["function"]["arguments"]),
                    results[c["id"]],
                )
                for c in message.get("tool_calls", [])
            ]
            out.append((len(out) + 1, message["content"], calls))
    return out


def package_text(path: str) -> str:
    """A file of the frozen sources the agent works in (``src/ctxbudget/x.py`` → ``x.py``)."""
    return _package_sources()[path.removeprefix("src/ctxbudget/")]


def test_same_session_every_time() -> None:
    first, second = demo_session(), demo_session()
    assert json.dumps(first.messages) == json.dumps(second.messages)
    assert (first.name, first.tools) == (second.name, second.tools)
    assert json.dumps(demo_session(45).messages) == json.dumps(demo_session(45).messages)


def test_same_bytes_in_every_process() -> None:
    """No set or hash order leaks into the session (string hashing is salted per process)."""
    script = (
        "import hashlib, json; from ctxbudget.demo import demo_session; "
        "print(hashlib.sha256(json.dumps(demo_session().messages).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    here = hashlib.sha256(json.dumps(demo_session().messages).encode()).hexdigest()
    assert digests == {here}


@pytest.mark.parametrize("turns", [1, 2, 3, 17, 60, 150, 230])
def test_turns_are_model_calls(turns: int) -> None:
    session = demo_session(turns)
    assert session.calls() == turns
    assert [m["role"] for m in session.messages[:2]] == ["system", "user"]
    last = session.messages[-1]
    if turns == 1:
        assert last["role"] == "tool"
    else:  # the last call is the agent's final answer, with no tool call
        assert last["role"] == "assistant"
        assert "tool_calls" not in last
        assert last["content"].startswith("Summary")
    assert str(turns) in session.name


@pytest.mark.parametrize("turns", [0, -3, True, 2.5])
def test_turns_must_be_a_positive_int(turns: Any) -> None:
    with pytest.raises(UsageError, match="turns"):
        demo_session(turns)


@pytest.mark.parametrize("turns", [7, 150])
def test_every_call_is_answered_before_the_next_call(turns: int) -> None:
    session = demo_session(turns)
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in session.tools}
    seen: set[str] = set()
    messages = list(session.messages)
    index = 2
    while index < len(messages):
        message = messages[index]
        assert message["role"] == "assistant", index  # results only right after their call
        assert isinstance(message["content"], str)
        assert message["content"]
        calls = message.get("tool_calls", [])
        answers = messages[index + 1 : index + 1 + len(calls)]
        assert [m["role"] for m in answers] == ["tool"] * len(calls)
        assert [m["tool_call_id"] for m in answers] == [c["id"] for c in calls]
        for call in calls:
            assert call["id"] not in seen
            seen.add(call["id"])
            assert call["type"] == "function"
            arguments = json.loads(call["function"]["arguments"])
            schema = schemas[call["function"]["name"]]
            assert set(schema["required"]) <= set(arguments) <= set(schema["properties"])
        index += 1 + len(calls)
    items = from_openai_chat(messages)
    assert not find_orphans(items, allow_pending_tail=False)


def test_some_calls_are_parallel(session: DemoSession) -> None:
    parallel = [n for n, _, calls in steps(session) if len(calls) > 1]
    assert len(parallel) >= 3
    assert any(len(calls) == 3 for _, _, calls in steps(session))
    assert all(len(calls) <= 3 for _, _, calls in steps(session))


def test_reads_are_real_package_text(session: DemoSession) -> None:
    edited: set[str] = set()
    whole = regions = 0
    for _, _, calls in steps(session):
        for name, args, out in calls:
            path = args.get("path", "")
            if name == "str_replace" and not out.startswith("Error"):
                edited.add(path)
            if name != "read_file" or path in edited or out.startswith("Error"):
                continue
            if not path.startswith("src/ctxbudget/"):
                continue  # the (scripted) test file
            lines = package_text(path).splitlines()
            if "start_line" not in args:
                whole += 1
                assert out == package_text(path), path
                continue
            regions += 1
            for row in out.splitlines()[:-1]:  # the last line says which lines these are
                number, text = row.split("\t", 1)
                assert lines[int(number) - 1] == text, (path, number)
    # The script follows the package's own source, so these counts move as the tree grows
    # (12 regions before the scoping packages, 11 after): the floors say "both kinds, often".
    assert whole >= 25
    assert regions >= 10


def test_failing_tests_show_real_tracebacks(session: DemoSession) -> None:
    frames = 0
    failed_runs = 0
    for _, _, calls in steps(session):
        for name, _, out in calls:
            if name != "run_tests" or "FAILED" not in out:
                continue
            failed_runs += 1
            rows = out.splitlines()
            for at, row in enumerate(rows):
                frame = re.match(r"^(src/ctxbudget/\S+\.py):(\d+): ", row)
                if frame is None:
                    continue
                marked = next(r for r in reversed(rows[:at]) if r.startswith(">"))
                real = package_text(frame.group(1)).splitlines()[int(frame.group(2)) - 1]
                assert marked[1:].strip() == real.strip()
                frames += 1
    assert failed_runs >= 4
    assert frames >= 4


def test_the_story_has_its_phases(session: DemoSession) -> None:
    found = steps(session)
    outputs = [(n, name, args, out) for n, _, calls in found for name, args, out in calls]
    tools = {name for _, name, _, _ in outputs}
    assert tools == {"list_dir", "grep", "read_file", "run_tests", "str_replace", "bash"}
    edits = [out for _, name, _, out in outputs if name == "str_replace"]
    assert any(out.startswith("Error: no replacement") for out in edits)  # a missed edit
    assert sum("has been edited" in out for out in edits) >= 3  # try, revert, fix
    assert any("No such file or directory" in out for _, _, _, out in outputs)
    assert any("timed out" in out for _, _, _, out in outputs)
    assert any("DID NOT RAISE" in out for _, _, _, out in outputs)  # the dead end
    passed = [out for _, name, args, out in outputs if name == "run_tests" and "target" in args]
    assert "failed" in passed[0]
    assert "1 passed" in passed[-1]
    diff = next(out for _, _, args, out in outputs if args.get("command") == "git diff")
    assert diff.startswith("diff --git")
    assert "\n+" in diff
    first_read: dict[str, int] = {}
    rereads = 0
    for number, name, args, _ in outputs:
        if name != "read_file":
            continue
        path = args["path"]
        if "start_line" in args and number - first_read.get(path, number) >= 20:
            rereads += 1
        first_read.setdefault(path, number)
    assert rereads >= 10  # regions of files read long before
    assert session.messages[-1]["content"].startswith("Summary")


def test_later_calls_reuse_old_references(session: DemoSession) -> None:
    """Mostly the last few results, and in a measurable share of calls, results from more
    than 20 calls back: what a context policy that drops old results would lose."""
    last_offered: dict[str, int] = {}
    call = 0
    ages: list[int] = []
    old_calls = later_calls = 0
    for item in from_openai_chat(list(session.messages)):
        if item.role == "assistant":
            call += 1
            used = [last_offered[r] for r in references(item_text(item)) if r in last_offered]
            ages += [call - seen for seen in used]
            if call > 20:
                later_calls += 1
                old_calls += any(call - seen > 20 for seen in used)
        elif item.tool_results:
            for ref in references(item_text(item)):
                last_offered[ref] = call
    recent = sum(age <= 5 for age in ages) / len(ages)
    old = sum(age > 20 for age in ages) / len(ages)
    assert recent >= 0.4
    assert 0.1 <= old <= 0.6
    assert old_calls / later_calls >= 0.3


def test_default_size_stresses_a_200k_window(session: DemoSession) -> None:
    accountant = Accountant(resolve_model("gpt-4o"), "agent")  # o200k, exact
    accountant.set_tools(from_openai_chat_tools(list(session.tools)))
    prompts: list[int] = []
    outputs: list[int] = []
    for item in from_openai_chat(list(session.messages)):
        if item.role == "assistant":
            prompts.append(accountant.input_tokens.tokens)
        accountant.add(item)
        if item.tool_results:
            outputs.append(accountant.count(item.id).tokens)
    assert prompts == sorted(prompts)
    assert prompts[0] < 3_000
    # the demo reads the package's own sources, so it grows a little with them
    assert 110_000 <= prompts[-1] <= 215_000
    assert max(outputs) >= 5_000  # a few large outputs (whole big files, pytest -v)
    assert sum(o >= 5_000 for o in outputs) <= 5
    assert statistics.median(outputs) < 800  # most are small


def test_generation_is_fast() -> None:
    demo_session()  # warm the file reads
    started = time.perf_counter()
    demo_session()
    assert time.perf_counter() - started < 2.0


def test_any_sources_give_a_well_formed_session() -> None:
    """With no loop to fix, the agent still orients, audits and sums up."""
    sources = {
        "a.py": "def f(x):\n    return x\n",
        "pkg/b.py": (
            "class B:\n    def g(self):\n        for y in self.items:\n            print(y)\n"
        ),
    }
    session = demo_session(30, sources=sources)
    assert session.calls() == 30
    assert not find_orphans(from_openai_chat(list(session.messages)), allow_pending_tail=False)
    assert "audit" in session.messages[1]["content"]


def test_the_bug_is_found_in_the_sources() -> None:
    """The story is not tied to ctxbudget's current code: any loop that hands ids to
    another class's raising method becomes the bug, and gets the same fix."""
    sources = {
        "book.py": (
            "class Book:\n    def drop(self, key):\n        if key not in self._d:\n"
            '            raise KeyError(f"no entry {key!r}")\n        del self._d[key]\n'
        ),
        "shop.py": (
            "class Shop:\n    def clear(self, keys):\n        for key in keys:\n"
            "            self.book.drop(key)\n"
        ),
    }
    session = demo_session(40, sources=sources)
    assert "Shop.clear" in session.messages[1]["content"]
    outputs = [out for _, _, calls in steps(session) for _, _, out in calls]
    assert any("raise KeyError" in out and "src/ctxbudget/book.py:4" in out for out in outputs)
    diff = next(out for out in outputs if out.startswith("diff --git"))
    assert "+        for key in dict.fromkeys(keys):" in diff
    assert "Book.drop" in session.messages[-1]["content"]
