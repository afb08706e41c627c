"""The what-if simulator: replays price what each policy sends, and the views are real."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from ctxbudget.analyze import Analysis, analyze_session
from ctxbudget.analyze.composition import composition_per_call
from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import resolve_model
from ctxbudget.convert.openai_chat import from_openai_chat, from_openai_chat_tools
from ctxbudget.errors import ConfigError
from ctxbudget.simulate import DEFAULT_POLICIES, Simulation, check_policies, simulate_session
from ctxbudget.traces.session import RecordedCall, Session

TOOLS = [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]


def _session(calls: int = 40, *, parallel: bool = True) -> Session:
    """A coding-agent session written here: big outputs, parallel calls, reused names."""
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "You are a careful engineer."},
        {"role": "user", "content": "Fix the failing test in pkg/parser.py"},
    ]
    for n in range(calls):
        ids = [f"c{n}a", f"c{n}b"] if parallel and n % 5 == 0 else [f"c{n}a"]
        thought = "Start."
        if n >= 3:
            thought = f"Checking helper_{n - 3}_7"
        if n >= 15:
            thought += f" and pkg/mod_{n - 15}.py"
        messages.append(
            {
                "role": "assistant",
                "content": thought,
                "tool_calls": [
                    {
                        "id": i,
                        "type": "function",
                        "function": {"name": "bash", "arguments": json.dumps({"cmd": f"cat f{n}"})},
                    }
                    for i in ids
                ],
            }
        )
        for i in ids:
            body = "\n".join(
                f"def helper_{n}_{k}(): return {k}  # pkg/mod_{n}.py" for k in range(150)
            )
            messages.append({"role": "tool", "tool_call_id": i, "content": body})
    messages.append({"role": "assistant", "content": f"Done: helper_{calls - 1}_7 fixed."})
    items = tuple(from_openai_chat(messages))
    return Session(
        name="written-here",
        source="test",
        format="openai-chat",
        items=items,
        tools=tuple(from_openai_chat_tools(TOOLS)),
        calls=tuple(RecordedCall(position=n) for n, i in enumerate(items) if i.role == "assistant"),
    )


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "gpt-4.1"])
def test_every_policy_prices_every_call_and_exports_exact_bodies(
    model: str, tmp_path: Path
) -> None:
    spec = resolve_model(model)
    session = _session()
    result = simulate_session(session, DEFAULT_POLICIES, spec, export_dir=tmp_path)
    assert result.calls == len(session.calls) == 41
    limit = spec.context_window
    for policy, run in result.runs.items():
        assert len(run.context) == len(run.costs) == result.calls
        assert all(c is not None and c > 0 for c in run.costs)
        assert run.peak <= limit
        lines = (tmp_path / policy / "written-here.jsonl").read_text().splitlines()
        assert len(lines) == result.calls
        for n, line in enumerate(lines):
            record = json.loads(line)
            assert record["step"] == n
            assert record["kind"] == "call"
            assert record["provider"] == ("anthropic" if "claude" in model else "openai_chat")
            _assert_paired(record["request"])
    none, nocache = result.runs["none"], result.runs["none-nocache"]
    assert none.context == nocache.context  # same requests, only the cache differs
    assert nocache.usage.cache_read_tokens == 0
    assert none.cached_share > 0.5
    assert none.input_cost is not None
    assert nocache.input_cost is not None
    assert none.input_cost < nocache.input_cost
    # no caching: every input token at the list price
    assert spec.prices is not None
    assert spec.prices.input is not None
    expected = Decimal(sum(nocache.context)) * spec.prices.input / Decimal(1_000_000)
    assert abs(nocache.input_cost - expected) < Decimal("0.000001")


def _assert_paired(body: dict[str, object]) -> None:
    """No tool call without its result and no result without its call, in either format."""
    messages = body["messages"]
    assert isinstance(messages, list)
    calls: set[str] = set()
    results: set[str] = set()
    for message in messages:
        for call in message.get("tool_calls") or []:
            calls.add(call["id"])
        if message.get("role") == "tool":
            results.add(message["tool_call_id"])
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if block.get("type") == "tool_use":
                    calls.add(block["id"])
                if block.get("type") == "tool_result":
                    results.add(block["tool_use_id"])
    assert calls == results


def test_ctxbudget_keeps_a_long_session_cheaper_and_smaller_than_none() -> None:
    spec = resolve_model("claude-sonnet-4-5")
    result = simulate_session(_session(80), ("none", "ctxbudget"), spec)
    none, own = result.runs["none"], result.runs["ctxbudget"]
    assert own.compactions  # it cleared something, on the timeline
    assert all(0 <= c.call < result.calls for c in own.compactions)
    assert own.input_cost is not None
    assert none.input_cost is not None
    assert own.input_cost < none.input_cost
    assert own.peak < none.peak
    # every call reuses a name from 3 calls back (kept) and a path only an output 15 calls
    # back held (cleared, recallable): about half; real sessions are measured by the bench
    share = own.retention.share
    assert share is not None
    assert 0.4 < share < 1.0


def test_mask_last_10_hides_old_outputs_and_loses_references() -> None:
    spec = resolve_model("gpt-4.1")
    result = simulate_session(_session(40), ("none", "mask-last-10"), spec)
    masked, none = result.runs["mask-last-10"], result.runs["none"]
    assert masked.peak < none.peak
    assert none.retention.share == 1.0
    assert masked.retention.used == none.retention.used
    # names from 3 calls back stay; paths only an output 15 calls back held are lost
    assert masked.retention.kept < masked.retention.used


def test_totals_and_json_add_up() -> None:
    spec = resolve_model("claude-sonnet-4-5")
    sim = Simulation(
        model=spec.name, provider=spec.provider, exact=False, policies=DEFAULT_POLICIES
    )
    sim.sessions.append(simulate_session(_session(20), DEFAULT_POLICIES, spec))
    sim.sessions.append(simulate_session(_session(30, parallel=False), DEFAULT_POLICIES, spec))
    data = sim.to_json()
    assert data["sessions"] == 2
    assert data["calls"] == 21 + 31
    for policy in DEFAULT_POLICIES:
        total = data["totals"][policy]["input_cost_usd"]
        parts = sum(s["policies"][policy]["input_cost_usd"] for s in data["per_session"])
        assert total == pytest.approx(parts, abs=1e-5)
    assert data["totals"]["none"]["vs_none"] == 1.0
    assert data["totals"]["none-nocache"]["sessions_costlier_than_none"] == 2
    assert sim.ratio("none", "missing") is None


def test_policy_names_are_checked() -> None:
    assert check_policies(["none", " ctxbudget:agent "]) == ("none", "ctxbudget:agent")
    with pytest.raises(ConfigError, match=r"unknown policy 'nonne'.*none-nocache"):
        check_policies(["nonne"])
    with pytest.raises(ConfigError, match="listed twice"):
        check_policies(["none", "none"])
    with pytest.raises(ConfigError, match="no policy"):
        check_policies([])


def test_counts_for_claude_are_estimates_for_gpt_exact() -> None:
    assert not counter_for(resolve_model("claude-sonnet-4-5")).count_text("x").exact
    assert counter_for(resolve_model("gpt-4.1")).count_text("x").exact


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "gpt-4.1"])
def test_the_replay_and_the_composition_share_one_counting(model: str) -> None:
    """``simulate`` counts each item once: the composition chart reads the replay's counts."""
    spec = resolve_model(model)
    session = _session(20)
    counter = counter_for(spec)
    shared = simulate_session(session, DEFAULT_POLICIES, spec, counter=counter)
    tokenized = counter.cache_info().misses
    composition, positions = composition_per_call(session, counter)
    assert counter.cache_info().misses == tokenized  # every item came from the replay's count
    assert shared == simulate_session(session, DEFAULT_POLICIES, spec)  # a fresh counter
    assert (composition, positions) == composition_per_call(session, counter_for(spec))
    assert positions == [c.position for c in session.calls]


