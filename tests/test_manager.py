"""ContextManager: the public API, each cascade path, typed errors, restorable compaction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxbudget import ContextManager
from ctxbudget.budget.policy import Policy
from ctxbudget.compaction.handoff import read_brief
from ctxbudget.compaction.summarizers import SummaryRequest
from ctxbudget.errors import ConfigError, ContextOverflow, UsageError

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "bash",
            "description": "Run a shell command.",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
        },
    }
]


def exchange(step: int, output: str) -> list[dict[str, Any]]:
    call = f"call_{step}"
    return [
        {
            "role": "assistant",
            "content": f"Step {step}: look at src/module_{step}.py",
            "tool_calls": [
                {
                    "id": call,
                    "type": "function",
                    "function": {"name": "bash", "arguments": json.dumps({"cmd": f"cat {step}"})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call, "content": output},
    ]


def agent(window: int = 6_000, **kwargs: Any) -> ContextManager:
    mgr = ContextManager("gpt-4o", context_window=window, max_output_tokens=500, **kwargs)
    mgr.set_tools(TOOLS)
    mgr.extend(
        [
            {"role": "system", "content": "You are a careful engineer. Never edit tests."},
            {"role": "user", "content": "Fix the failing test in src/module_0.py."},
        ]
    )
    return mgr


def output(step: int, lines: int = 60) -> str:
    return "\n".join(f"line {n} of module_{step}: value={step * n}" for n in range(lines))


def test_no_compaction_below_the_high_watermark() -> None:
    mgr = agent(window=100_000)
    mgr.extend(exchange(1, output(1)))
    body = mgr.prepare()
    report = mgr.last_report
    assert report is not None
    assert report.records == ()
    assert report.reason == ""
    assert report.input_tokens.tokens == mgr.total()
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool"]
    assert body["tools"][0]["function"]["name"] == "bash"


def test_compaction_runs_in_batches_down_to_the_low_watermark() -> None:
    mgr = agent()
    compactions = []
    for step in range(1, 40):
        mgr.extend(exchange(step, output(step, 12)))  # ~200 tokens: the gap spans ~5 turns
        mgr.prepare()
        report = mgr.last_report
        assert report is not None
        assert report.input_tokens.tokens <= report.limit
        if report.records:
            compactions.append(step)
            assert mgr.total() <= mgr.accountant.ledger.allocation.low_watermark
    assert compactions, "the session never crossed the high watermark"
    assert len(compactions) < 39 / 3, "compaction should happen in batches, not every turn"


def test_cleared_results_are_recallable_and_placeholders_say_how() -> None:
    mgr = agent()
    originals = {}
    for step in range(1, 20):
        for item in mgr.extend(exchange(step, output(step))):
            originals[item.id] = item
    body = mgr.prepare()
    text = json.dumps(body)
    assert "recall(" in text
    visible = {i.id for i in mgr.view}
    hidden = [i for i in originals if i not in visible]
    assert hidden
    for item_id in hidden:
        assert mgr.recall(item_id) == originals[item_id]


def test_summarize_replaces_old_exchanges_with_one_user_summary() -> None:
    mgr = agent(strategies=["summarize"])
    for step in range(1, 25):
        mgr.extend(exchange(step, output(step, 30)))
    body = mgr.prepare()
    summaries = [m for m in body["messages"] if "Summary of earlier conversation" in str(m)]
    assert len(summaries) == 1
    assert summaries[0]["role"] == "user"
    assert body["messages"][0]["role"] == "system"
    assert "src/module_1.py" in summaries[0]["content"]


def test_a_failing_summarizer_falls_through_and_is_reported() -> None:
    def broken(request: SummaryRequest) -> str:
        raise RuntimeError("model unavailable")

    mgr = agent(strategies=["summarize", "sliding_window"], summarizer=broken)
    for step in range(1, 25):
        mgr.extend(exchange(step, output(step, 30)))
    body = mgr.prepare()
    report = mgr.last_report
    assert report is not None
    assert any(f.startswith("summarize:") for f in report.failures)
    assert [r.strategy for r in report.records] == ["sliding_window"]
    assert "model unavailable" not in json.dumps(body)


def test_reset_writes_a_handoff_brief(tmp_path: Path) -> None:
    mgr = agent(strategies=["reset"], handoff_dir=tmp_path)
    for step in range(1, 25):
        mgr.extend(exchange(step, output(step, 30)))
    body = mgr.prepare()
    report = mgr.last_report
    assert report is not None
    assert [r.strategy for r in report.records] == ["reset"]
    md, js = report.brief_paths
    assert md.suffix == ".md"
    assert js.suffix == ".json"
    brief = read_brief(js)
    assert brief.covers
    assert "Never edit tests" in " ".join(brief.constraints)
    assert body["messages"][0]["content"].startswith("You are a careful engineer")
    assert body["messages"][-1]["role"] == "tool"  # the latest exchange stays verbatim


def test_strict_mode_raises_instead_of_resetting() -> None:
    mgr = agent(strategies=["dedup"], strict=True)
    for step in range(1, 25):
        mgr.extend(exchange(step, output(step, 30)))
    with pytest.raises(ContextOverflow) as caught:
        mgr.prepare()
    assert caught.value.limit == mgr.accountant.ledger.allocation.usable


def test_a_pinned_item_larger_than_the_window_is_refused_at_the_door() -> None:
    """Nothing may shorten it, so every later request would fail: it never enters."""
    mgr = agent(window=3_000)
    before = len(mgr.log)
    with pytest.raises(ContextOverflow, match="append it unpinned"):
        mgr.append({"role": "user", "content": "requirement " * 4_000}, pinned=True)
    assert len(mgr.log) == before
    mgr.append({"role": "user", "content": "requirement " * 4_000})  # unpinned: cut to fit
    body = mgr.prepare()
    assert body["messages"]


def test_a_huge_latest_tool_result_is_cut_to_fit_and_recallable() -> None:
    mgr = agent(window=3_000)
    items = mgr.extend(exchange(1, output(1, 2_000)))
    body = mgr.prepare("anthropic")
    report = mgr.last_report
    assert report is not None
    assert report.input_tokens.tokens <= report.limit
    assert body["messages"][-1]["content"][0]["type"] == "tool_result"
    assert mgr.recall(items[-1].id).tool_results[0].content == output(1, 2_000)


def test_anthropic_messages_and_system_prompt() -> None:
    mgr = ContextManager("claude-sonnet-4-5", context_window=50_000, max_output_tokens=1_000)
    mgr.set_system("Be terse.")
    mgr.set_tools([{"name": "bash", "input_schema": {"type": "object"}}])
    mgr.extend(
        [
            {"role": "user", "content": "List files."},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "use ls", "signature": "abc"},
                    {"type": "tool_use", "id": "t1", "name": "bash", "input": {"cmd": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a.py"}],
            },
        ]
    )
    body = mgr.prepare("anthropic", temperature=0)
    assert body["system"] == "Be terse."
    assert body["temperature"] == 0
    assert body["max_tokens"] == mgr.accountant.ledger.allocation.output_reserve
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "use ls",
        "signature": "abc",
    }
    report = mgr.last_report
    assert report is not None
    assert report.exact is False  # Claude counts are estimates, and say so


def test_usage_errors_are_clear() -> None:
    mgr = agent()
    with pytest.raises(UsageError, match="unknown provider"):
        mgr.prepare("gemini")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown compaction strategy 'dedupe'"):
        agent(strategies=["dedupe"])
    with pytest.raises(UsageError, match="no item"):
        mgr.recall("m999")


def test_window_overrides_apply_to_a_model_spec_too() -> None:
    from ctxbudget.budget.models import resolve_model

    mgr = ContextManager(resolve_model("gpt-4o"), context_window=9_000, max_output_tokens=700)
    assert mgr.model.context_window == 9_000
    assert mgr.accountant.ledger.allocation.context_window == 9_000
    assert mgr.accountant.ledger.allocation.output_reserve == 700


def test_background_presummary_is_used_so_compaction_does_not_wait() -> None:
    import threading
    import time

    calls: list[tuple[str, ...]] = []
    done = threading.Event()

    def slow(request: SummaryRequest) -> str:
        calls.append(request.key)
        time.sleep(0.2)  # a model call
        done.set()
        return "## Progress\nBACKGROUND SUMMARY of src/module_1.py work\n"

    # no component budgets: only the window's watermarks trigger, after the presummary
    loose = Policy(name="window-only")
    with agent(strategies=["summarize"], summarizer=slow, policy=loose) as mgr:
        usable = mgr.accountant.ledger.allocation.usable
        waited = False
        for step in range(1, 60):
            mgr.extend(exchange(step, output(step, 12)))
            body = mgr.prepare()
            report = mgr.last_report
            assert report is not None
            if report.records:
                break
            if not waited and mgr.total() >= 0.7 * usable:
                assert done.wait(10)  # the agent's own work between turns
                time.sleep(0.05)  # the result is stored just after the call returns
                waited = True
        assert waited
        assert report.records
        assert report.records[0].strategy == "summarize"
        # a miss would have called the summarizer again, synchronously, inside prepare()
        assert len(calls) == 1, "the compaction did not use the background summary"
        assert "BACKGROUND SUMMARY" in json.dumps(body)
