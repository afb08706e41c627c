"""Retention: reference extraction, the tracker's counting, its properties, and real sessions.

Unit tests pin the extraction rules and the used / kept bookkeeping on handmade sessions;
hypothesis checks the properties every view must satisfy (a share in [0, 1], the full
history keeps everything, an empty view nothing, a larger view never less); the real
traces check that full history scores 1.0 everywhere and observation masking loses some.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _sessions import trace_sessions
from _traces import requires_traces
from ctxbudget.session.items import (
    Component,
    Item,
    Role,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_text,
)
from ctxbudget.simulate import retention
from ctxbudget.simulate.baselines import full_history, mask_observations
from ctxbudget.simulate.retention import (
    Retention,
    RetentionTotals,
    RetentionTracker,
    references,
    retention_by_call,
)


def text(iid: str, body: str, role: Role = "user") -> Item:
    component = Component.SYSTEM if role == "system" else Component.HISTORY
    return Item(id=iid, role=role, component=component, parts=(TextPart(text=body),))


def said(iid: str, body: str) -> Item:
    return text(iid, body, role="assistant")


# --- extraction -------------------------------------------------------------------------


def test_paths_give_the_path_its_sub_paths_and_file_names() -> None:
    refs = references("edit `/testbed/astropy/wcs/sliced_wcs.py`, then run it")
    assert {
        "/testbed/astropy/wcs/sliced_wcs.py",
        "testbed/astropy/wcs/sliced_wcs.py",
        "astropy/wcs/sliced_wcs.py",
        "wcs/sliced_wcs.py",
        "sliced_wcs.py",
        "sliced_wcs",
        "testbed/astropy",
        "testbed/astropy/wcs",
    } <= refs
    assert "astropy" not in refs  # a plain word, even inside a path
    assert "wcs/sliced_wcs" not in refs  # runs reach an end of the path


def test_relative_and_directory_paths_are_normalised() -> None:
    assert "setup.py" in references("see ./setup.py.")
    assert "src/pkg" in references("under src/pkg/ there is")
    assert "foo/bar.py" in references("../foo/bar.py")


@pytest.mark.parametrize(
    "word",
    ["sliced_wcs", "__init__", "MAX_SIZE", "makeChild", "ValueError", "JSONDecodeError", "E501"],
)
def test_identifiers_are_references(word: str) -> None:
    assert word in references(f"the {word}: here")


@pytest.mark.parametrize(
    "word", ["the", "function", "Python", "THOUGHT", "DISCUSSION", "iPhone", "GitHub", "a_b"]
)
def test_plain_and_stop_words_are_not(word: str) -> None:
    assert references(f"{word} and more words") == frozenset()


def test_numbers_need_three_digits_or_a_decimal_point() -> None:
    refs = references("lines 12 to 1234 took 3.5 s on 127.0.0.1 (django-11138)")
    assert refs == {"1234", "3.5", "127.0.0.1", "11138"}


def test_dotted_names_give_their_runs_and_identifier_segments() -> None:
    refs = references("call np.linalg.norm and self._compute_x, e.g. x().shape")
    assert {"np.linalg.norm", "np.linalg", "linalg.norm", "self._compute_x", "_compute_x"} <= refs
    assert not {"e.g", "shape", ".shape", "self"} & refs


def test_json_escapes_in_tool_arguments_read_as_spaces() -> None:
    refs = references('bash({"command": "cat > repro_case.py\\nfoo_bar = 1\\tbaz_qux"})')
    assert {"repro_case.py", "foo_bar", "baz_qux"} <= refs
    assert "nfoo_bar" not in refs


def test_very_long_runs_are_data() -> None:
    assert references("a_b" + "x" * 300) == frozenset()


@given(st.text(), st.text())
def test_references_of_lines_are_the_union(first: str, second: str) -> None:
    joined = references(first + "\n" + second)
    assert joined == references(first) | references(second)
    assert references(first) == references(first)


# --- the tracker ------------------------------------------------------------------------


def test_background_references_are_not_counted_as_used() -> None:
    tracker = RetentionTracker()
    tracker.observe(text("s", "You may use foo_bar.py", "system"), background=True)
    tracker.observe(text("u", "Fix bug_in_task in pkg/mod.py"), background=True)
    assert tracker.score(said("a", "open pkg/mod.py and foo_bar.py"), []) is None


def test_seen_references_count_once_seen_outside_the_background() -> None:
    tracker = RetentionTracker()
    tracker.observe(text("u", "Fix pkg/mod.py"), background=True)
    tracker.observe(said("a0", "ls"))
    result = text("r", "line 120: ValueError in parse_line")
    tracker.observe(result)
    out = said("a1", "parse_line raises ValueError at line 120 of pkg/mod.py; see new_name")
    full = tracker.score(out, [result])
    # pkg/mod.py was only in the task, new_name never seen; 120 has three digits
    assert full == Retention(used=3, kept=3)
    assert full is not None
    assert full.share == 1.0
    none = tracker.score(out, [])
    assert none == Retention(used=3, kept=0, lost=frozenset({"parse_line", "ValueError", "120"}))
    assert none is not None
    assert none.share == 0.0


def test_output_may_be_observed_before_scoring() -> None:
    before, after = RetentionTracker(), RetentionTracker()
    seen = text("r", "value_one value_two")
    out = said("a", "value_one fresh_name")
    for tracker in (before, after):
        tracker.observe(seen)
    after.observe(out)
    assert before.score(out, [seen]) == after.score(out, [seen]) == Retention(1, 1)


def test_a_summary_keeps_the_references_it_names() -> None:
    tracker = RetentionTracker()
    old = text("r", "Traceback ... KeyError: 'x' in utils/cache.py line 4411")
    tracker.observe(old)
    summary = text("s1", "Summary: KeyError raised from utils/cache.py", "assistant")
    result = tracker.score(said("a", "KeyError again in utils/cache.py near 4411"), [summary])
    assert result == Retention(used=3, kept=2, lost=frozenset({"4411"}))


def test_a_string_view_is_scored_on_its_text() -> None:
    tracker = RetentionTracker()
    tracker.observe(text("r", "pkg/mod.py has parse_line"))
    out = said("a", "parse_line in pkg/mod.py")
    assert tracker.score(out, "see pkg/mod.py") == Retention(2, 1, frozenset({"parse_line"}))
    assert tracker.score(out, "") == Retention(2, 0, frozenset({"parse_line", "pkg/mod.py"}))


def test_substring_fallback_needs_clean_edges() -> None:
    tracker = RetentionTracker()
    tracker.observe(text("r", "look at wcsapi/wrappers now, also foo_bar"))
    out = said("a", "wcsapi/wrappers and foo_bar")
    view = [text("v", "astropy/wcsapi/wrappers/sliced.py and foo_bar_baz")]
    assert tracker.score(out, view) == Retention(2, 1, frozenset({"foo_bar"}))


def test_each_item_version_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = retention.references

    def counting(value: str) -> frozenset[str]:
        calls.append(value)
        return original(value)

    monkeypatch.setattr(retention, "references", counting)
    items = tool_session(30)
    retention_by_call(items, full_history)
    assert len(calls) == len(items)  # the background too, when a view shows it
    calls.clear()
    retention_by_call(items, lambda history: mask_observations(history, keep_last=2))
    # every item once, plus each masked result once more (its placeholder version)
    assert len(calls) == len(items) + 28


def test_totals_weight_by_references_not_calls() -> None:
    totals = RetentionTotals.of([Retention(1, 1), None, Retention(9, 0)])
    assert totals == RetentionTotals(used=10, kept=1, calls=2)
    assert totals.share == pytest.approx(0.1)
    assert RetentionTotals().share is None
    assert totals + totals == RetentionTotals(20, 2, 4)
    assert Retention(0, 0).share is None


# --- properties -------------------------------------------------------------------------

VOCAB = [
    "pkg/mod.py",
    "mod.py",
    "parse_line",
    "ValueError",
    "1234",
    "3.14",
    "np.linalg.norm",
    "the",
    "file",
    "E501",
    "tests/test_mod.py",
    "make_thing",
]
texts = st.lists(st.sampled_from(VOCAB), max_size=8).map(" ".join)


def tool_session(n: int) -> list[Item]:
    items = [text("sys", "system prompt", "system"), text("task", "Fix parse_line in pkg/mod.py")]
    for k in range(n):
        call = ToolCallPart(id=f"c{k}", name="bash", arguments=f'{{"cmd": "cat f{k}_mod.py"}}')
        items.append(Item(id=f"a{k}", role="assistant", component=Component.HISTORY, parts=(call,)))
        result = ToolResultPart(call_id=f"c{k}", content=f"line_{k} = {1000 + k}\nvalue_{k}")
        items.append(
            Item(id=f"t{k}", role="tool", component=Component.TOOL_RESULTS, parts=(result,))
        )
    items.append(said("end", " ".join(f"line_{k} value_{k}" for k in range(n))))
    return items


def scored(
    history: Sequence[str], output: str, view: Sequence[int]
) -> tuple[Retention | None, ...]:
    tracker = RetentionTracker()
    items = [text(f"i{n}", body) for n, body in enumerate(history)]
    for n, item in enumerate(items):
        tracker.observe(item, background=n == 0)
    out = said("out", output)
    chosen = [items[n] for n in sorted(set(view)) if n < len(items)]
    return (
        tracker.score(out, chosen),
        tracker.score(out, items),
        tracker.score(out, []),
        tracker.score(out, "\n".join(item_text(i) for i in chosen)),
    )


@settings(max_examples=200)
@given(st.lists(texts, min_size=1, max_size=6), texts, st.lists(st.integers(0, 5)))
def test_shares_are_bounded_full_keeps_all_empty_keeps_none(
    history: list[str], output: str, view: list[int]
) -> None:
    some, full, empty, as_text = scored(history, output, view)
    if full is None:
        assert some is empty is as_text is None
        return
    assert full.share == 1.0
    assert empty is not None
    assert empty.share == 0.0
    assert some is not None
    assert some.share is not None
    assert 0.0 <= some.share <= 1.0
    assert some.used == full.used == empty.used
    assert as_text == some  # items or their text: the same answer
    assert empty.kept <= some.kept <= full.kept  # a larger view never keeps less


# --- real sessions ----------------------------------------------------------------------


@requires_traces
def test_real_sessions_full_history_keeps_everything_and_masking_loses_some() -> None:
    full_total, masked_total = RetentionTotals(), RetentionTotals()
    dropped = 0
    for session in trace_sessions():
        name, items = session.name, session.items
        full = RetentionTotals.of(retention_by_call(items, full_history))
        masked = RetentionTotals.of(retention_by_call(items, mask_observations))
        assert full.share in (None, 1.0), name
        assert masked.used == full.used, name
        assert masked.kept <= full.kept, name
        dropped += masked.kept < full.kept
        full_total, masked_total = full_total + full, masked_total + masked
    assert full_total.used > 10_000
    assert full_total.share == 1.0
    assert masked_total.share is not None
    assert masked_total.share < 1.0
    assert dropped >= 20
