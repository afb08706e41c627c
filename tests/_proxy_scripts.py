"""Scripted models and runs for the real CLIs through the proxy (``test_proxy_clis``).

The fake model drives a fixed number of shell steps over the run's work folder. It reads
which step comes next from the last tool call in the request it receives (each command
starts with ``echo step-N``), never from how many messages the request holds: in manage
mode the proxy hides old exchanges, so counting them would send the model back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _clis import CliRun, claude_run, codex_config, codex_run, usage_key
from _proxy import running_proxy
from ctxbudget.convert.request import Format
from ctxbudget.proxy import Mode, ProxyConfig
from ctxbudget.store import open_store
from ctxbudget.store.base import SessionStore
from provider_server import ProviderServer, Reply
from provider_server._core import DEFAULT_MAX_OUTPUT

__all__ = [
    "CLAUDE_MODEL",
    "CODEX_MODEL",
    "STEPS",
    "CliProxyRun",
    "command",
    "requested_output",
    "run_claude",
    "run_codex",
    "usage_key",
]

CLAUDE_MODEL = "claude-sonnet-4-5"
CODEX_MODEL = "gpt-5.5"
STEPS = 32
"""Tool calls each run makes (one per model call, then a final answer)."""
DONE = "All done."
_STEP = re.compile(r"echo step-(\d+)\b")


def command(step: int) -> str:
    """The shell command of ``step``: files written, read, counted and listed; most
    outputs are a few thousand tokens, so a small window cannot hold them all."""
    tag = f"echo step-{step} && "
    match step % 4:
        case 0:
            made = f"data/f{step:02d}.txt"
            return f"{tag}mkdir -p data && seq {step} {step + 1200} > {made} && ls data"
        case 1:
            return f"{tag}cat data/f{step - 1:02d}.txt"
        case 2:
            return f"{tag}wc -l data/*.txt && tail -n 900 data/f{step - 2:02d}.txt"
        case _:
            return f"{tag}ls -la data && head -n 1000 data/f{step - 3:02d}.txt"


def _next_step(commands: Sequence[str]) -> int:
    """One past the step of the last command the request holds (0 when none)."""
    for text in reversed(commands):
        found = _STEP.search(text)
        if found:
            return int(found.group(1)) + 1
    return 0


def _reply(step: int, tool: str, args: dict[str, Any]) -> Reply:
    if step >= STEPS:
        return Reply(text=DONE)
    return Reply(text=f"Step {step}.", tool_calls=[(tool, args)])


def claude_script(api: str, body: dict[str, Any]) -> Reply:
    """Claude Code's model: one ``Bash`` call per step."""
    commands = [
        str(block.get("input", {}).get("command", ""))
        for message in body.get("messages") or []
        if message.get("role") == "assistant" and isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_use"
    ]
    step = _next_step(commands)
    return _reply(step, "Bash", {"command": command(step), "description": f"step {step}"})


def codex_script(api: str, body: dict[str, Any]) -> Reply:
    """Codex's model: one ``exec_command`` call per step."""
    commands = [
        str(item.get("arguments", ""))
        for item in body.get("input") or []
        if isinstance(item, dict) and item.get("type") == "function_call"
    ]
    step = _next_step(commands)
    return _reply(step, "exec_command", {"cmd": command(step)})


def requested_output(body: dict[str, Any]) -> int:
    """The output budget a request asks for (the provider server's default when none)."""
    for name in ("max_tokens", "max_output_tokens", "max_completion_tokens"):
        value = body.get(name)
        if isinstance(value, int):
            return value
    return DEFAULT_MAX_OUTPUT


@dataclass
class CliProxyRun:
    """One CLI run through one proxy: what the client, the proxy and the upstream hold."""

    cli: str
    mode: Mode
    window: int | None
    home: Path
    work: Path
    server: ProviderServer
    store: SessionStore
    result: CliRun
    seconds: float
    session: str = ""
    """The client's own session (Claude Code's session id, Codex's thread id)."""
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> Format:
        """The wire format (and provider-server API) its requests use."""
        return "anthropic" if self.cli == "claude" else "openai_responses"


@contextmanager
def _served(mode: Mode, window: int | None, model: str, db: Path) -> Iterator[tuple[Any, ...]]:
    """A provider server (refusing what exceeds ``window``) behind a proxy in ``mode``."""
    script = claude_script if model == CLAUDE_MODEL else codex_script
    windows = {model: window} if window is not None else {}
    store = open_store(f"sqlite:///{db}")
    with ProviderServer(script=script, context_windows=windows) as server:
        config = ProxyConfig(
            mode=mode,
            anthropic_upstream=server.base_url,
            openai_upstream=server.base_url,
            context_window=window if mode == "manage" else None,
        )
        with running_proxy(config, store) as url:
            yield server, store, url


def run_claude(root: Path, mode: Mode, window: int | None) -> CliProxyRun:
    """Claude Code (``-p``, partial messages streamed) through a proxy in ``mode``."""
    home, work = root / "home", root / "work"
    home.mkdir()
    work.mkdir()
    with _served(mode, window, CLAUDE_MODEL, root / "proxy.db") as (server, store, url):
        started = time.perf_counter()
        result = claude_run(
            SimpleNamespace(anthropic_base_url=url),  # type: ignore[arg-type]
            home,
            work,
            ["-p", "Work through the data folder.", "--include-partial-messages"],
            model=CLAUDE_MODEL,
        )
        seconds = time.perf_counter() - started
    run = CliProxyRun("claude", mode, window, home, work, server, store, result, seconds)
    records = result.records()
    run.session = str(records[0].get("session_id", "")) if records else ""
    return run


def run_codex(root: Path, mode: Mode, window: int | None) -> CliProxyRun:
    """``codex exec`` through a proxy in ``mode`` (its own auto-compaction out of reach)."""
    home, work = root / "home", root / "work"
    home.mkdir()
    work.mkdir()
    with _served(mode, window, CODEX_MODEL, root / "proxy.db") as (server, store, url):
        codex_config(
            SimpleNamespace(openai_base_url=url + "/v1"),  # type: ignore[arg-type]
            home,
            model=CODEX_MODEL,
            compact_at=10_000_000,
        )
        started = time.perf_counter()
        result = codex_run(home, work, ["Work through the data folder."])
        seconds = time.perf_counter() - started
    run = CliProxyRun("codex", mode, window, home, work, server, store, result, seconds)
    records = result.records()
    run.session = str(records[0].get("thread_id", "")) if records else ""
    return run