def test_a_log_with_an_interrupted_call_and_a_repeated_id_replays() -> None:
    """A log is what happened: an interrupted call (no result before the next message) and
    a call id used again are repaired as the door states, so every policy still replays."""
    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "Fix it."},
        {"role": "assistant", "content": "Looking.", "tool_calls": [call]},
        {"role": "user", "content": "[Request interrupted by user] try the tests first"},
        {"role": "assistant", "content": "Running.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "3 passed"},
        {"role": "assistant", "content": "Done."},
    ]
    items = tuple(from_openai_chat(messages))
    session = Session(
        name="interrupted",
        source="test",
        format="openai-chat",
        items=items,
        tools=tuple(from_openai_chat_tools(TOOLS)),
        calls=tuple(RecordedCall(position=n) for n, i in enumerate(items) if i.role == "assistant"),
    )
    result = simulate_session(session, ("none", "ctxbudget"), resolve_model("gpt-4.1"))
    assert set(result.runs) == {"none", "ctxbudget"}
    assert result.calls == 3
    assert all(len(run.costs) == 3 for run in result.runs.values())


def _compacted(reset: bool = True) -> Session:
    """A session whose client compacted its own context (a ``/compact``) midway: the
    summary item starts the context over, and later calls were sent only what follows."""
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "You are a careful engineer."},
        {"role": "user", "content": "Fix the failing test in pkg/parser.py"},
    ]
    for n in range(6):
        messages.append(
            {
                "role": "assistant",
                "content": f"Reading part {n}.",
                "tool_calls": [
                    {
                        "id": f"c{n}",
                        "type": "function",
                        "function": {"name": "bash", "arguments": json.dumps({"cmd": f"cat {n}"})},
                    }
                ],
            }
        )
        body = "\n".join(f"def early_{n}_{k}(): return {k}" for k in range(200))
        messages.append({"role": "tool", "tool_call_id": f"c{n}", "content": body})
    summary = "Summary of the work so far: early_1_5 is the culprit."
    messages.append({"role": "user", "content": summary})
    messages.append({"role": "assistant", "content": "Fixing early_1_5 and early_2_9 now."})
    messages.append({"role": "user", "content": "Go on."})
    messages.append({"role": "assistant", "content": "Done."})
    items = tuple(from_openai_chat(messages))
    at = next(n for n, i in enumerate(items) if i.role == "user" and "Summary" in str(i.parts))
    return Session(
        name="compacted",
        source="test",
        format="openai-chat",
        items=items,
        tools=tuple(from_openai_chat_tools(TOOLS)),
        calls=tuple(RecordedCall(position=n) for n, i in enumerate(items) if i.role == "assistant"),
        resets=(at,) if reset else (),
    )


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "gpt-4.1"])
def test_baselines_replay_what_the_client_sent_after_its_own_compaction(
    model: str, tmp_path: Path
) -> None:
    """After a ``/compact`` the client sent the system prompt and what followed, not the
    history it replaced: the baselines replay that (so the peak is no longer the whole
    session), while ctxbudget manages the whole history in the client's place."""
    spec = resolve_model(model)
    session, whole = _compacted(), _compacted(reset=False)
    at = session.resets[0]
    result = simulate_session(session, DEFAULT_POLICIES, spec, export_dir=tmp_path)
    before = simulate_session(whole, DEFAULT_POLICIES, spec)
    after = [n for n, c in enumerate(session.calls) if c.position > at]
    assert after == [6, 7]
    for policy in ("none-nocache", "none", "mask-last-10", "clear-tool-uses"):
        run, full = result.runs[policy], before.runs[policy]
        assert run.context[:6] == full.context[:6]  # the same until the reset
        assert all(run.context[n] < run.context[5] / 5 for n in after)
        assert all(run.context[n] < full.context[n] for n in after)
        lines = (tmp_path / policy / "compacted.jsonl").read_text().splitlines()
        sent = json.dumps(json.loads(lines[6])["request"])
        assert "careful engineer" in sent
        assert "Summary of the work" in sent
        assert "early_3_" not in sent
        assert "pkg/parser.py" not in sent
    assert result.runs["none"].peak == result.runs["none"].context[5]
    # ctxbudget is fed the whole history either way: it manages it in the client's place
    assert result.runs["ctxbudget"].context == before.runs["ctxbudget"].context
    # retention still scores what the client's compaction lost (early_2_9 was only in the
    # dropped history), but no recall call the client never made is priced for it
    none = result.runs["none"]
    assert none.retention.used == before.runs["none"].retention.used
    assert none.retention.kept == none.retention.used - 1
    assert before.runs["none"].retention.share == 1.0
    assert none.recalls == 0
    assert none.recall_cost == 0
    assert result.resets == 1
    assert before.resets == 0


