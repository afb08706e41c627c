"""Line retention: a used reference is line-kept when a whole earlier line naming it is still
in the view verbatim.

The definition (``RetentionTracker.score``): of the references the output uses (seen
before outside the background), those for which a stripped line of a non-background item
observed before the output, naming the reference and longer than it by more than 8
characters, is a stripped line of some item in the view; when no such line exists,
presence counts. Unit tests pin each clause on handmade sessions; hypothesis checks that
line-kept never exceeds kept, the full history line-keeps everything, an empty view
nothing, a larger view never less, and items or their text give the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _sessions import trace_sessions
from _traces import requires_traces
from ctxbudget.session.items import Item, item_text
from ctxbudget.simulate import retention
from ctxbudget.simulate.baselines import full_history, mask_observations
from ctxbudget.simulate.retention import (
    Retention,
    RetentionTotals,
    RetentionTracker,
    references,
    retention_by_call,
)
from test_retention import said, text


def scored(tracker: RetentionTracker, output: str, view: Sequence[Item]) -> Retention:
    """The score of ``output`` over ``view``, given both as items and as their text."""
    out = said("out", output)
    as_items = tracker.score(out, view)
    as_text = tracker.score(out, "\n".join(item_text(item) for item in view))
    assert as_items is not None
    assert as_text == as_items
    assert as_text is not None
    assert as_text.line_kept == as_items.line_kept
    return as_items


# --- the definition, clause by clause ---------------------------------------------------


def test_a_line_still_in_the_view_verbatim_is_line_kept() -> None:
    tracker = RetentionTracker()
    line = "def parse_line(text): return text.split(',')"
    read = text("r", f"cat src/mod.py\n    {line}\n")
    tracker.observe(read)
    # a later, shorter copy (another item, another indentation) still holds the line
    excerpt = text("x", f"excerpt:\n{line}   \n[120 lines cut]")
    result = scored(tracker, "parse_line splits on commas", [excerpt])
    assert (result.used, result.kept, result.line_kept) == (1, 1, 1)
    assert result.line_share == 1.0


def test_a_bare_mention_in_a_digest_is_kept_but_not_line_kept() -> None:
    tracker = RetentionTracker()
    tracker.observe(text("r", "Created foo_bar.py with the CSV reader and its tests\nok"))
    out = "now run foo_bar.py"
    for digest in (text("d", "names: foo_bar.py, baz"), text("r", "names: foo_bar.py, baz")):
        result = scored(tracker, out, [digest])  # another item, or a new version of the same
        assert (result.used, result.kept, result.line_kept) == (1, 1, 0)
        assert result.share == 1.0
        assert result.line_share == 0.0
        assert result.lost == frozenset()


def test_without_a_line_long_enough_presence_counts() -> None:
    # foo_bar.py has 10 characters: a line counts from 19 (more than 10 + 8)
    for line, counts in [
        ("foo_bar.py", False),
        ("foo_bar.py abcdefg", False),  # 18: exactly 8 more, not more than 8
        ("foo_bar.py abcdefgh", True),  # 19
    ]:
        tracker = RetentionTracker()
        tracker.observe(text("r", f"{line}\nok"))
        result = scored(tracker, "edit foo_bar.py", [text("d", "names: foo_bar.py, baz")])
        assert (result.kept, result.line_kept) == (1, 0 if counts else 1), line
        gone = scored(tracker, "edit foo_bar.py", [text("e", "nothing here")])
        assert (gone.kept, gone.line_kept) == (0, 0), line  # presence counts: lost is lost


def test_a_line_counts_only_for_the_references_it_names() -> None:
    tracker = RetentionTracker()
    # ``wcsapi/wrappers`` is in this line only as a substring of a longer path's middle
    tracker.observe(text("r", "look at astropy/wcsapi/wrappers/base.py for the base class"))
    tracker.observe(text("s", "wcsapi/wrappers"))
    result = scored(tracker, "wcsapi/wrappers again", [text("d", "see wcsapi/wrappers")])
    assert (result.used, result.kept, result.line_kept) == (1, 1, 1)


def test_background_lines_never_count_as_earlier_lines() -> None:
    tracker = RetentionTracker()
    task = text("task", "Please fix the crash in foo_bar.py when parsing empty files")
    tracker.observe(text("sys", "You are a careful engineer.", "system"), background=True)
    tracker.observe(task, background=True)
    tracker.observe(said("a0", "ls"))
    tracker.observe(text("r", "foo_bar.py"))  # seen outside the background, alone
    result = scored(tracker, "foo_bar.py is the one", [text("d", "names: foo_bar.py")])
    assert (result.used, result.kept, result.line_kept) == (1, 1, 1)  # no line counts
    # a line observed later outside the background counts, and only the view's copy helps
    line = "foo_bar.py: the parser, 200 lines long"
    tracker.observe(text("r2", line))
    assert scored(tracker, "foo_bar.py", [task]).line_kept == 0  # kept by the task only
    assert scored(tracker, "foo_bar.py", [task, text("c", line)]).line_kept == 1


def test_only_lines_observed_before_the_output_count() -> None:
    tracker = RetentionTracker()
    tracker.observe(text("r", "foo_bar.py"))
    out = said("out", "edit foo_bar.py")
    tracker.observe(out)
    tracker.observe(text("later", "foo_bar.py was edited by the agent just now"))
    result = tracker.score(out, [text("d", "names: foo_bar.py")])
    assert result is not None
    assert (result.used, result.kept, result.line_kept) == (1, 1, 1)


def test_substring_kept_references_follow_the_same_rule() -> None:
    tracker = RetentionTracker()
    tracker.observe(text("r", "look at wcsapi/wrappers now, also foo_bar"))
    view = [text("v", "astropy/wcsapi/wrappers/sliced.py and foo_bar_baz")]
    result = scored(tracker, "wcsapi/wrappers and foo_bar", view)
    assert (result.used, result.kept, result.line_kept) == (2, 1, 0)
    assert result.lost == frozenset({"foo_bar"})


def test_each_distinct_line_is_scanned_once_and_scoring_scans_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scanned: list[str] = []
    original = retention._line_references

    def counting(line: str) -> tuple[str, ...]:
        scanned.append(line)
        return original(line)

    monkeypatch.setattr(retention, "_line_references", counting)
    repeated = "parse_line = make_parser(config_value)"
    history = [text("task", f"Fix parse_line\n{repeated}"), said("a0", "cat mod.py")]
    history += [
        text(f"r{k}", f"{repeated}\nvalue_{k} = {1000 + k} # the line {k}") for k in range(20)
    ]
    tracker = RetentionTracker()
    for n, item in enumerate(history):
        tracker.observe(item, background=n == 0)
    assert sorted(scanned) == sorted(
        {repeated, *(f"value_{k} = {1000 + k} # the line {k}" for k in range(20))}
    )
    scanned.clear()
    for _ in range(3):
        tracker.score(said("out", "parse_line and value_3 and 1007"), history)
    assert scanned == []


@given(st.text())
def test_a_lines_scan_finds_its_references(line: str) -> None:
    assert set(retention._line_references(line)) == references(line)
    escaped = line.replace("\n", "\\n")  # a tool call's JSON arguments, on one line
    assert set(retention._line_references(escaped)) == references(escaped)


# --- totals -------------------------------------------------------------------------------


def test_totals_sum_line_kept_and_weight_by_references() -> None:
    scores = [Retention(4, 3, line_kept=2), None, Retention(6, 6, line_kept=1), Retention(0, 0)]
    totals = RetentionTotals.of(scores)
    assert totals == RetentionTotals(used=10, kept=9, calls=2, line_kept=3)
    assert totals.share == pytest.approx(0.9)
    assert totals.line_share == pytest.approx(0.3)
    assert totals + totals == RetentionTotals(20, 18, 4, 6)
    assert RetentionTotals().add(scores[0]).add(scores[2]) == totals
    assert RetentionTotals().line_share is None
    assert Retention(0, 0).line_share is None


def test_line_kept_left_out_means_kept() -> None:
    assert Retention(5, 3).line_kept == 3
    assert RetentionTotals(5, 3, 1).line_kept == 3
    assert RetentionTotals.of([Retention(5, 3)]) == RetentionTotals(5, 3, 1)
    # a score still equals the Retention(used, kept, lost) built by hand
    assert Retention(5, 3, line_kept=1) == Retention(5, 3)


# --- properties -------------------------------------------------------------------------

WORDS = [
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
    "   ",
]
lines = st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join)
bodies = st.lists(lines, min_size=1, max_size=4).map("\n".join)


def digest(body: str) -> str:
    """What a digest keeps of a text: its references, as a bare list."""
    return "names: " + ", ".join(sorted(references(body)))


def by_the_definition(seen: Sequence[str], output: str, view: str) -> tuple[int, int, int]:
    """Used, kept and line-kept straight from the definition, rescanning everything."""
    offered: frozenset[str] = frozenset().union(*map(references, seen))
    used: set[str] = set()
    for forms, _ in retention._scan(output):
        used.update(next(([form] for form in forms if form in offered), []))
    earlier = {line.strip() for body in seen for line in body.splitlines()}
    shown = {line.strip() for line in view.splitlines()}
    kept = line_kept = 0
    for ref in used:
        if ref in references(view) or retention._occurs(ref, view):
            kept += 1
            counting = [s for s in earlier if len(s) > len(ref) + 8 and ref in references(s)]
            line_kept += not counting or any(line in shown for line in counting)
    return len(used), kept, line_kept


@settings(max_examples=300)
@given(
    st.lists(bodies, min_size=1, max_size=6),
    lines,
    st.lists(st.integers(0, 5)),
    st.lists(st.integers(0, 5)),
)
def test_line_kept_is_bounded_by_kept_full_keeps_all_larger_views_keep_more(
    history: list[str], output: str, shown: list[int], digested: list[int]
) -> None:
    tracker = RetentionTracker()
    items = [text(f"i{n}", body) for n, body in enumerate(history)]
    for n, item in enumerate(items):
        tracker.observe(item, background=n == 0)
    out = said("out", output)
    chosen = [items[n] for n in sorted(set(shown)) if n < len(items)]
    digests = [text(f"d{n}", digest(history[n])) for n in sorted(set(digested)) if n < len(items)]
    views: list[Sequence[Item]] = [[], chosen, chosen + digests, items]
    results = [tracker.score(out, view) for view in views]
    if results[-1] is None:
        assert all(result is None for result in results)
        return
    empty, some, more, full = (r for r in results if r is not None)
    for result, view in zip((empty, some, more, full), views, strict=True):
        assert 0 <= result.line_kept <= result.kept <= result.used
        as_text = tracker.score(out, "\n".join(item_text(item) for item in view))
        assert as_text is not None
        assert as_text.line_kept == result.line_kept
        seen = history[1:]  # all but the background, all observed before the output
        expected = by_the_definition(seen, output, "\n".join(item_text(i) for i in view))
        assert (result.used, result.kept, result.line_kept) == expected
    assert full.line_kept == full.used  # the untouched history line-keeps everything
    assert full.line_share == 1.0
    assert empty.line_kept == 0
    assert empty.line_kept <= some.line_kept <= more.line_kept <= full.line_kept


# --- real sessions ----------------------------------------------------------------------


@requires_traces
def test_real_sessions_full_history_line_keeps_everything_and_masking_less() -> None:
    full_total, masked_total = RetentionTotals(), RetentionTotals()
    for session in trace_sessions():
        name, items = session.name, session.items
        full = RetentionTotals.of(retention_by_call(items, full_history))
        masked = RetentionTotals.of(retention_by_call(items, mask_observations))
        assert full.line_kept == full.kept == full.used, name
        assert masked.line_kept <= masked.kept, name
        full_total, masked_total = full_total + full, masked_total + masked
    assert full_total.line_share == 1.0
    assert masked_total.line_share is not None
    assert masked_total.share is not None
    assert masked_total.line_share <= masked_total.share < 1.0
