"""``ctxbudget watch``: the dashboard over a metrics log written through ``logging``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctxbudget.telemetry import AlertRules, JsonLogSink, json_lines_handler
from ctxbudget.telemetry.dashboard import Dashboard
from test_cli import run
from test_manager import agent, exchange, output


def write_log(path: Path, steps: int = 12, session_id: str = "watched") -> None:
    handler = json_lines_handler(path)
    logger = logging.getLogger("ctxbudget")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        # budgets bind, so the context stays well under the watermarks: alert from 30%
        rules = AlertRules(utilization=((0.3, "info"),))
        mgr = agent(window=6_000, session_id=session_id, alerts=rules)
        sink = JsonLogSink()
        mgr.metrics.subscribe(sink)
        mgr.alerts.subscribe(sink)
        for step in range(1, steps + 1):
            mgr.prepare()
            mgr.extend(exchange(step, output(step)))
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_watch_once_shows_bars_costs_and_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "metrics.jsonl"
    write_log(log)
    code, out, err = run(capsys, "watch", str(log), "--once")
    assert code == 0, err
    assert "session watched" in out
    assert "turn 12" in out
    assert "tool_results (prunable)" in out
    assert "█" in out
    assert "utilization_30" in out or "context at" in out, "the 6K window passes 30%"


def test_watch_json_summarizes_the_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "metrics.jsonl"
    write_log(log, steps=5)
    with log.open("a") as handle:
        handle.write("not json\n")
    code, out, _ = run(capsys, "watch", str(log), "--json")
    assert code == 0
    data = json.loads(out)
    session = data["sessions"]["watched"]
    assert session["turn"] == 5
    assert session["count"] in ("exact", "estimate")
    assert data["unreadable_lines"] == 1


def test_watch_follows_appended_lines(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text("")
    env = {**os.environ, "COLUMNS": "120"}
    argv = ["watch", str(log), "--interval", "0.1", "--duration", "6"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctxbudget", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(1.5)
    write_log(log, steps=3, session_id="late")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "session late" in out


def test_watch_names_a_missing_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "watch", str(tmp_path / "absent.jsonl"), "--once")
    assert code == 2
    assert "no metrics log" in err
    assert "JsonLogSink" in err


def test_dashboard_keeps_newest_stage_and_counts_cost_once_per_turn() -> None:
    board = Dashboard()
    base = {"event": "metrics", "session_id": "s", "components": [], "compactions": []}
    board.feed({**base, "turn": 1, "stage": "prepared", "cost_usd": 0.01})
    board.feed({**base, "turn": 1, "stage": "billed", "cost_usd": 0.03})
    board.feed({**base, "turn": 2, "stage": "prepared", "cost_usd": 0.02})
    board.feed({"event": "alert", "session_id": "s", "name": "x", "state": "firing"})
    board.feed({"event": "alert", "session_id": "s", "name": "x", "state": "resolved"})
    summary = board.summary()
    assert summary["sessions"]["s"]["cost_usd"] == pytest.approx(0.05)
    assert summary["firing"] == []
    assert len(summary["alerts"]) == 2
