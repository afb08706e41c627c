"""Bad input to the CLI gets one line on stderr and exit code 2, never a traceback; and the
smaller CLI promises: skipped files are listed, unknown models are not priced as another,
the main job says what it did, baselines over the window are flagged."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.cli import simulate as simulate_cli
from test_cli import run
from test_cli_simulate import _claude_code_log, no_user_logs

__all__ = ["no_user_logs"]  # the fixture, imported for the tests below


def one_error(code: int, err: str, *expected: str) -> None:
    """Exit 2, one line on stderr saying ``expected``, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0], lines[0]


def _log_with_model(home: Path, model: str) -> Path:
    log = _claude_code_log(home)
    log.write_text(log.read_text().replace("claude-sonnet-4-5", model), encoding="utf-8")
    return log


# 1. a binary / non-UTF-8 request file


def test_count_on_a_binary_file_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "blob.json"
    path.write_bytes(b"\xb5\x00\xff\xfe binary")
    code, _, err = run(capsys, "count", str(path), "--model", "gpt-4o")
    one_error(code, err, "blob.json", "not UTF-8", "pass a UTF-8 .json file")


# 2. JSON nested past the recursion limit


@pytest.mark.parametrize("command", ["count", "analyze", "simulate"])
def test_deeply_nested_json_is_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000, encoding="utf-8")
    code, _, err = run(capsys, command, str(path))
    one_error(code, err, "deep.json", "nested too deeply")


# 3. output paths that cannot be written


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["simulate", "--demo", "--policy", "none", "--export-views", "{file}/views"],
            "--export-views",
        ),
        (["simulate", "--demo", "--policy", "none", "--export-views", "{file}"], "not a folder"),
        (["simulate", "--demo", "--policy", "none", "--html", "{file}/r.html"], "--html"),
        (["simulate", "--demo", "--policy", "none", "--html", "{dir}"], "that is a folder"),
        (["analyze", "--demo", "--html", "{file}/r.html"], "is a file, not a folder"),
        (["analyze", "--demo", "--html", "{dir}"], "that is a folder"),
    ],
)
def test_unwritable_output_paths_fail_before_the_work(
    argv: list[str],
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_user_logs: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    filled = [a.format(file=blocker, dir=tmp_path) for a in argv]
    code, out, err = run(capsys, *filled)
    one_error(code, err, expected)
    assert out == ""  # failed before any table


def test_an_os_error_escaping_a_command_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_user_logs: Path
) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise PermissionError(13, "Permission denied", "/some/place.jsonl")

    monkeypatch.setattr(simulate_cli, "simulate_session", refuse)
    code, _, err = run(capsys, "simulate", "--demo", "--policy", "none", "--json")
    one_error(code, err, "/some/place.jsonl", "Permission denied")


# 4. folder walks say what they skipped


def _folder(tmp_path: Path, home: Path) -> Path:
    folder = tmp_path / "runs"
    folder.mkdir()
    good = _claude_code_log(home)
    (folder / "good.jsonl").write_text(good.read_text(), encoding="utf-8")
    (folder / "broken.json").write_text('{"messages": [', encoding="utf-8")
    (folder / "latin1.jsonl").write_bytes(b'{"type": "user", "note": "caf\xe9"}\n')
    (folder / "config.json").write_text('{"seed": 1}', encoding="utf-8")
    return folder


def test_folder_walk_lists_what_it_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    folder = _folder(tmp_path, no_user_logs)
    code, out, err = run(capsys, "analyze", str(folder), "--json")
    assert code == 0, err
    skipped = {s["path"]: s["reason"] for s in json.loads(out)["skipped"]}
    assert set(skipped) == {"broken.json", "latin1.jsonl", "config.json"}
    assert "invalid JSON" in skipped["broken.json"]
    assert "not UTF-8" in skipped["latin1.jsonl"]
    assert "not a recognised agent log" in skipped["config.json"]
    code, out, err = run(capsys, "simulate", str(folder), "--policy", "none")
    assert code == 0, err
    assert "skipped 2 log file(s) that could not be read" in out
    assert "latin1.jsonl: not UTF-8" in out
    assert "skipped 1 JSON file(s) that are not agent logs (config.json)" in out


def test_folder_whose_only_log_is_unreadable_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "session.jsonl").write_bytes(b'{"type": "user", "note": "caf\xe9"}\n')
    code, _, err = run(capsys, "analyze", str(folder))
    one_error(code, err, "could not be read: session.jsonl: not UTF-8", "fix or remove")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_folder_whose_only_log_has_no_read_permission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    log = folder / "session.jsonl"
    log.write_text(_claude_code_log(no_user_logs).read_text(), encoding="utf-8")
    log.chmod(0)
    try:
        code, _, err = run(capsys, "simulate", str(folder))
    finally:
        log.chmod(0o600)
    one_error(code, err, "session.jsonl", "Permission denied")


# 5. a model the price registry lacks is not priced as another


