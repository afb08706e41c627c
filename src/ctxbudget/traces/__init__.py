"""Importers for real agent logs: every format becomes the same :class:`Session`.

Beside ``integrations``: may import the manager and below (in practice the core).

::

    load_sessions("run/")        # a file, or every log under a directory
    detect_format("x.traj")      # which of FORMATS a file is
    discover_user_logs()         # this machine's Claude Code and Codex CLI sessions

Formats (:data:`FORMATS`): ``swe-agent`` (``.traj``), ``mini-swe-agent`` (v1 text
actions and v2 tool calls), ``openhands`` (evaluation ``output.jsonl``), ``openai-chat``
(tau-bench runs, message lists, conversation objects), ``terminus`` (Harbor
``prompt.json`` + ``response.json``), ``claude-code`` (session files),
``claude-code-stream`` (``claude -p --output-format stream-json``) and ``codex``
(Codex CLI rollouts). Each module's docstring says what it maps and what it skips.
Every model call is one assistant item with one :class:`RecordedCall`; a file that
cannot be read raises :class:`~ctxbudget.errors.TraceError` naming the file, the line and
what was expected.
"""

from ctxbudget.traces._detect import FORMATS
from ctxbudget.traces._load import detect_format, iter_sessions, load_sessions
from ctxbudget.traces.discover import discover_user_logs
from ctxbudget.traces.session import RecordedCall, RecordedTotals, Session

__all__ = [
    "FORMATS",
    "RecordedCall",
    "RecordedTotals",
    "Session",
    "detect_format",
    "discover_user_logs",
    "iter_sessions",
    "load_sessions",
]
