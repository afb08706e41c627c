"""Logs that cannot be imported: one TraceError naming the file, the line, what was expected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctxbudget.errors import TraceError, UsageError
from ctxbudget.traces import FORMATS, _load, detect_format, iter_sessions, load_sessions


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, records: list[Any]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


CLAUDE_USER = {
    "type": "user",
    "sessionId": "s",
    "uuid": "u1",
    "parentUuid": None,
    "isSidechain": False,
    "message": {"role": "user", "content": "hi"},
}


def test_an_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.jsonl", "")
    with pytest.raises(TraceError, match="empty") as caught:
        load_sessions(path)
    assert caught.value.file == str(path)
    assert isinstance(caught.value, UsageError)


def test_invalid_json_on_line_3_of_a_jsonl_names_line_3(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    lines = [json.dumps(CLAUDE_USER), json.dumps({**CLAUDE_USER, "uuid": "u2"}), "{not json", "{}"]
    write(path, "\n".join(lines) + "\n")
    with pytest.raises(TraceError, match="invalid JSON") as caught:
        load_sessions(path)
    assert caught.value.line == 3
    assert f"{path}:3:" in str(caught.value)
    with pytest.raises(TraceError) as in_dir:  # a recognised log with a bad line is not skipped
        load_sessions(tmp_path)
    assert in_dir.value.line == 3


def test_invalid_json_in_a_json_file_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", '{\n  "messages": [\n    {"role": "user",,}\n  ]\n}\n')
    with pytest.raises(TraceError) as caught:
        detect_format(path)
    assert caught.value.line == 3


def test_an_unknown_shape_names_the_formats_expected(tmp_path: Path) -> None:
    path = write(tmp_path / "config.json", json.dumps({"name": "my-app", "version": "1.0"}))
    with pytest.raises(TraceError) as caught:
        load_sessions(path)
    message = str(caught.value)
    for expected in (
        "mini-swe-agent",
        "SWE-agent",
        "OpenAI chat",
        "tau-bench",
        "Claude Code",
        "Codex",
    ):
        assert expected in message
    with pytest.raises(TraceError, match="expected an agent log"):
        detect_format(path)


def test_a_directory_without_logs(tmp_path: Path) -> None:
    write(tmp_path / "package.json", json.dumps({"name": "x"}))
    write(tmp_path / "notes.json", "not json at all")
    write(tmp_path / "readme.md", "# hi")
    with pytest.raises(TraceError, match="no agent logs found") as caught:
        load_sessions(tmp_path)
    assert caught.value.file == str(tmp_path)


def test_a_directory_skips_what_is_not_a_log(tmp_path: Path) -> None:
    write(tmp_path / "package.json", json.dumps({"name": "x"}))
    (tmp_path / "b").mkdir()
    write(tmp_path / "b" / "chat.json", json.dumps([{"role": "user", "content": "hi"}]))
    hidden = tmp_path / ".cache"
    hidden.mkdir()
    write(hidden / "chat.json", json.dumps([{"role": "user", "content": "hidden"}]))
    (session,) = load_sessions(tmp_path)
    assert session.name == "b/chat.json"
    assert session.format == "openai-chat"


def test_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        load_sessions(tmp_path / "nope.jsonl")
    with pytest.raises(TraceError, match="no such file"):
        list(iter_sessions([tmp_path / "nope"]))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b'{"messages": "\xff\xfe"}')
    with pytest.raises(TraceError, match="UTF-8"):
        load_sessions(path)


def test_missing_fields_are_named(tmp_path: Path) -> None:
    mini = {
        "trajectory_format": "mini-swe-agent-1",
        "info": {},
        "messages": [{"role": "system", "content": "s"}, {"content": "no role"}],
    }
    with pytest.raises(TraceError, match=r"messages\[1\]\.role"):
        load_sessions(write(tmp_path / "a.traj.json", json.dumps(mini)))
    swe = {"trajectory": [], "history": [{"role": "user"}]}
    with pytest.raises(TraceError, match=r"history\[0\]\.content"):
        load_sessions(write(tmp_path / "b.traj", json.dumps(swe)))
    claude = [CLAUDE_USER, {**CLAUDE_USER, "uuid": "u2", "type": "assistant", "message": None}]
    with pytest.raises(TraceError, match="message") as caught:
        load_sessions(jsonl(tmp_path / "c.jsonl", claude))
    assert caught.value.line == 2
    codex = [
        {"timestamp": "t", "type": "session_meta", "payload": {"id": "x"}},
        {
            "timestamp": "t",
            "type": "event_msg",
            "payload": {
                "type": "token_count",
                "info": {"total_token_usage": {}, "last_token_usage": {}},
            },
        },
    ]
    with pytest.raises(TraceError, match="input_tokens") as caught:
        load_sessions(jsonl(tmp_path / "rollout-1.jsonl", codex))
    assert caught.value.line == 2


def test_converter_errors_become_trace_errors(tmp_path: Path) -> None:
    runs = [
        {"traj": [{"role": "user", "content": "a"}]},
        {"traj": [{"role": "wizard", "content": "b"}]},
    ]
    with pytest.raises(TraceError, match=r"\[1\]\.traj.*unknown role 'wizard'"):
        load_sessions(write(tmp_path / "tau.json", json.dumps(runs)))
    bad_usage = {
        **CLAUDE_USER,
        "uuid": "u2",
        "type": "assistant",
        "message": {
            "id": "m",
            "role": "assistant",
            "model": "claude",
            "content": [],
            "usage": {"input_tokens": 5, "cache_read_input_tokens": -1},
        },
    }
    with pytest.raises(TraceError) as caught:
        load_sessions(jsonl(tmp_path / "u.jsonl", [CLAUDE_USER, bad_usage]))
    assert caught.value.line == 2
    block = {
        **bad_usage,
        "message": {"id": "m", "role": "assistant", "content": [{"type": "tool_use"}]},
    }
    with pytest.raises(TraceError, match="id") as caught:
        load_sessions(jsonl(tmp_path / "v.jsonl", [CLAUDE_USER, block]))
    assert caught.value.line == 2


def test_a_lone_response_json_is_not_a_log(tmp_path: Path) -> None:
    path = write(tmp_path / "response.json", json.dumps({"role": "assistant", "content": "x"}))
    with pytest.raises(TraceError, match="expected an agent log"):
        load_sessions(path)


def test_an_unforeseen_shape_is_still_a_trace_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(doc: Any, name: str) -> Any:
        return {}["missing"]

    monkeypatch.setitem(_load._READERS, "openai-chat", broken)
    path = write(tmp_path / "chat.json", json.dumps([{"role": "user", "content": "x"}]))
    with pytest.raises(TraceError, match="cannot read this openai-chat log: KeyError") as caught:
        load_sessions(path)
    assert isinstance(caught.value.__cause__, KeyError)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "user",
            "assistant",
            "tool",
            "system",
            "message",
            "response_item",
            "session_meta",
            "event_msg",
            "token_count",
            "summary",
            "run",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "type",
                    "payload",
                    "message",
                    "messages",
                    "history",
                    "trajectory",
                    "traj",
                    "tool_calls",
                    "info",
                    "sessionId",
                    "session_id",
                    "usage",
                    "id",
                    "trajectory_format",
                    "extra",
                    "action",
                    "observation",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(json_values, min_size=1, max_size=4), as_lines=st.booleans())
def test_any_json_imports_or_raises_a_trace_error(
    tmp_path: Path, records: list[Any], as_lines: bool
) -> None:
    if as_lines:
        path = jsonl(tmp_path / "x.jsonl", records)
    else:
        path = write(tmp_path / "x.json", json.dumps(records[0]))
    try:
        sessions = load_sessions(path)
    except TraceError:
        return
    for session in sessions:
        assert session.format in FORMATS
        positions = [c.position for c in session.calls]
        assert positions == [i for i, item in enumerate(session.items) if item.role == "assistant"]