def test_unknown_model_is_unpriced_and_says_how_to_price_it(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    log = _log_with_model(no_user_logs, "acme-model-1")
    code, out, err = run(capsys, "analyze", str(log), "--json")
    assert code == 0, err
    data = json.loads(out)
    session = data["per_session"][0]
    assert session["model"] == "acme-model-1"
    assert session["priced"] is False
    assert session["input_cost_usd"] is None
    assert session["computed_cost_usd"] is None
    for text in ("acme-model-1", "--price", "--model NAME"):
        assert text in err
    assert data["notices"]
    code, out, err = run(capsys, "analyze", str(log))
    assert code == 0, err
    assert "unknown" in out
    assert "claude-sonnet-4-5" not in out


def test_price_option_prices_the_logs_own_model(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    log = _log_with_model(no_user_logs, "acme-model-1")
    code, out, err = run(capsys, "analyze", str(log), "--price", "3,15", "--json")
    assert code == 0, err
    session = json.loads(out)["per_session"][0]
    assert session["priced"] is True
    assert session["model"] == "acme-model-1"
    assert session["computed_cost_usd"] > 0
    code, out2, _ = run(capsys, "analyze", str(log), "--price", "input=3,output=15", "--json")
    assert json.loads(out2)["per_session"][0]["computed_cost_usd"] == session["computed_cost_usd"]


def test_model_option_says_what_the_log_named(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    log = _log_with_model(no_user_logs, "acme-model-1")
    code, out, err = run(capsys, "analyze", str(log), "--model", "gpt-4.1")
    assert code == 0, err
    assert "gpt-4.1 (log says acme-model-1)" in out


def _log_switching_models(home: Path, later: str) -> Path:
    """The Claude Code log, its calls from the third on answered by ``later``."""
    log = _claude_code_log(home)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    for line in lines:
        if line["type"] == "assistant" and line["uuid"] in ("a2", "a3", "a9"):
            line["message"]["model"] = later
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return log


def test_a_model_the_price_data_knows_is_priced_as_itself(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    log = _log_with_model(no_user_logs, "claude-opus-5-5")
    code, out, err = run(capsys, "analyze", str(log), "--json")
    assert code == 0, err
    session = json.loads(out)["per_session"][0]
    assert (session["model"], session["priced"]) == ("claude-opus-5-5", True)
    assert session["computed_cost_usd"] > 0
    assert "no prices" not in err
    code, out, err = run(capsys, "simulate", str(log), "--policy", "none", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == "claude-opus-5-5"
    assert data["context_window"] == 1_000_000  # the price data's window
    assert data["model_sources"]["max_output_tokens"] == "family default (estimate)"
    assert data["priced_as"] == "priced as claude-opus-5-5"
    code, out, err = run(capsys, "simulate", str(log), "--policy", "none")
    assert code == 0, err
    assert "max output 64,000 (family default (estimate))" in out


def test_a_session_that_switches_models_is_priced_per_call(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    log = _log_switching_models(no_user_logs, "claude-haiku-4-5")
    code, out, err = run(capsys, "analyze", str(log), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["models"] == {"claude-sonnet-4-5": 2, "claude-haiku-4-5": 3}
    session = data["per_session"][0]
    assert session["log_models"] == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    code, sonnet, err = run(capsys, "analyze", str(log), "--model", "claude-sonnet-4-5", "--json")
    assert code == 0, err
    as_sonnet = json.loads(sonnet)["per_session"][0]
    assert as_sonnet["computed_cost_usd"] > session["computed_cost_usd"]  # haiku is cheaper
    code, out, err = run(capsys, "analyze", str(log))
    assert code == 0, err
    assert "claude-sonnet-4-5 ×2" in out
    assert "claude-haiku-4-5 ×3" in out
    assert "each call is priced as its own model" in out
    code, out, err = run(capsys, "simulate", str(log), "--policy", "none", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["models"] == {"claude-haiku-4-5": 3, "claude-sonnet-4-5": 2}
    assert data["priced_as"].startswith("priced per call as claude-haiku-4-5 ×3")
    code, out, err = run(
        capsys, "simulate", str(log), "--policy", "none", "--model", "gpt-4.1", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["priced_as"] == (
        "priced as gpt-4.1 (logs say claude-haiku-4-5, claude-sonnet-4-5)"
    )


def test_simulate_leaves_a_model_nobody_knows_unpriced(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    log = _log_with_model(no_user_logs, "acme-model-1")
    code, out, err = run(capsys, "simulate", str(log), "--policy", "none", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == "acme-model-1"
    assert data["totals"]["none"]["input_cost_usd"] is None
    assert data["unpriced_models"] == ["acme-model-1"]
    assert data["context_window"] is None  # nobody knows its window: no over-window verdict
    for text in ("acme-model-1", "--price", "--model NAME"):
        assert text in err
    code, out, err = run(capsys, "simulate", str(log), "--policy", "none")
    assert code == 0, err
    assert "claude-sonnet-4-5" not in out  # never priced as another model


@pytest.mark.parametrize("value", ["input", "3,x", "1,2,3,4,5", "input=3,15", "bogus=1"])
def test_bad_price_is_one_line(
    value: str, capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    code, _, err = run(capsys, "analyze", "--demo", "--price", value)
    one_error(code, err, "--price")


# 6. simulate has the model options its errors mention


def test_simulate_takes_the_model_options(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    log = _claude_code_log(no_user_logs)
    code, _, err = run(capsys, "simulate", str(log), "--model", "acme-model-1")
    one_error(code, err, "unknown model 'acme-model-1'", "--context-window")
    code, out, err = run(
        capsys,
        "simulate",
        str(log),
        "--model",
        "acme-model-1",
        "--context-window",
        "100000",
        "--max-output",
        "8000",
        "--price",
        "1,2",
        "--policy",
        "none",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == "acme-model-1"
    assert data["context_window"] == 100_000
    assert data["totals"]["none"]["input_cost_usd"] > 0
    assert data["log_models"] == ["claude-sonnet-4-5"]


# 7. the main job says what it read, shows real progress, and says it overwrote


def test_main_job_says_demo_progress_and_overwrite(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_user_logs: Path,
    tmp_path: Path,
) -> None:
    seen: list[tuple[int, list[str]]] = []
    real = simulate_cli.steps

    def recording(total: int, what: str) -> Any:
        names: list[str] = []
        seen.append((total, names))
        context = real(total, what)

        class Recorder:
            def __enter__(self) -> Any:
                start = context.__enter__()

                def step(name: str) -> None:
                    names.append(name)
                    start(name)

                return step

            def __exit__(self, *exc: Any) -> Any:
                return context.__exit__(*exc)

        return Recorder()

    monkeypatch.setattr(simulate_cli, "steps", recording)
    code, out, err = run(capsys, "simulate", "--policy", "none,mask-last-10")
    assert code == 0, err
    assert "no Claude Code or Codex logs found" in err
    assert "built-in demo session" in err
    assert seen == [(2, ["demo · none", "demo · mask-last-10"])]  # one step per policy
    assert "Report: ctxbudget-report.html" in out
    assert "overwrote" not in out
    code, out, err = run(capsys, "simulate", "--policy", "none")
    assert code == 0, err
    assert "Report: ctxbudget-report.html (overwrote the report that was there)" in out
    assert (tmp_path / "ctxbudget-report.html").is_file()


# 8. a baseline whose peak is over the window is flagged


def test_baseline_over_the_window_is_flagged(
    capsys: pytest.CaptureFixture[str], no_user_logs: Path
) -> None:
    code, out, err = run(capsys, "simulate", "--demo", "--policy", "none,mask-last-10", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["context_window"] == 200_000
    assert data["totals"]["none"]["peak_tokens"] > 200_000
    assert data["totals"]["none"]["peak_over_window"] is True
    assert data["totals"]["mask-last-10"]["peak_over_window"] is False
    assert len(data["over_window"]) == 1
    assert data["over_window"][0].startswith("none: peak ")
    code, out, err = run(capsys, "simulate", "--demo", "--policy", "none,mask-last-10")
    assert code == 0, err
    assert "> window 200K: this run would have failed with context_length_exceeded" in out


# 9. watch: a resolved alert reads as resolved; plain lines when not a terminal


def test_watch_restates_resolved_alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "metrics.jsonl"
    alert = {
        "event": "alert",
        "session_id": "s",
        "name": "cache_hit_rate",
        "level": "warning",
        "threshold": 0.5,
        "turn": 9,
        "message": "cache served 20% of the input over the last 10 turns (< 50%)",
    }
    lines = [
        {**alert, "state": "firing", "value": 0.2},
        {**alert, "state": "resolved", "value": 0.8, "turn": 12},
    ]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "watch", str(log), "--json")
    assert code == 0, err
    alerts = json.loads(out)["alerts"]
    assert alerts[0]["message"].startswith("cache served 20%")
    assert alerts[1]["message"] == ("resolved: cache_hit_rate is back at 80% (alert threshold 50%)")
    code, out, err = run(capsys, "watch", str(log), "--duration", "0.3", "--interval", "0.1")
    assert code == 0, err
    assert "alert firing [warning] cache_hit_rate · session s turn 9" in out
    assert "alert resolved [warning] cache_hit_rate" in out
    assert "is back at 80%" in out


# 10. count shows the items the user sent


def test_count_shows_one_system_item_and_no_phantom_tool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "request.json"
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hi"},
        ],
    }
    path.write_text(json.dumps(body), encoding="utf-8")
    code, out, err = run(capsys, "count", str(path), "--json")
    assert code == 0, err
    items = {r["component"]: r["items"] for r in json.loads(out)["ledger"]["components"]}
    assert items["system"] == 1
    assert items["tools"] == 0
    assert items["history"] == 1
    code, out, err = run(capsys, "count", str(path))
    assert code == 0, err
    system_row = next(line for line in out.splitlines() if "system" in line)
    assert "│     1 │" in system_row
