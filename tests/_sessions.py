"""Read every session in ../shared/traces as OpenAI chat messages, for replay tests.

A deliberately small reader for the tests (issue 5 brings the real importers): only the
API fields (role, content, tool_calls, tool_call_id, name) are kept. Nothing is copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _traces import TRACES

API_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")


def _api(message: dict[str, Any]) -> dict[str, Any]:
    return {k: message[k] for k in API_KEYS if k in message}


def _openhands(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Actions become assistant tool calls answered by their observations (by ``cause``)."""
    answered = {str(e["cause"]) for e in history if "observation" in e and "cause" in e}
    calls: set[str] = set()
    out: list[dict[str, Any]] = []
    for event in history:
        text = str(event.get("content") or event.get("message") or "")
        if "action" in event:
            action, source, eid = event["action"], event.get("source"), str(event["id"])
            if action == "system":
                out.append({"role": "system", "content": text})
            elif action == "message" or source == "user" or eid not in answered:
                out.append({"role": "user" if source == "user" else "assistant", "content": text})
            else:
                calls.add(eid)
                arguments = json.dumps(event.get("args", {}), sort_keys=True, default=str)
                call = {
                    "id": f"call_{eid}",
                    "type": "function",
                    "function": {"name": action, "arguments": arguments},
                }
                out.append(
                    {"role": "assistant", "content": event.get("message"), "tool_calls": [call]}
                )
        elif "observation" in event:
            cause = str(event.get("cause"))
            if cause in calls:
                out.append({"role": "tool", "tool_call_id": f"call_{cause}", "content": text})
            else:
                out.append({"role": "user", "content": text})
    return out


def sessions_in(path: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``(name, messages)`` for every session in one trace file."""
    folder = path.parent.name
    if folder == "openhands-output-jsonl":
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            yield f"{path.name}#{n}", _openhands(json.loads(line)["history"])
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    if folder == "tau-bench-openai-chat":
        for n, run in enumerate(data):
            yield f"{path.name}#{n}", [_api(m) for m in run["traj"]]
    elif folder == "swe-agent-traj":
        yield path.name, [_api(m) for m in data["history"]]
    elif folder == "terminus2-chat-messages":
        if path.name.endswith("prompt.json"):
            yield path.name, [_api(m) for m in data["messages"]]
    else:  # mini-swe-agent v1 and v2
        yield path.name, [_api(m) for m in data["messages"] if m["role"] != "exit"]


def trace_files() -> list[Path]:
    """Every data file under ../shared/traces (empty where the folder is absent)."""
    if not TRACES.is_dir():
        return []
    return sorted(p for p in TRACES.glob("*/*") if p.suffix in (".json", ".jsonl"))
