"""Incremental request building equals building every request from scratch.

``prepare()`` keeps what it wrote, counted and fingerprinted for the unchanged part of a
session and works only on what changed. Random sessions (tool calls with parallel results,
digests and compactions in small windows, provider switches, ``set_system`` mid-session,
tool changes, recalibration, cache expiry on a fake clock) are run through two managers:
one incremental, and a reference whose writer renders every body from scratch with fresh
renderers (so nothing downstream can reuse anything either). Each request must match in
bytes, input count, fingerprint, breakpoints, prediction and bust; and the incremental
pieces without a from-scratch twin are checked against plain recomputations: the bodies
against the pure converters, the count against a whole-body read, ``clearable`` against a
recount, the cache state against the dict of prefixes it replaces, and ``View.apply``
against the whole-view orphan rule.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ctxbudget.billing.usage import Usage
from ctxbudget.cache.breakpoints import place_anthropic_breakpoints, strip_cache_control
from ctxbudget.cache.fingerprint import Block, Fingerprint, Prefix
from ctxbudget.cache.predictor import CacheState
from ctxbudget.cache.rules import CacheRules
from ctxbudget.cache.session import SessionCache
from ctxbudget.compaction.strategies._mechanical import is_text_observation
from ctxbudget.compaction.strategies.base import derived_kind
from ctxbudget.convert.anthropic import to_anthropic
from ctxbudget.convert.openai_chat import to_openai_chat
from ctxbudget.convert.request import read_request
from ctxbudget.engine.request import RequestWriter, wire_format
from ctxbudget.errors import ContextOverflow, UsageError
from ctxbudget.manager import ContextManager
from ctxbudget.render.anthropic import LEADING_USER_NOTE
from ctxbudget.session.exchanges import find_orphans
from ctxbudget.session.items import Component, Item, TextPart, ToolCallPart, ToolResultPart
from ctxbudget.session.log import Edit
from ctxbudget.session.view import View

PROVIDERS = ("openai", "openai_responses", "anthropic")
WORDS = ["alpha", "beta", "src/app.py", "Error: boom", "42", "déjà", "写代码", "ok", "x" * 9]
TOOLS = [
    {"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}},
]


@st.composite
def text(draw: st.DrawFn, max_words: int = 30) -> str:
    return " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=max_words)))


@st.composite
def output(draw: st.DrawFn) -> str:
    """A tool output: a line or two, or a long listing the door and the digest act on."""
    lines = draw(st.sampled_from([1, 2, 40, 400]))
    seed = draw(st.integers(0, 9))
    return "\n".join(
        f"{WORDS[(i + seed) % len(WORDS)]} line {i} = {i * seed}" for i in range(lines)
    )


@st.composite
def op(draw: st.DrawFn, step: int, main: str) -> tuple[Any, ...]:
    kind = draw(
        st.sampled_from(
            [
                *("user", "user", "reply", "tools", "tools", "tools"),
                *("prepare", "prepare", "prepare", "system", "set_tools", "observe"),
                "anthropic_turn",
            ]
        )
    )
    if kind == "user":
        return ("user", draw(text()))
    if kind == "reply":
        return ("reply", draw(text()) + ("\n" + draw(text())) * draw(st.integers(0, 6)))
    if kind == "tools":
        n = draw(st.integers(1, 3))
        return ("tools", step, draw(text(8)), [draw(output()) for _ in range(n)])
    if kind == "anthropic_turn":
        return ("anthropic_turn", step, draw(text(8)), draw(output()), draw(st.booleans()))
    if kind == "system":
        return ("system", draw(text(10)))
    if kind == "set_tools":
        return ("set_tools", draw(st.integers(1, 2)), draw(st.booleans()))
    if kind == "observe":
        return ("observe", draw(st.sampled_from([0.8, 1.0, 1.25])))
    provider = draw(st.sampled_from([main, main, main, *PROVIDERS]))
    return ("prepare", provider, draw(st.sampled_from([1, 60, 301, 4000])))


@st.composite
def sessions(draw: st.DrawFn) -> tuple[str, str, int, list[tuple[Any, ...]]]:
    model = draw(st.sampled_from(["gpt-4o", "claude-sonnet-4-5"]))
    policy = draw(st.sampled_from(["digest", "digest", "agent"]))  # agent: clearing pays
    window = draw(st.sampled_from([9_000, 14_000, 40_000, 1_000_000]))
    main = draw(st.sampled_from(PROVIDERS))  # mostly one provider: long incremental runs
    ops = [draw(op(step, main)) for step in range(draw(st.integers(4, 40)))]
    return model, policy, window, [*ops, ("prepare", main, 1)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed(mgr: ContextManager, step: tuple[Any, ...]) -> None:
    """One operation of a session that is not a prepare."""
    kind = step[0]
    if kind == "user":
        mgr.append({"role": "user", "content": step[1]})
    elif kind == "reply":
        mgr.append({"role": "assistant", "content": step[1]})
    elif kind == "tools":
        _, index, thought, outputs = step
        ids = [f"call_{index}_{k}" for k in range(len(outputs))]
        calls = [
            {"id": i, "type": "function", "function": {"name": "bash", "arguments": "{}"}}
            for i in ids
        ]
        mgr.append({"role": "assistant", "content": thought, "tool_calls": calls})
        for i, out in zip(ids, outputs, strict=True):
            mgr.append({"role": "tool", "tool_call_id": i, "content": out})
    elif kind == "anthropic_turn":
        _, index, thought, out, marked = step
        use = {"type": "tool_use", "id": f"toolu_{index}", "name": "read", "input": {"p": "a"}}
        said: dict[str, Any] = {"type": "text", "text": thought}
        if marked:  # the caller's own marker: stripped, the manager places its own
            said["cache_control"] = {"type": "ephemeral"}
        mgr.extend(
            [
                {"role": "assistant", "content": [said, use]},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": f"toolu_{index}", "content": out}
                    ],
                },
            ],
            format="anthropic",
        )
    elif kind == "system":
        mgr.set_system(step[1])
    elif kind == "set_tools":
        mgr.set_tools(TOOLS[: step[1]], planned=step[2])
    elif kind == "observe" and mgr.last_report is not None and mgr.last_report.billed is None:
        billed = round(mgr.last_report.input_tokens.tokens * step[1])
        mgr.observe_usage(Usage(input_tokens=max(billed, 1)))


def summary(mgr: ContextManager, body: dict[str, Any]) -> dict[str, Any]:
    """Everything one prepare decided, in comparable form."""
    report = mgr.last_report
    assert report is not None
    assert report.cache is not None
    cache = report.cache
    fp = cache.fingerprint
    bust = cache.prefix_change
    return {
        "body": json.dumps(body, ensure_ascii=False),
        "input": report.input_tokens,
        "fingerprint": (tuple(fp.chain), tuple(fp.cumulative), tuple(b.label for b in fp.blocks)),
        "breakpoints": cache.breakpoints,
        "prediction": cache.prediction,
        "predicted": report.predicted,
        "change": (bust.index, bust.label, bust.change, bust.lost_tokens) if bust else None,
        "planned": cache.planned,
        "records": [(r.strategy, r.tokens_before, r.tokens_after) for r in report.records],
        "busts": mgr.cache.busts,
    }


def pure_body(mgr: ContextManager, fmt: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """``body`` as the stateless converters write the view (the renderers' old code), with
    the same cache breakpoints placed."""
    items = list(mgr.view.items)
    if fmt == "openai_chat":
        return {**body, "messages": to_openai_chat(items)}
    if fmt != "anthropic":
        return None
    system, messages = to_anthropic(items)
    if messages and messages[0]["role"] != "user":
        messages.insert(0, {"role": "user", "content": LEADING_USER_NOTE})
    pure = {**body, "messages": messages}
    if system is not None:
        pure["system"] = system
    report = mgr.last_report
    assert report is not None
    assert report.cache is not None
    fp, marks = report.cache.fingerprint, report.cache.breakpoints
    return place_anthropic_breakpoints(pure, fp, marks) if mgr.cache.enabled else pure


def naive_clearable(mgr: ContextManager) -> int:
    counts = [
        mgr.accountant.counter.count_item(item).tokens
        for item in mgr.view.items
        if (item.tool_results or is_text_observation(item))
        and derived_kind(item.id) not in ("clear", "dedup", "digest")
    ]
    return sum(counts[: max(len(counts) - 3, 0)])


class NaiveCacheState:
    """The dict of live prefixes :class:`CacheState` keeps implicitly (the code it replaced)."""

    def __init__(self, rules: CacheRules) -> None:
        self.rules = rules
        self.expires: dict[str, float] = {}

    def plan(self, fp: Fingerprint, now: float, breakpoints: Sequence[int]) -> tuple[int, int]:
        state = CacheState(self.rules)  # the explicit mode is unchanged: reuse its arithmetic
        if self.rules.mode != "automatic" or not fp.blocks:
            state._expires = dict(self.expires)
            prediction = state.predict(fp, now=now, breakpoints=breakpoints)
            return prediction.read_tokens, prediction.write_tokens
        best = 0
        for index in range(len(fp.blocks) - 1, -1, -1):
            if self.expires.get(fp.chain[index], 0.0) > now:
                best = fp.cumulative[index]
                break
        if best < self.rules.min_tokens:
            return 0, 0
        return best - (best - self.rules.min_tokens) % self.rules.step_tokens, 0

    def commit(self, fp: Fingerprint, now: float, breakpoints: Sequence[int]) -> None:
        rules = self.rules
        if rules.mode == "none" or not fp.blocks:
            return
        self.expires = {k: t for k, t in self.expires.items() if t > now}
        seconds = next(iter(rules.ttl_seconds.values()))
        if rules.mode == "explicit":
            state = CacheState(rules)
            state._expires = dict(self.expires)
            state.commit(fp, now=now, breakpoints=breakpoints)
            self.expires = {k: t for k, t in state._expires.items() if t > now}
            return
        for index, tokens in enumerate(fp.cumulative):
            if tokens >= rules.min_tokens:
                self.expires[fp.chain[index]] = now + seconds


def shared(before: Sequence[Any] | None, after: Sequence[Any]) -> int:
    """How many leading entries of ``after`` are the very objects of ``before``."""
    n = 0
    for a, b in zip(before or (), after, strict=False):
        if a is not b:
            break
        n += 1
    return n


class Watch:
    """Checks what the writer says bodies share: never more than they do (the counter and
    the cache skip that much), and everything when the view only grew."""

    def __init__(self, mgr: ContextManager) -> None:
        self.writer, self.view = mgr._writer, mgr.view
        self.rendered: dict[str, tuple[list[Any], int, int]] = {}
        self.handed: dict[str, list[Any]] = {}
        self.latest: dict[str, list[Any]] = {}
        render, handed = self.writer.render, self.writer.handed

        def watched_render(provider: Any, *args: Any) -> dict[str, Any]:
            body = render(provider, *args)
            fmt = wire_format(provider)
            entries = body["input" if fmt == "openai_responses" else "messages"]
            before = self.rendered.get(fmt)
            stable = self.writer.stable
            assert stable <= shared(before[0] if before else None, entries)
            if before is not None and fmt != "openai_responses":
                old, epoch, size = before
                if self.view.epoch == epoch and len(self.view) >= size:  # only appends
                    assert stable >= len(old) - (fmt == "anthropic")
            self.rendered[fmt] = (entries, self.view.epoch, len(self.view))
            self.latest[fmt] = entries
            return body

        def watched_handed(fmt: Any) -> int:
            stable = handed(fmt)
            assert stable <= shared(self.handed.get(fmt), self.latest[fmt])
            self.handed[fmt] = self.latest[fmt]
            return stable

        self.writer.render = watched_render  # type: ignore[method-assign,assignment]
        self.writer.handed = watched_handed  # type: ignore[method-assign]


def run(mgr: ContextManager, provider: str) -> dict[str, Any] | None:
    try:
        body = mgr.prepare(provider)  # type: ignore[arg-type]
    except ContextOverflow:
        return None
    return body


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sessions())
def test_incremental_requests_equal_requests_built_from_scratch(
    session: tuple[str, str, int, list[tuple[Any, ...]]],
) -> None:
    model, policy, window, ops = session
    clock = Clock()
    config = {"context_window": window, "max_output_tokens": 1_000, "policy": policy}
    fast = ContextManager(model, clock=clock, **config)  # type: ignore[arg-type]
    slow = ContextManager(model, clock=clock, **config)  # type: ignore[arg-type]
    slow._writer.incremental = False
    Watch(fast)
    naive = NaiveCacheState(fast.cache.rules)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in ops:
            if step[0] != "prepare":
                feed(fast, step)
                feed(slow, step)
                continue
            _, provider, elapsed = step
            clock.now += elapsed
            body, reference = run(fast, provider), run(slow, provider)
            assert (body is None) == (reference is None)
            if body is None or reference is None:
                continue
            got, want = summary(fast, body), summary(slow, reference)
            assert got == want
            report = fast.last_report
            assert report is not None
            assert report.cache is not None
            fmt = wire_format(provider)
            pure = pure_body(fast, fmt, body)
            if pure is not None:
                assert json.dumps(body) == json.dumps(pure)
            sent = strip_cache_control(body) if fmt == "anthropic" else body
            request = read_request(sent, format=fmt)
            counter = fast.accountant.counter
            assert report.input_tokens == counter.count_request(request.items, request.tools)
            assert fast._compactor.clearable() == naive_clearable(fast)
            fp, marks = report.cache.fingerprint, report.cache.breakpoints
            prediction = report.cache.prediction
            assert (prediction.read_tokens, prediction.write_tokens) == naive.plan(
                fp, clock.now, marks
            )
            naive.commit(fp, clock.now, marks)
            assert fast.cache.state.is_warm(clock.now + 1) == any(
                t > clock.now + 1 for t in naive.expires.values()
            )
            assert (len(fast.cache.state) > 0) == bool(naive.expires)


def test_the_reference_writer_shares_nothing_between_bodies() -> None:
    mgr = ContextManager("gpt-4o", context_window=100_000)
    mgr._writer.incremental = False
    mgr.append({"role": "user", "content": "hello"})
    first = mgr.prepare()
    mgr.append({"role": "assistant", "content": "hi"})
    second = mgr.prepare()
    assert first["messages"][0] == second["messages"][0]
    assert first["messages"][0] is not second["messages"][0]


def test_unchanged_messages_are_shared_and_the_body_is_read_only() -> None:
    mgr = ContextManager("claude-sonnet-4-5", context_window=100_000)
    mgr.append({"role": "user", "content": "hello"})
    mgr.append({"role": "assistant", "content": "hi"})
    first = mgr.prepare("anthropic")
    mgr.append({"role": "user", "content": "more"})
    second = mgr.prepare("anthropic")
    assert second["messages"][0] is first["messages"][0]
    assert second["messages"] is not first["messages"]


# -- the view ------------------------------------------------------------------------------


def user(i: int) -> Item:
    return Item(id=f"u{i}", role="user", component=Component.HISTORY, parts=(TextPart(text="hi"),))


def call(i: int, *calls: str) -> Item:
    parts = tuple(ToolCallPart(id=c, name="bash", arguments="{}") for c in calls)
    return Item(id=f"a{i}", role="assistant", component=Component.HISTORY, parts=parts)


def result(call_id: str, suffix: str = "") -> Item:
    part = ToolResultPart(call_id=call_id, content=f"out {call_id}")
    return Item(
        id=f"r{call_id}{suffix}", role="tool", component=Component.TOOL_RESULTS, parts=(part,)
    )


@st.composite
def views_and_edits(draw: st.DrawFn) -> tuple[list[Item], list[Edit]]:
    """A conversation (possibly ending mid-call) and edits, some of which orphan."""
    items: list[Item] = []
    for turn in range(draw(st.integers(1, 8))):
        items.append(user(turn))
        ids = [f"c{turn}_{k}" for k in range(draw(st.integers(0, 3)))]
        if ids:
            items.append(call(turn, *ids))
            answered = draw(st.lists(st.sampled_from(ids), unique=True)) if turn else ids
            items.extend(result(c) for c in (ids if draw(st.booleans()) else answered))
    edits: list[Edit] = []
    pool = [i.id for i in items]
    for n in range(draw(st.integers(1, 3))):
        if not pool:
            break
        removed = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        pool = [i for i in pool if i not in removed]
        kind = draw(st.sampled_from(["hide", "summarize", "placeholder"]))
        insert: tuple[Item, ...] = ()
        if kind == "summarize":
            insert = (user(100 + n).with_(id=f"s{n}"),)
        elif kind == "placeholder":  # new results for the calls the removed results answered
            named = [p.call_id for i in items if i.id in removed for p in i.tool_results]
            insert = tuple(result(c, f"~{n}") for c in named)
        edits.append(Edit(kind=kind, remove=tuple(removed), insert=insert))  # type: ignore[arg-type]
    return items, edits


@settings(max_examples=300, deadline=None)
@given(views_and_edits(), st.integers(0, 4))
def test_view_apply_accepts_exactly_what_the_whole_view_rule_accepts(
    case: tuple[list[Item], list[Edit]], appended: int
) -> None:
    items, edits = case
    head, tail = items[: len(items) - appended], items[len(items) - appended :]
    view = View(head)
    view.position("warm the index")  # then kept up to date by appends and edits
    for item in tail:
        view.append(item)
    epoch = view.epoch
    try:
        expected: list[Item] | None = _apply_naively(items, edits)
    except UsageError:
        expected = None
    try:
        view.apply(edits)
    except UsageError:
        assert expected is None, "rejected an edit the whole-view rule accepts"
        assert list(view) == items
        assert view.epoch == epoch
        return
    assert expected is not None, "accepted an edit the whole-view rule rejects"
    assert list(view) == expected
    assert all(view.position(item.id) == n for n, item in enumerate(view))
    assert view.epoch == epoch + 1
    first = min(n for n, item in enumerate(items) for e in edits if item.id in e.remove)
    assert view.kept(epoch) == first
    assert all(a is b for a, b in zip(items[:first], view, strict=False))
    fresh = View(list(view))
    fresh.position("build the index")
    assert view._refs == fresh._refs


def _apply_naively(items: list[Item], edits: Sequence[Edit]) -> list[Item]:
    """Every edit in turn over the whole list, then the whole-view orphan rule."""
    out = list(items)
    for edit in edits:
        ids = [i.id for i in out]
        if len(set(edit.remove)) != len(edit.remove) or any(r not in ids for r in edit.remove):
            raise UsageError("edit removes items not in the view")
        if edit.insert and not edit.remove:
            raise UsageError("edit inserts items but removes none")
        anchor = min(ids.index(r) for r in edit.remove) if edit.remove else None
        kept = [i for i in out if i.id not in edit.remove]
        before = sum(1 for i in out[: anchor or 0] if i.id not in edit.remove)
        out = [*kept[:before], *edit.insert, *kept[before:]] if edit.remove else kept
    old, new = find_orphans(items), find_orphans(out)
    if set(new.calls_without_result) - set(old.calls_without_result) or set(
        new.results_without_call
    ) - set(old.results_without_call):
        raise UsageError("compaction would orphan tool calls; edit rejected")
    return out


def test_prefix_is_a_frozen_view_of_a_growing_list() -> None:
    items = [1, 2, 3]
    first = Prefix(items, 2)
    items.append(4)
    assert first == (1, 2)
    assert list(first) == [1, 2]
    assert first[-1] == 2
    assert first[:5] == (1, 2)
    assert hash(first) == hash((1, 2))
    with pytest.raises(IndexError):
        first[2]


# -- the cache state -----------------------------------------------------------------------


def synthetic(blocks: Sequence[tuple[str, int]]) -> Fingerprint:
    """(name, tokens) per block; equal names, equal prefixes."""
    made = tuple(Block(f"messages[{i}]", n, t, 1, n, i) for i, (n, t) in enumerate(blocks))
    chain = tuple("|".join(n for n, _ in blocks[: i + 1]) for i in range(len(blocks)))
    sums, total = [], 0
    for _, tokens in blocks:
        total += tokens
        sums.append(total)
    return Fingerprint(made, chain, tuple(sums))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 1500)), max_size=4),
            st.sampled_from([0, 1, 100, 299, 300, 301]),
        ),
        min_size=1,
        max_size=12,
    )
)
@example([([("a", 1100)], 0), ([("a", 500), ("b", 900)], 1), ([("a", 1100), ("a", 0)], 1)])
def test_automatic_cache_state_equals_the_dict_of_prefixes(
    requests: list[tuple[list[tuple[str, int]], int]],
) -> None:
    # the same names with other token counts stand for a recalibration between requests
    rules = CacheRules(mode="automatic", min_tokens=1024, step_tokens=128)
    state, naive, now = CacheState(rules), NaiveCacheState(rules), 0.0
    for blocks, elapsed in requests:
        now += elapsed
        fp = synthetic(blocks)
        prediction = state.predict(fp, now=now)
        assert (prediction.read_tokens, prediction.write_tokens) == naive.plan(fp, now, ())
        state.commit(fp, now=now)
        naive.commit(fp, now, ())
        assert (len(state) > 0) == bool(naive.expires)
        assert state.is_warm(now + 150) == any(t > now + 150 for t in naive.expires.values())


# -- what the writer says bodies share ------------------------------------------------------


def test_handed_counts_from_the_last_body_handed_on_across_render_passes() -> None:
    view = View([user(0), call(1, "c1"), result("c1"), user(2)])
    writer = RequestWriter(model="m", output_reserve=100, prompt_cache_key=None)
    first = writer.render("openai", view, (), {})["messages"]
    assert writer.handed("openai_chat") == 0
    view.apply([Edit(kind="hide", remove=("a1", "rc1"))])
    second = writer.render("openai", view, (), {})["messages"]  # a pass never handed on
    assert writer.stable == 1 == shared(first, second)
    view.append(user(3))
    third = writer.render("openai", view, (), {})["messages"]
    assert writer.stable == len(second) == shared(second, third)
    assert writer.handed("openai_chat") == 1 == shared(first, third)
    view.append(user(4))
    fourth = writer.render("openai", view, (), {})["messages"]
    assert writer.handed("openai_chat") == len(third) == shared(third, fourth)


def test_a_wrong_hint_is_caught_by_the_identity_guards() -> None:
    mgr = ContextManager("claude-sonnet-4-5", context_window=100_000)
    for n in range(6):
        mgr.append({"role": "user" if n % 2 == 0 else "assistant", "content": f"turn {n}"})
    body = mgr._writer.render("anthropic", mgr.view, (), {})
    verifier, counter = mgr._verifier, mgr.accountant.counter
    verifier.count(body, "anthropic")
    other = {**body, "messages": [{**m} for m in body["messages"]]}
    other["messages"][-1] = {"role": "user", "content": "something else entirely " * 20}
    request = read_request(other, format="anthropic")
    want = counter.count_request(request.items, request.tools)
    assert verifier.count(other, "anthropic", stable=len(body["messages"])) == want
    cache, fresh = mgr.cache, SessionCache(mgr.cache.rules, counter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the change is a cache bust
        cache.on_request(body, "anthropic", now=0, planned=False)
        sent, info = cache.on_request(other, "anthropic", now=1, planned=False, stable=5)
        fresh.on_request(body, "anthropic", now=0, planned=False)
        again, expected = fresh.on_request(other, "anthropic", now=1, planned=False)
    assert json.dumps(sent) == json.dumps(again)
    assert tuple(info.fingerprint.chain) == tuple(expected.fingerprint.chain)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_renderer_told_a_wrong_reuse_starts_over(provider: str) -> None:
    # the guard looks at the last item it is told to keep: the cheap check of the hint
    items = [user(0), call(1, "c1"), result("c1"), user(2)]
    others = [*items[:3], user(3)]
    writer = RequestWriter(model="m", output_reserve=100, prompt_cache_key=None)
    fresh = RequestWriter(model="m", output_reserve=100, prompt_cache_key=None)
    writer.render(provider, items, (), {})  # type: ignore[arg-type]
    if provider == "anthropic":
        body = writer._anthropic.render(others, model="m", max_tokens=100, reuse=4)
        assert writer._anthropic.stable == 0
    else:
        body = writer._openai.render(others, model="m", reuse=4)
        assert writer._openai.stable == 0
    want = fresh.render(provider, others, (), {})  # type: ignore[arg-type]
    assert body["messages"] == want["messages"]
