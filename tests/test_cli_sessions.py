"""``ctxbudget sessions``: list, show, export, resume-brief, against each backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ctxbudget.cli.sessions  # noqa: F401  (registers the command group)
from _stores import MODEL, SETTINGS, start, step, store_url
from ctxbudget import ContextManager
from ctxbudget.cli import app
from ctxbudget.store import decode_event, open_store

__all__ = ["store_url"]


@pytest.fixture
def recorded(store_url: str) -> str:
    mgr = ContextManager.open("run-1", store_url, MODEL, **SETTINGS)
    start(mgr)
    for n in range(12):
        step(mgr, n)
    return store_url


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_list_and_show(recorded: str) -> None:
    listed = json.loads(_run("sessions", "list", "--store", recorded, "--json"))
    (only,) = listed["sessions"]
    assert (only["session_id"], only["model"]) == ("run-1", MODEL)
    assert "run-1" in _run("sessions", "list", "--store", recorded)
    shown = json.loads(_run("sessions", "show", "run-1", "--store", recorded, "--json"))
    assert shown["requests_prepared"] == 12
    assert shown["items_in_log"] == 2 + 24
    assert shown["compactions"]
    assert shown["items_in_view"] <= shown["items_in_log"]
    assert "compactions" in _run("sessions", "show", "run-1", "--store", recorded)


def test_export_is_lossless(recorded: str, tmp_path: Path) -> None:
    target = tmp_path / "run-1.jsonl"
    _run("sessions", "export", "run-1", "--store", recorded, "-o", str(target))
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    with open_store(recorded) as store:
        stored = [decode_event(e) for e in store.load("run-1")]
    assert [line["seq"] for line in lines] == list(range(len(stored)))
    from ctxbudget.store import StoredEvent

    again = [
        decode_event(StoredEvent(seq=x["seq"], kind=x["kind"], body=json.dumps(x["event"])))
        for x in lines
    ]
    assert again == stored


def test_resume_brief(recorded: str) -> None:
    brief = json.loads(_run("sessions", "resume-brief", "run-1", "--store", recorded, "--json"))
    assert brief["task"] == "Find why test_parse fails."
    assert "## " in brief["brief"]


def test_env_var_and_missing_session(recorded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXBUDGET_STORE", recorded)
    assert "run-1" in _run("sessions", "list")
    from ctxbudget.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["sessions", "show", "nope"])
    assert exit_info.value.code == 2
