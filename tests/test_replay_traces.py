"""Every real session in ../shared/traces replays through the manager in a smaller window.

The window is set below each session's peak context, so compaction must run; every model
call's prepared request must fit (counted on the rendered body) and pair every tool call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from _sessions import sessions_in, trace_files
from _traces import requires_traces
from ctxbudget import ContextManager
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import resolve_model
from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.session.exchanges import find_orphans

FILES = trace_files()
GPT4O = resolve_model("gpt-4o")


@requires_traces
def test_every_trace_file_is_replayed() -> None:
    assert len(FILES) >= 80
    sessions = sum(1 for path in FILES for _ in sessions_in(path))
    assert sessions >= 280


@requires_traces
@pytest.mark.parametrize("path", FILES, ids=[p.name[-60:] for p in FILES])
def test_session_replays_in_a_window_below_its_peak(path: Path) -> None:
    counter = counter_for(GPT4O)
    for name, messages in sessions_in(path):
        items = from_openai_chat(messages)
        calls = [n for n, m in enumerate(messages) if m["role"] == "assistant"]
        if not calls:
            continue
        peak = counter.count_request(items[: calls[-1]]).tokens  # the largest prompt sent
        fixed = counter.count_request([i for i in items if i.role == "system"]).tokens
        conversation = peak - fixed
        if conversation < 200:
            continue  # nothing but the fixed prompt to manage
        # a third of the conversation must go, and a quarter of it is the output reserve
        window = peak - conversation // 3
        reserve = min(2_000, conversation // 4)
        mgr = ContextManager(GPT4O, context_window=window, max_output_tokens=reserve)
        compacted = 0
        for message in messages:
            if message["role"] == "assistant":  # the model was called here
                body = mgr.prepare()
                report = mgr.last_report
                assert report is not None, name
                assert report.input_tokens.tokens <= report.limit, name
                sent = from_openai_chat(body["messages"])
                assert not find_orphans(sent, allow_pending_tail=False), name
                compacted += len(report.records)
            mgr.append(message)
        assert compacted > 0, name  # the window is below the peak: compaction had to run
