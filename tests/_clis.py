"""Running the real agent CLIs (Claude Code, Codex) against the local provider server.

The CLIs are found in ``$CTXBUDGET_CLI_DIR`` (a folder holding ``claude`` / ``codex``, or
an npm prefix with ``node_modules/.bin``), then on ``PATH``. Where one is missing its tests
skip with the install command, except under CI, where they fail (``_require.unavailable``).
Every run gets a fresh ``HOME`` (the CLIs write their session logs under it) and a fresh
working folder; nothing of the user's own configuration or logs is read or written.

    npm install @anthropic-ai/claude-code@latest @openai/codex@latest   # in some DIR
    CTXBUDGET_CLI_DIR=DIR pytest tests/test_real_clis.py -v
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _require import unavailable
from ctxbudget.billing.usage import Usage
from provider_server import Billed, ProviderServer

__all__ = [
    "INSTALL",
    "CliRun",
    "claude_run",
    "cli_path",
    "cli_version",
    "codex_run",
    "require_cli",
    "usage_key",
]

INSTALL = "npm install @anthropic-ai/claude-code@latest @openai/codex@latest"
TIMEOUT = 90
"""Seconds one CLI invocation may take (a scripted run takes one to a few)."""


def cli_path(name: str) -> Path | None:
    """The ``claude`` or ``codex`` executable: ``$CTXBUDGET_CLI_DIR`` first, then PATH."""
    folder = os.environ.get("CTXBUDGET_CLI_DIR")
    if folder:
        for candidate in (Path(folder) / name, Path(folder) / "node_modules" / ".bin" / name):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    found = shutil.which(name)
    return Path(found) if found else None


@functools.cache
def cli_version(name: str) -> str | None:
    """``claude --version`` / ``codex --version`` (first line), None when not installed."""
    path = cli_path(name)
    if path is None:
        return None
    try:
        done = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def require_cli(name: str) -> Path:
    """The CLI's path, or skip (fail under CI) saying how to install it."""
    path = cli_path(name)
    if path is None or cli_version(name) is None:
        unavailable(
            f"the {name} CLI is not installed (looked in $CTXBUDGET_CLI_DIR, then PATH); "
            f"install it with `{INSTALL}` in a folder and set CTXBUDGET_CLI_DIR to it"
        )
    return path


@dataclass
class CliRun:
    """One CLI invocation: its output and exit status."""

    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> CliRun:
        """Raise with the output when the CLI failed."""
        if self.returncode != 0:
            raise AssertionError(
                f"{' '.join(self.args)} exited {self.returncode}\n"
                f"stdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}"
            )
        return self

    def records(self) -> list[dict[str, object]]:
        """The JSON lines of the output (stream-json / ``--json``)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


def _base_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8"}


def _run(args: list[str], env: dict[str, str], work: Path) -> CliRun:
    done = subprocess.run(
        args,
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return CliRun(args, done.returncode, done.stdout, done.stderr)


def claude_run(
    server: ProviderServer, home: Path, work: Path, args: Sequence[str], *, model: str
) -> CliRun:
    """``claude <args> --output-format stream-json --verbose`` against ``server``.

    ``IS_SANDBOX=1`` lets ``--dangerously-skip-permissions`` run as root (CI containers);
    non-essential traffic (telemetry, updates) is off, so every request is the model's.
    """
    env = {
        **_base_env(home),
        "ANTHROPIC_BASE_URL": server.anthropic_base_url,
        "ANTHROPIC_API_KEY": "test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "IS_SANDBOX": "1",
    }
    command = [
        str(require_cli("claude")),
        *args,
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
        "--model",
        model,
    ]
    return _run(command, env, work)


def codex_config(server: ProviderServer, home: Path, *, model: str, compact_at: int) -> None:
    """``$HOME/.codex/config.toml``: the local server as a Responses provider, HTTP only
    (no websockets), auto-compaction at ``compact_at`` tokens."""
    folder = home / ".codex"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(
        f'model = "{model}"\n'
        'model_provider = "local"\n'
        f"model_auto_compact_token_limit = {compact_at}\n"
        "[model_providers.local]\n"
        'name = "local"\n'
        f'base_url = "{server.openai_base_url}"\n'
        'wire_api = "responses"\n'
        'env_key = "CTXBUDGET_TEST_KEY"\n'
        "supports_websockets = false\n",
        encoding="utf-8",
    )


def codex_run(
    home: Path, work: Path, args: Sequence[str], *, options: Sequence[str] = ()
) -> CliRun:
    """``codex exec [options] --json ... <args>`` (``codex_config`` written first)."""
    env = {**_base_env(home), "CTXBUDGET_TEST_KEY": "test"}
    command = [
        str(require_cli("codex")),
        "exec",
        *options,
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "--json",
        *args,
    ]
    return _run(command, env, work)


def usage_key(usage: Usage | Billed) -> tuple[int, int, int, int]:
    """(input, cache read, cache write, output): one shape for billed and recorded usage."""
    if isinstance(usage, Billed):
        writes = usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
        return (usage.input_tokens, usage.cache_read_tokens, writes, usage.output_tokens)
    return (
        usage.input_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.output_tokens,
    )
