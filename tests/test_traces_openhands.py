"""OpenHands ``output.jsonl`` usage, from small records built here (nothing copied from a log).

The real sample (``shared/traces``) has cache numbers of 0 only; these records pin how
cache reads and writes in ``metrics.token_usages`` become :class:`Usage`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.billing.usage import Usage
from ctxbudget.errors import TraceError
from ctxbudget.traces import detect_format, load_sessions


def record(usage: dict[str, Any]) -> dict[str, Any]:
    """One session: a system prompt, a task, one tool call (response ``r1``) and its result."""
    call = {"id": "call_1", "type": "function", "function": {"name": "run", "arguments": "{}"}}
    response = {
        "id": "r1",
        "model": "claude-x",
        "choices": [{"message": {"role": "assistant", "content": "Look.", "tool_calls": [call]}}],
    }
    history = [
        {"id": 0, "source": "agent", "action": "system", "args": {"content": "You code."}},
        {"id": 1, "source": "user", "action": "message", "args": {"content": "Fix it."}},
        {
            "id": 2,
            "source": "agent",
            "action": "run",
            "args": {"command": "ls"},
            "tool_call_metadata": {
                "function_name": "run",
                "tool_call_id": "call_1",
                "model_response": response,
                "total_calls_in_response": 1,
            },
        },
        {"id": 3, "source": "environment", "observation": "run", "content": "a.py", "cause": 2},
    ]
    metrics = {"token_usages": [{"model": "claude-x", "response_id": "r1", **usage}]}
    return {"instance_id": "demo-1", "history": history, "metrics": metrics}


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_cache_reads_and_writes_inside_or_beside_prompt_tokens(tmp_path: Path) -> None:
    inside = {"prompt_tokens": 1000, "completion_tokens": 50}
    inside |= {"cache_read_tokens": 600, "cache_write_tokens": 300}
    beside = {"prompt_tokens": 100, "completion_tokens": 50}
    beside |= {"cache_read_tokens": 600, "cache_write_tokens": 300}
    path = write(tmp_path / "output.jsonl", [record(inside), record(beside)])
    assert detect_format(path) == "openhands"
    first, second = load_sessions(path)
    assert [c.usage for c in first.calls] == [
        Usage(input_tokens=1000, cache_read_tokens=600, cache_write_5m_tokens=300, output_tokens=50)
    ]
    # litellm's prompt_tokens without the cache (it cannot hold them): they are added
    assert [c.usage for c in second.calls] == [
        Usage(input_tokens=1000, cache_read_tokens=600, cache_write_5m_tokens=300, output_tokens=50)
    ]
    assert first.calls[0].model == "claude-x"


def test_an_unreadable_usage_names_its_line_and_entry(tmp_path: Path) -> None:
    good = {"prompt_tokens": 10, "completion_tokens": 1}
    bad = {"prompt_tokens": 10, "completion_tokens": "many"}
    path = write(tmp_path / "output.jsonl", [record(good), record(bad)])
    with pytest.raises(
        TraceError, match=r"'metrics\.token_usages\[0\]\.completion_tokens'.*'many'"
    ) as e:
        load_sessions(path)
    assert e.value.file == str(path)
    assert e.value.line == 2
