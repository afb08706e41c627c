"""Probing: known facts of a session become known probes; readers answer from the view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.budget.accounting import counter_for
from ctxbudget.budget.models import resolve_model
from ctxbudget.convert.openai_chat import from_openai_chat
from ctxbudget.probe import (
    OFFLINE_LABEL,
    OfflineReader,
    Probe,
    StepView,
    body_text,
    generate_probes,
    grade,
    normalize,
    probe_session,
    score,
    views_at,
)
from ctxbudget.report._schema import validate
from ctxbudget.traces.session import RecordedCall, Session
from provider_server import ProviderServer, Reply
from test_cli import run

FILLER = 30
RUN_OUTPUT = (
    "Booting app\n"
    "worker port allocated: 48213 (pid 7)\n"
    "ValueError: invalid literal for int() with base 10: 'abc'"
)
DECISION = "The issue is the port parsing, so I'll patch parse_port_value in the loader."


def _call(n: int, text: str, cmd: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text,
        "tool_calls": [
            {
                "id": f"c{n}",
                "type": "function",
                "function": {"name": "bash", "arguments": json.dumps({"cmd": cmd})},
            }
        ],
    }


def _messages() -> list[dict[str, Any]]:
    """Three facts early (a grep hit, a failed run printing a port, a stated decision),
    thirty quiet calls, the port used again at call 20."""
    out: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a careful engineer."},
        {"role": "user", "content": "Fix the crash when the app starts."},
        _call(0, "Searching.", "grep -rn 'def load_settings' src"),
        {
            "role": "tool",
            "tool_call_id": "c0",
            "content": "src/app/settings.py:41:def load_settings(path):",
        },
        _call(1, "Running it.", "python -m app"),
        {"role": "tool", "tool_call_id": "c1", "content": RUN_OUTPUT},
        _call(2, DECISION, "cat config.ini"),
        {"role": "tool", "tool_call_id": "c2", "content": "ok"},
    ]
    for n in range(3, 3 + FILLER):
        cmd = "curl localhost:48213/health" if n == 20 else f"echo step {n}"
        out.append(_call(n, f"Step {n}.", cmd))
        out.append({"role": "tool", "tool_call_id": f"c{n}", "content": f"step {n} done"})
    out.append({"role": "assistant", "content": "Done."})
    return out


def _session() -> Session:
    items = tuple(from_openai_chat(_messages()))
    return Session(
        name="written-here",
        source="test",
        format="openai-chat",
        items=items,
        calls=tuple(RecordedCall(position=n) for n, i in enumerate(items) if i.role == "assistant"),
    )


def _source(session: Session, role: str, needle: str) -> str:
    from ctxbudget.session.items import item_text

    return next(i.id for i in session.items if i.role == role and needle in item_text(i))


def test_known_facts_become_known_probes() -> None:
    session = _session()
    probes = generate_probes(session, 4)
    # 34 calls: probes at calls spread over the later half (17..33)
    assert [p.call for p in probes] == [19, 23, 27, 31]
    got = [(p.kind, p.answer, p.age, p.source) for p in probes]
    assert got == [
        ("value", "48213", 17, _source(session, "tool", "48213")),
        ("location", "src/app/settings.py", 22, _source(session, "tool", "load_settings")),
        (
            "error",
            "ValueError: invalid literal for int() with base 10: 'abc'",
            25,
            _source(session, "tool", "48213"),
        ),
        ("decision", "parse_port_value", 28, _source(session, "assistant", "parse_port")),
    ]
    for p in probes:
        assert session.items[p.position].role == "assistant"
        assert normalize(p.answer) not in normalize(p.question), p.question
    assert "worker port allocated: ____ (pid 7)" in probes[0].question
    assert "quoted tool output, data only" in probes[0].question
    assert "load_settings" in probes[1].question
    assert "I'll patch ____ in the loader" in probes[3].question
    assert generate_probes(session, 4) == probes  # deterministic
    assert generate_probes(session, 0) == []


def test_grading_is_normalized_and_word_aligned() -> None:
    assert grade("It is `SRC/App/settings.py`.", "src/app/settings.py")
    assert grade(
        "valueerror  invalid literal for INT() with base 10 'abc'", RUN_OUTPUT.split("\n")[2]
    )
    assert not grade("port 482130", "48213")
    assert not grade("unknown", "48213")
    assert not grade("anything", "")


def _view(text: str) -> StepView:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "task"},
            {"role": "tool", "tool_call_id": "c1", "content": text},
        ],
    }
    return StepView(body=body, format="openai_chat", tokens=10, exact=True)


def test_offline_reader_answers_only_when_the_line_is_in_the_view() -> None:
    probe = generate_probes(_session(), 1)[0]
    assert probe.kind == "value"
    reader = OfflineReader()
    assert reader.label == OFFLINE_LABEL
    kept = reader.answer(probe, _view(RUN_OUTPUT))
    hidden = reader.answer(probe, _view("[output of bash hidden; recall c1 to read it]"))
    digested = reader.answer(
        probe, _view("Digest of earlier tool output (quoted): worker port allocated: 48213 (pid 7)")
    )
    name_only = reader.answer(probe, _view("names seen: 48213, load_settings"))
    assert grade(kept.text, probe.answer)
    assert hidden.text == "unknown"
    assert not grade(hidden.text, probe.answer)
    assert grade(digested.text, probe.answer)
    assert name_only.text == "unknown"  # the value alone is not the line that says what it is


def test_policies_are_graded_on_their_exact_views() -> None:
    session = _session()
    spec = resolve_model("gpt-4.1")
    policies = ("none", "mask-last-10", "ctxbudget")
    outcomes = probe_session(
        session, policies, spec, OfflineReader(), counter_for(spec), per_session=4
    )
    scores = score(outcomes, policies, spec.prices)
    assert scores["none"].overall.correct == 4
    # masking hides every tool output older than 10 turns; the agent's own words stay
    mask = scores["mask-last-10"]
    assert (mask.overall.correct, mask.kinds["decision"].correct) == (1, 1)
    assert scores["ctxbudget"].overall.correct == 4  # a short session: nothing compacted
    assert all(s.calls == 0 and s.cost == 0 for s in scores.values())


@pytest.fixture(scope="module")
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as running:
        yield running


def _answer_from_context(probes: list[Probe]) -> Any:
    """The fake model: finds the probe's line in the request's text (the question aside)."""
    by_question = {p.question: p for p in probes}

    def script(api: str, body: dict[str, Any]) -> Reply:
        *context, last = body["messages"]
        probe = next(p for q, p in by_question.items() if last["content"].endswith(q))
        text = f" {normalize(body_text({'messages': context}))} "
        found = all(f" {normalize(e)} " in text for e in probe.evidence)
        return Reply(text=f"It is {probe.answer}." if found else "unknown")

    return script


def test_probe_a_model_through_the_openai_sdk(
    server: ProviderServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "chat.json"
    log.write_text(json.dumps(_messages()), encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    from ctxbudget.traces import load_sessions

    (session,) = load_sessions(log)
    probes = generate_probes(session, 4)
    server.script = _answer_from_context(probes)
    start = len(server.requests)
    args = ["probe", str(log), "--policy", "none,mask-last-10,ctxbudget", "--model", "gpt-4.1"]
    args += ["--base-url", server.openai_base_url, "--probes-per-session", "4"]

    code, _, err = run(capsys, *args, "--max-cost", "0", "--json")
    assert code == 2
    assert "pass --yes" in err
    assert "probing asks gpt-4.1 12 time(s)" in err
    assert len(server.requests) == start  # nothing spent

    code, out, err = run(capsys, *args, "--yes", "--json")
    server.script = None
    assert code == 0, err
    data = json.loads(out)
    assert data["reader"] == "model gpt-4.1"
    scores = data["scores"]
    assert (scores["none"]["correct"], scores["none"]["total"]) == (4, 4)
    assert scores["mask-last-10"]["correct"] == 1
    assert scores["ctxbudget"]["correct"] == 4
    assert all(s["calls"] == 4 and float(s["cost"]) > 0 for s in scores.values())
    sent = server.requests[start:]
    assert len(sent) == 12
    # each request is the policy's exact body at that call, plus the question
    spec = resolve_model("gpt-4.1")
    views = views_at(
        session,
        ["none", "mask-last-10", "ctxbudget"],
        spec,
        {p.call for p in probes},
        counter_for(spec),
    )
    expected = [views[policy][p.call].body["messages"] for policy in views for p in probes]
    assert [body["messages"][:-1] for body in sent] == expected
    assert all(body["messages"][-1]["role"] == "user" for body in sent)
    assert all(body.get("tool_choice") in (None, "none") for body in sent)


@pytest.fixture
def no_user_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.chdir(tmp_path)


def test_cli_table_and_json_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "chat.json"
    log.write_text(json.dumps(_messages()), encoding="utf-8")
    args = ["probe", str(log), "--policy", "none,mask-last-10", "--probes-per-session", "4"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert OFFLINE_LABEL in " ".join(out.split())
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 5}
    assert "100% (4/4)" in lines["none"]
    assert "25% (1/4)" in lines["mask-last-10"]
    code, out, _ = run(capsys, *args, "--json")
    data = json.loads(out)
    assert data["reader"] == OFFLINE_LABEL
    assert data["scores"]["mask-last-10"]["by_kind"]["decision"]["accuracy"] == 1.0
    assert data["scores"]["mask-last-10"]["by_age"]["20-49"]["correct"] == 1
    assert len(data["outcomes"]) == 8
    assert {o["kind"] for o in data["outcomes"]} == {"value", "location", "error", "decision"}


def test_cli_html_report_shows_probe_accuracy_by_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "chat.json"
    log.write_text(json.dumps(_messages()), encoding="utf-8")
    page = tmp_path / "report.html"
    args = ["probe", str(log), "--policy", "none,mask-last-10", "--probes-per-session", "4"]
    code, out, err = run(capsys, *args, "--html", str(page), "--json")
    assert code == 0, err
    assert json.loads(out)["report"] == str(page)
    text = page.read_text(encoding="utf-8")
    embedded = text.split('id="ctxbudget-data">', 1)[1].split("</script>", 1)[0]
    data = json.loads(embedded)
    validate(data)  # the schema check passes
    assert data["kind"] == "simulate"
    assert data["probe_reader"] == OFFLINE_LABEL
    totals = data["totals"]["policies"]
    assert totals["none"]["probe_accuracy"] == 1.0
    assert totals["mask-last-10"]["probe_accuracy"] == 0.25
    assert f"probe accuracy ({OFFLINE_LABEL})" in text
    assert f"<dt>probe reader</dt><dd>{OFFLINE_LABEL}</dd>" in text
    # the accuracy cells sit right after the retention cells, in the policy table
    table = text.split('id="totals-table"', 1)[1].split("</table>", 1)[0]
    heads = [h.split("</button>")[0] for h in table.split('<button type="button">')[1:]]
    assert heads.index(f"probe accuracy ({OFFLINE_LABEL})") == heads.index("line retention") + 1
    rows = {r.split("</td>")[0].split(">")[-1]: r for r in table.split("<tr>")[2:]}
    assert '<td class="num" data-v="1.0">100.0%</td>' in rows["none"]
    assert '<td class="num" data-v="0.25">25.0%</td>' in rows["mask-last-10"]
    # a plain simulate report of the same log has neither
    plain = tmp_path / "plain.html"
    code, _, err = run(capsys, "simulate", str(log), "--policy", "none", "--html", str(plain))
    assert code == 0, err
    assert "probe" not in plain.read_text(encoding="utf-8")


@pytest.mark.usefixtures("no_user_logs")
def test_cli_with_no_path_probes_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "probe", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["source"] == "demo"
    assert data["probes"] == 8
    assert data["scores"]["none"]["accuracy"] == 1.0


def test_cli_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "probe", "--demo", "--base-url", "http://x")
    assert code == 2
    assert "--base-url needs --model" in err
    code, _, err = run(capsys, "probe", "--demo", "--probes-per-session", "0")
    assert code == 2
    assert "at least 1" in err


def test_anthropic_model_reader_and_provider_errors(server: ProviderServer) -> None:
    import anthropic
    import openai

    from ctxbudget.errors import ProviderError
    from ctxbudget.probe import ModelReader

    session = _session()
    probes = generate_probes(session, 4)
    spec = resolve_model("claude-sonnet-4-5")
    client = anthropic.Anthropic(api_key="t", base_url=server.anthropic_base_url, max_retries=0)
    reader = ModelReader(client, spec.name)
    server.script = _answer_from_anthropic(probes)
    start = len(server.requests)
    outcomes = probe_session(
        session, ["none", "mask-last-10"], spec, reader, counter_for(spec), probes=probes
    )
    server.script = None
    scores = score(outcomes, ["none", "mask-last-10"], spec.prices)
    assert (scores["none"].overall.correct, scores["mask-last-10"].overall.correct) == (4, 1)
    assert scores["none"].calls == 4
    assert scores["none"].input_tokens == sum(b.input_tokens for b in server.billed[-8:-4])
    sent = server.requests[start:]
    assert all(b["messages"][-1]["role"] == "user" for b in sent)
    assert all(b["max_tokens"] == 200 for b in sent)

    chat = ModelReader(
        openai.OpenAI(api_key="t", base_url=server.openai_base_url, max_retries=0), "gpt-4.1"
    )
    gpt = resolve_model("gpt-4.1")
    view = views_at(session, ["none"], gpt, {probes[0].call}, counter_for(gpt))["none"]
    server.fail_next("server_error")
    with pytest.raises(ProviderError, match="HTTP 500") as caught:
        chat.answer(probes[0], view[probes[0].call])
    assert isinstance(caught.value.__cause__, openai.InternalServerError)


def _answer_from_anthropic(probes: list[Probe]) -> Any:
    """The fake model for Anthropic requests: the question is the last user text block."""
    by_question = {p.question: p for p in probes}

    def script(api: str, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        blocks = messages[-1]["content"]
        last = blocks[-1]["text"] if isinstance(blocks, list) else blocks
        probe = next(p for q, p in by_question.items() if last.endswith(q))
        context = [*messages[:-1], {**messages[-1], "content": blocks[:-1]}]
        text = f" {normalize(body_text({'system': body.get('system'), 'messages': context}))} "
        found = all(f" {normalize(e)} " in text for e in probe.evidence)
        return Reply(text=probe.answer if found else "unknown")

    return script
