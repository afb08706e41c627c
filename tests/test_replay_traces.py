"""Every real session in ../shared/traces replays through the manager in a smaller window.

The window is set below each session's peak context, so compaction must run; every model
call's prepared request must fit (counted on the rendered body) and pair every tool call.
"""

from __future__ import annotations

import pytest

from _sessions import trace_sessions
from _traces import requires_traces
from ctxbudget import ContextManager
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import resolve_model
from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.traces import Session

SESSIONS = trace_sessions()
GPT4O = resolve_model("gpt-4o")


@requires_traces
def test_every_trace_file_is_replayed() -> None:
    assert len({session.source for session in SESSIONS}) >= 80
    assert len(SESSIONS) >= 280


@requires_traces
@pytest.mark.parametrize("session", SESSIONS, ids=[s.name[-60:] for s in SESSIONS])
def test_session_replays_in_a_window_below_its_peak(session: Session) -> None:
    counter = counter_for(GPT4O)
    name, items = session.name, session.items
    if not session.calls:
        return
    peak = counter.count_request(items[: session.calls[-1].position]).tokens  # largest prompt
    fixed = counter.count_request([i for i in items if i.role == "system"]).tokens
    conversation = peak - fixed
    if conversation < 200:
        return  # nothing but the fixed prompt to manage
    # a third of the conversation must go, and a quarter of it is the output reserve
    window = peak - conversation // 3
    reserve = min(2_000, conversation // 4)
    mgr = ContextManager(GPT4O, context_window=window, max_output_tokens=reserve)
    compacted = 0
    for item in items:
        if item.role == "assistant":  # the model was called here
            body = mgr.prepare()
            report = mgr.last_report
            assert report is not None, name
            assert report.input_tokens.tokens <= report.limit, name
            sent = from_openai_chat(body["messages"])
            assert not find_orphans(sent, allow_pending_tail=False), name
            compacted += len(report.records)
        mgr.extend([item])
    assert compacted > 0, name  # the window is below the peak: compaction had to run