def test_a_session_without_resets_replays_exactly_as_before() -> None:
    """No reset: every baseline gets the whole history (the same objects), as always."""
    session = _compacted(reset=False)
    assert session.request(len(session.items) - 1) == session.items[:-1]


def test_the_composition_restarts_at_each_client_reset() -> None:
    """At a reset the running composition restarts from the tool schemas and the system
    prompt, then adds the summary and what follows: each call's total is its request's."""
    spec = resolve_model("gpt-4.1")
    counter = counter_for(spec)
    session = _compacted()
    composition, positions = composition_per_call(session, counter)
    schemas = counter.count_tools(session.tools).tokens
    totals = [sum(c) for c in zip(*composition.values(), strict=True)]
    for position, total in zip(positions, totals, strict=True):
        request = session.request(position)
        assert total == schemas + sum(counter.count_item(i).tokens for i in request)
    at = session.resets[0]
    last = positions.index(max(p for p in positions if p > at))
    assert composition["tool results: bash"][last] == 0
    assert composition["system"][last] == composition["system"][0] > 0
    whole, _ = composition_per_call(_compacted(reset=False), counter)
    assert whole["tool results: bash"][last] > 0


def test_analyze_peaks_at_what_the_client_sent() -> None:
    """``analyze`` (no billed usage: the ``none`` replay prices it) counts the prompt the
    client sent: the compacted session's later calls are small, the figures agree."""
    spec = resolve_model("gpt-4.1")
    compacted = analyze_session(_compacted(), spec)
    whole = analyze_session(_compacted(reset=False), spec)
    assert compacted.prompts[:6] == whole.prompts[:6]
    assert compacted.prompts[7] < whole.prompts[7] / 5
    assert compacted.peak == compacted.prompts[5]
    assert compacted.input_cost is not None
    assert whole.input_cost is not None
    assert compacted.input_cost < whole.input_cost
    assert compacted.resets == 1
    row = Analysis([compacted]).to_json()["per_session"][0]
    assert row["client_resets"] == 1
    assert row["peak_tokens"] == compacted.peak


def test_skipped_records_and_parent_reach_the_results() -> None:
    """Record kinds a newer agent wrote and the parent of a sub-agent's transcript are in
    the per-session JSON of ``simulate``."""
    session = replace(_compacted(), skipped={"attachment": 33, "mode": 2}, parent="abc123")
    result = simulate_session(session, ("none",), resolve_model("gpt-4.1"))
    sim = Simulation(model="gpt-4.1", provider="openai", exact=True, policies=("none",))
    sim.sessions.append(result)
    row = sim.to_json()["per_session"][0]
    assert row["skipped_records"] == {"attachment": 33, "mode": 2}
    assert row["parent"] == "abc123"
    assert row["client_resets"] == 1
