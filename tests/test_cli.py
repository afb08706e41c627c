"""The CLI: `count` reproduces the cookbook's API-confirmed numbers; errors are one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.cli import main
from test_framing_openai_cookbook import (
    CHAT_API_COUNTS,
    CHAT_MESSAGES,
    TOOL_MESSAGES,
    TOOLS,
    TOOLS_API_COUNTS,
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, body: Any) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("model", "published"), CHAT_API_COUNTS.items())
def test_count_json_prints_the_cookbook_chat_numbers(
    model: str, published: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path, {"messages": CHAT_MESSAGES})
    code, out, _ = run(capsys, "count", source, "--model", model, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["input_tokens"] == published
    assert result["exact"] is True


@pytest.mark.parametrize(("model", "published"), TOOLS_API_COUNTS.items())
def test_count_json_prints_the_cookbook_tools_numbers(
    model: str, published: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path, {"messages": TOOL_MESSAGES, "tools": TOOLS})
    code, out, _ = run(capsys, "count", source, "--model", model, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["input_tokens"] == published
    assert result["exact"] is False  # the tools rule is fitted, not documented
    assert result["tools_tokens"] > 0


def test_count_reads_stdin_and_the_body_model() -> None:
    body = json.dumps({"model": "gpt-4o", "messages": CHAT_MESSAGES})
    done = subprocess.run(
        [sys.executable, "-m", "ctxbudget", "count", "--json"],
        input=body,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["input_tokens"] == CHAT_API_COUNTS["gpt-4o"]


def test_count_table_marks_estimates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = {
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Summarise the design doc."}],
    }
    code, out, _ = run(capsys, "count", write(tmp_path, body), "--model", "claude-sonnet-4-5")
    assert code == 0
    assert "anthropic" in out
    assert "(estimate)" in out


@pytest.mark.parametrize(
    ("body", "argv", "expected"),
    [
        ("{not json", ["--model", "gpt-4o"], "not valid JSON (line 1"),
        ([1, 2], ["--model", "gpt-4o"], "expected a JSON object"),
        ({"messages": CHAT_MESSAGES}, [], "no model: pass --model"),
        ({"messages": CHAT_MESSAGES}, ["--model", "gpt-4oo"], "unknown model 'gpt-4oo'"),
        ({"messages": [{"role": "user"}]}, ["--model", "gpt-4o"], "messages[0]"),
        ({"messages": CHAT_MESSAGES}, ["--model", "gpt-4o", "--format", "x"], "--format"),
    ],
)
def test_bad_input_is_one_clear_line(
    body: Any,
    argv: list[str],
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "request.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body), encoding="utf-8")
    code, _, err = run(capsys, "count", str(path), *argv)
    assert code == 2
    assert expected in err
    assert "Traceback" not in err


def test_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "count", "/nonexistent/request.json", "--model", "gpt-4o")
    assert code == 2
    assert "cannot read /nonexistent/request.json" in err


def test_demo_json_accounts_every_call(capsys: pytest.CaptureFixture[str]) -> None:
    from ctxbudget.demo import demo_session

    answered = sum(1 for m in demo_session(24).messages if m["role"] == "tool")
    code, out, _ = run(capsys, "demo", "--turns", "24", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["calls"] == 24
    per_call = result["prompt_tokens_per_call"]
    assert per_call == sorted(per_call)  # the context only grows without management
    assert result["total_input_tokens"] == sum(per_call)
    tool_results = next(
        r for r in result["ledger"]["components"] if r["component"] == "tool_results"
    )
    assert tool_results["items"] == answered >= 23  # parallel calls; the last call answers
    assert result["ledger"]["total"] > per_call[-1]


def test_demo_table_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--turns", "12")
    assert code == 0
    assert "tool_results" in out
    assert "12 model calls" in out
