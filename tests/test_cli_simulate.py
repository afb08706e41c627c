"""``ctxbudget simulate`` and ``ctxbudget analyze`` from the command line."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from _traces import TRACES, requires_traces
from ctxbudget.analyze import Analysis, analyze_session
from ctxbudget.budget.models import resolve_model
from ctxbudget.cli._sources import demo_as_session, sub_agent_note
from ctxbudget.cli.analyze import _sessions
from ctxbudget.traces import load_sessions
from test_cli import run


@pytest.fixture
def no_user_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with no Claude Code or Codex logs, and the working directory in tmp."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def _claude_code_log(home: Path) -> Path:
    """A small Claude Code session log, in its usual place, written by this test."""
    folder = home / ".claude" / "projects" / "-work-demo"
    folder.mkdir(parents=True)
    lines = [
        {
            "type": "user",
            "uuid": "u1",
            "sessionId": "s1",
            "isSidechain": False,
            "message": {"role": "user", "content": "List the files in src/ and read main.py"},
        },
    ]
    for n in range(4):
        usage = {
            "input_tokens": 10,
            "cache_creation_input_tokens": 100 * (n + 1),
            "cache_read_input_tokens": 500 * n,
            "output_tokens": 20,
        }
        lines.append(
            {
                "type": "assistant",
                "uuid": f"a{n}",
                "sessionId": "s1",
                "isSidechain": False,
                "message": {
                    "id": f"msg_{n}",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": f"t{n}",
                            "name": "Bash",
                            "input": {"command": f"cat src/file{n}.py"},
                        }
                    ],
                    "usage": usage,
                },
            }
        )
        lines.append(
            {
                "type": "user",
                "uuid": f"r{n}",
                "sessionId": "s1",
                "isSidechain": False,
                "message": {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": f"t{n}",
                            "content": "\n".join(f"line {k} of src/file{n}.py" for k in range(50)),
                        }
                    ],
                },
            }
        )
    lines.append(
        {
            "type": "assistant",
            "uuid": "a9",
            "sessionId": "s1",
            "isSidechain": False,
            "message": {
                "id": "msg_9",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "src/file3.py is the entry point."}],
                "usage": {
                    "input_tokens": 10,
                    "cache_creation_input_tokens": 50,
                    "cache_read_input_tokens": 2000,
                    "output_tokens": 9,
                },
            },
        }
    )
    path = folder / "s1.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def test_simulate_with_no_path_falls_back_to_the_demo_and_writes_the_report(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path, tmp_path: Path
) -> None:
    code, out, err = run(capsys, "simulate")
    assert code == 0, err
    assert "from demo" in out
    for policy in ("none-nocache", "none", "mask-last-10", "clear-tool-uses", "ctxbudget"):
        assert policy in out
    assert "estimate" in out  # Claude counts are estimates, and say so
    report = tmp_path / "ctxbudget-report.html"
    assert report.is_file()
    assert "Report: ctxbudget-report.html" in out
    assert '<script type="application/json" id="ctxbudget-data">' in report.read_text()


def test_simulate_finds_the_users_claude_code_logs(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    _claude_code_log(no_user_logs)
    code, out, err = run(capsys, "simulate", "--json", "--policy", "none,ctxbudget")
    assert code == 0, err
    data = json.loads(out)
    assert data["source"] == "your agent logs"
    assert data["sessions"] == 1
    assert data["calls"] == 5
    assert set(data["totals"]) == {"none", "ctxbudget"}


def test_simulate_json_export_views_and_html(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path, tmp_path: Path
) -> None:
    log = _claude_code_log(no_user_logs)
    views, html = tmp_path / "views", tmp_path / "r.html"
    code, out, err = run(
        capsys,
        "simulate",
        str(log),
        "--model",
        "gpt-4.1",
        "--json",
        "--export-views",
        str(views),
        "--html",
        str(html),
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == "gpt-4.1"
    assert data["exact"] is True
    assert data["report"] == str(html)
    assert html.is_file()
    exported = sorted(p.relative_to(views).as_posix() for p in views.rglob("*.jsonl"))
    assert len(exported) == 5  # one file per policy for the one session
    lines = [json.loads(x) for x in (views / "none" / exported[0].split("/")[1]).open()]
    assert [x["step"] for x in lines] == [0, 1, 2, 3, 4]
    assert {x["kind"] for x in lines} == {"call"}
    assert lines[-1]["request"]["model"] == "gpt-4.1"


def test_bad_input_gets_a_clear_error(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "simulate", str(tmp_path / "missing.jsonl"))
    assert code == 2
    assert "missing.jsonl: no such file or directory" in err
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    code, _, err = run(capsys, "simulate", str(junk))
    assert code == 2
    assert "junk.json" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "simulate", "--demo", "--policy", "bogus")
    assert code == 2
    assert "unknown policy 'bogus'" in err
    code, _, err = run(capsys, "analyze", "--demo", "--price", "input")
    assert code == 2
    assert "KEY=USD_PER_MILLION_TOKENS" in err


def test_analyze_demo_tables_and_json(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    code, out, err = run(capsys, "analyze", "--demo")
    assert code == 0, err
    assert "tool results: read_file" in out
    assert "(simulated)" in out  # no billed usage in the demo: the cache hit is simulated
    code, out, err = run(capsys, "analyze", "--demo", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["sessions"] == 1
    parts = data["components"]
    assert sum(p["tokens"] for p in parts.values()) == data["input_tokens"]
    assert data["per_session"][0]["recorded_cost_usd"] is None


@requires_traces
def test_analyze_matches_the_cost_mini_swe_agent_recorded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Goal: within 2% per session. gpt-5-mini is in the price registry; Gemini 3 Pro
    Preview is not, so its published prices are given (USD/MTok, prompts <= 200K)."""
    gemini = resolve_model(
        "google/gemini-3-pro-preview",
        context_window=1_048_576,
        max_output_tokens=65_536,
        prices={"input": "2", "output": "12", "cache_read": "0.2"},
    )
    checked = 0
    for folder, model in (("mini-swe-agent-v2-toolcalls", None), ("mini-swe-agent-v1", gemini)):
        for session in load_sessions(TRACES / folder):
            result = analyze_session(session, model)
            assert result.recorded_cost is not None
            assert result.computed_cost is not None
            error = abs(result.computed_cost - result.recorded_cost) / result.recorded_cost
            assert error <= Decimal("0.02"), session.name
            checked += 1
    assert checked >= 50
    code, out, _ = run(capsys, "analyze", str(TRACES / "mini-swe-agent-v2-toolcalls"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["recorded_cost_usd"] == pytest.approx(data["computed_cost_usd"], rel=0.02)


def test_skipped_record_kinds_are_shown_by_analyze_and_simulate(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    """Record kinds a newer Claude Code wrote (unknown to the importer) are counted and
    shown: a line in the tables, ``skipped_records`` per session in ``--json``."""
    path = _claude_code_log(no_user_logs)
    extra = [{"type": "attachment", "uuid": f"x{n}", "sessionId": "s1"} for n in range(3)]
    extra.append({"type": "mode", "sessionId": "s1"})
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(json.dumps(line) + "\n" for line in extra))
    line = "skipped record kinds: attachment ×3, mode ×1"
    for args in (("analyze", str(path)), ("simulate", str(path), "--policy", "none")):
        code, out, err = run(capsys, *args, "--json")
        assert code == 0, err
        data = json.loads(out)
        assert data["per_session"][0]["skipped_records"] == {"attachment": 3, "mode": 1}
        assert data["per_session"][0]["parent"] is None
        code, out, err = run(capsys, *args)
        assert code == 0, err
        assert line in out


def test_analyze_lists_a_sub_agent_with_its_parent(capsys: pytest.CaptureFixture[str]) -> None:
    """A sub-agent's own transcript is listed with the session that started it."""
    session = replace(demo_as_session(3), name="agent-a1", parent="s1")
    analysis = Analysis([analyze_session(session)])
    assert analysis.to_json()["per_session"][0]["parent"] == "s1"
    out = Console(width=250, record=True)
    out.print(_sessions(analysis))
    assert "agent-a1 (sub-agent of s1)" in out.export_text()
    assert sub_agent_note(None) == ""
