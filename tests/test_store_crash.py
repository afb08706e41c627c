"""Kill -9 a writer mid-session, many times: acknowledged events survive, the resumed
session is the one a single uninterrupted process would have written, byte for byte."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _stores import MODEL, SETTINGS, body_bytes, resume_step, store_url
from ctxbudget import ContextManager
from ctxbudget.store import open_store

__all__ = ["store_url"]

TOTAL = 40
"""Exchanges in the scripted session (it compacts several times on the way)."""
KILLS = 5
TESTS = Path(__file__).resolve().parent


def _writer(url: str, session_id: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import _stores; _stores.writer_main()",
            url,
            session_id,
            str(TOTAL),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_sigkilled_writer_loses_nothing_and_resumes_identically(store_url: str) -> None:
    rng = random.Random(7)
    kills = 0
    acknowledged = 0

    for _ in range(KILLS + 10):
        writer = _writer(store_url, "crash")
        assert writer.stdout is not None
        resumed_at = int(writer.stdout.readline())
        assert resumed_at >= acknowledged, "an acknowledged event was lost"
        wanted = rng.randint(1, 4)
        for seen, line in enumerate(writer.stdout, start=1):
            acknowledged = int(line)
            if seen >= wanted:
                time.sleep(rng.random() * 0.004)  # land somewhere inside the next step
                break
        if writer.poll() is None:
            writer.send_signal(signal.SIGKILL)
            kills += 1
        writer.wait()
        with open_store(store_url) as store:
            assert store.require("crash").events >= acknowledged, "an acknowledged event was lost"
        if kills >= KILLS and writer.returncode == -signal.SIGKILL:
            break
    assert kills >= KILLS
    # finish the session in this process, then compare with one uninterrupted run
    resumed = ContextManager.open("crash", store_url, **SETTINGS)
    resume_step(resumed, TOTAL)
    straight = ContextManager(MODEL, **SETTINGS)
    resume_step(straight, TOTAL)
    assert straight.log.records(), "the script must compact, or the test proves little"
    assert resumed.log.events == straight.log.events
    assert body_bytes(resumed) == body_bytes(straight)


@pytest.mark.parametrize("total", [3])
def test_writer_script_runs_to_the_end(store_url: str, total: int) -> None:
    writer = subprocess.run(
        [sys.executable, "-c", "import _stores; _stores.writer_main()", store_url, "w", str(total)],
        capture_output=True,
        text=True,
        env=dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
        ),
        check=True,
    )
    assert writer.stdout.split()[0] == "0"
    with open_store(store_url) as store:
        assert store.require("w").events == int(writer.stdout.split()[-1])
