"""The embedded demo session is deterministic, well formed and long."""

import json
from importlib import resources

from ctxbudget.demo import demo_session


def test_same_session_every_time() -> None:
    first = json.dumps(demo_session(30).messages)
    assert first == json.dumps(demo_session(30).messages)


def test_every_call_is_answered_and_reads_real_files() -> None:
    session = demo_session(60)
    assert session.calls() == 60
    call_ids = [c["id"] for m in session.messages for c in m.get("tool_calls", [])]
    result_ids = [m["tool_call_id"] for m in session.messages if m["role"] == "tool"]
    assert call_ids == result_ids
    results = {m["tool_call_id"]: m["content"] for m in session.messages if m["role"] == "tool"}
    reads = [
        (json.loads(c["function"]["arguments"])["path"], results[c["id"]])
        for m in session.messages
        for c in m.get("tool_calls", [])
        if c["function"]["name"] == "read_file"
    ]
    assert len(reads) >= 10
    package = resources.files("ctxbudget")
    for path, content in reads:
        relative = path.removeprefix("ctxbudget/")
        assert content == package.joinpath(relative).read_text(encoding="utf-8")
