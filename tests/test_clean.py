"""The clean strategy (door compaction): each stage on realistic tool outputs, then the
whole strategy on items — bounds, recall pointers, pairing, flags, idempotence.

The outputs are written here by hand to look like the real thing: a pip install with a
rich progress bar redrawn on one line, an npm install redrawn with cursor moves, a wget
log, a pytest run of 202 tests with two failures, a ``find .`` of 400 files, a JSON API
answer of 500 objects and a 3,000-line Python module that no recogniser may touch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.compaction.strategies import clean
from ctxbudget.compaction.strategies._shapes import recognise
from ctxbudget.compaction.strategies.base import CompactionInput, derived_id
from ctxbudget.compaction.strategies.clean import (
    CleanConfig,
    clean_text,
    collapse_repeats,
    cut_middle,
    render_terminal,
    trim_structure,
)
from ctxbudget.errors import ConfigError
from ctxbudget.session.exchanges import assign_exchanges
from ctxbudget.session.items import (
    Component,
    ComponentKind,
    ImagePart,
    Item,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    item_text,
)
from ctxbudget.session.log import Edit
from ctxbudget.session.view import View
from ctxbudget.tokens import TiktokenTokenizer, TokenCounter

O200K = TiktokenTokenizer.load("o200k_base")
COUNTER = TokenCounter(O200K, "openai")
CONFIG = CleanConfig(max_tokens=1000, tokenizer=O200K)

# -- realistic outputs -------------------------------------------------------------------


def pip_install() -> str:
    redraws = []
    for i in range(0, 101, 2):
        bar, rest = "━" * (i * 40 // 100), "━" * (40 - i * 40 // 100)
        redraws.append(
            f"     \x1b[38;2;249;38;114m{bar}\x1b[0m\x1b[38;5;237m{rest}\x1b[0m "
            f"\x1b[32m{18.2 * i / 100:.1f}/18.2 MB\x1b[0m \x1b[31m{3.1 + i / 50:.1f} MB/s"
            f"\x1b[0m eta \x1b[36m0:00:{(100 - i) // 10:02d}\x1b[0m"
        )
    lines = [
        "Collecting numpy==1.26.4",
        "  Downloading numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl (18.2 MB)",
        "\r".join(redraws) + "\r",
        "Installing collected packages: numpy",
        "Successfully installed numpy-1.26.4",
        "\x1b[1;33mWARNING: Running pip as the 'root' user can result in broken permissions."
        "\x1b[0m",
    ]
    return "\r\n".join(lines) + "\r\n"


def npm_install() -> str:
    spin = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    body = "".join(
        f"\x1b[2K\x1b[1G\x1b[90m{spin[i % 10]}\x1b[0m \x1b[36mreify:lodash\x1b[0m: "
        f"\x1b[90mtiming\x1b[0m reifyNode:node_modules/lodash Completed in {i * 7}ms"
        for i in range(120)
    )
    return (
        body + "\x1b[2K\x1b[1G\nadded 312 packages, and audited 313 packages in 9s\n\n"
        "\x1b[1m41\x1b[22m packages are looking for funding\n  run `npm fund` for details\n\n"
        "found \x1b[32m\x1b[1m0\x1b[22m\x1b[39m vulnerabilities\n"
    )


def wget_log() -> str:
    lines = ["--2024-05-01 10:00:00--  https://example.com/big.tar.gz", "Saving to: 'big.tar.gz'"]
    lines += [
        f"big.tar.gz  {i:3d}%[{'=' * (i // 5)}>{' ' * (20 - i // 5)}]  {i * 1.3:.1f}M  "
        f"{2 + i % 7}.1MB/s"
        for i in range(101)
    ]
    lines.append("2024-05-01 10:00:42 (3.1 MB/s) - 'big.tar.gz' saved [134217728/134217728]")
    return "\n".join(lines)


FAILING = (57, 143)


def pytest_run(passing: int = 200) -> str:
    total = passing + len(FAILING)
    modules = ["test_parser", "test_lexer", "test_errors", "test_render", "test_cli"]
    names = [f"tests/{modules[i * 5 // total]}.py::test_case_{i}" for i in range(total)]
    lines = [
        "=" * 29 + " test session starts " + "=" * 30,
        "platform linux -- Python 3.11.8, pytest-8.1.1, pluggy-1.4.0 -- /usr/bin/python3",
        "rootdir: /repo",
        "configfile: pyproject.toml",
        f"collected {total} items",
        "",
    ]
    for i, name in enumerate(names):
        status = "FAILED" if i in FAILING else "PASSED"
        lines.append(f"{name} {status}{' ' * max(1, 60 - len(name))}[{(i + 1) * 100 // total:3d}%]")
    lines += ["", "=" * 35 + " FAILURES " + "=" * 35]
    for i in FAILING:
        lines += [
            f"{'_' * 32} test_case_{i} {'_' * 32}",
            "",
            f"    def test_case_{i}():",
            "        tokens = lex('a + b')",
            "        tree = parse(tokens)",
            f">       assert tree.kind == 'binop{i}'",
            f"E       AssertionError: assert 'binop' == 'binop{i}'",
            f"E         + binop{i}",
            "",
            f"tests/test_parser.py:{i + 10}: AssertionError",
        ]
    lines.append("=" * 27 + " short test summary info " + "=" * 28)
    lines += [f"FAILED {names[i]} - AssertionError: assert 'binop' == 'binop{i}'" for i in FAILING]
    lines.append(f"{'=' * 24} 2 failed, {passing} passed in 3.21s {'=' * 24}")
    return "\n".join(lines) + "\n"


DIRS = ("./src/app", "./src/app/models", "./src/app/views", "./tests", "./docs/api", "./img")


def find_output(files: int = 400) -> str:
    lines = ["."]
    for d in DIRS:
        lines.append(d)
        lines += [f"{d}/file_{i:03d}.py" for i in range(files // len(DIRS))]
    lines += [f"./README_{i}.md" for i in range(files - files // len(DIRS) * len(DIRS))]
    return "\n".join(lines) + "\n"


def json_answer(n: int = 500) -> str:
    rows = [
        {"id": i, "name": f"user{i}", "roles": ["reader", "writer"] if i % 3 else ["admin"]}
        for i in range(n)
    ]
    return json.dumps({"count": n, "results": rows}, indent=2)


def python_module(lines: int = 3000) -> str:
    out = ['"""Errors, asserts and failures in the names, but source code all the same."""', ""]
    i = 0
    while len(out) < lines:
        out += [
            "",
            "",
            f"class Handler{i}(Exception):",
            f'    """Raised when step {i} fails; see the error log."""',
            "",
            "    def run(self, value: int) -> int:",
            f"        assert value >= {i}, 'value too small'",
            "        try:",
            f"            return value * {i} // (value - {i})",
            "        except ZeroDivisionError as error:",
            f"            raise ValueError('failed at {i}') from error",
            "",
            f"def test_handler_{i}() -> None:",
            f"    assert Handler{i}().run({i + 1}) == {i * (i + 1)}",
        ]
        i += 1
    return "\n".join(out[:lines]) + "\n"


# -- building views ----------------------------------------------------------------------


def count(item: Item) -> int:
    return COUNTER.count_item(item).tokens


def exchange(n: int, content: Any, **flags: Any) -> list[Item]:
    call = ToolCallPart(id=f"c{n}", name="bash", arguments=json.dumps({"cmd": "run"}))
    part = ToolResultPart(call_id=f"c{n}", content=content)
    return [
        Item(id=f"a{n}", role="assistant", component=Component.HISTORY, parts=(call,)),
        Item(id=f"r{n}", role="tool", component=Component.TOOL_RESULTS, parts=(part,), **flags),
    ]


def view_of(items: Sequence[Item], **kw: Any) -> CompactionInput:
    return CompactionInput(items=tuple(assign_exchanges(items)), count=count, need=0, **kw)


def applied(view: CompactionInput, edits: Sequence[Edit]) -> list[Item]:
    out = View(view.items)
    out.apply(edits)
    return list(out.items)


def result_text(item: Item) -> str:
    content = item.tool_results[0].content
    assert isinstance(content, str)
    return content


def run_one(content: Any, config: CleanConfig = CONFIG) -> tuple[str, Edit]:
    view = view_of(
        [
            Item(id="u0", role="user", component=Component.HISTORY, parts=(TextPart(text="go"),)),
            *exchange(1, content),
        ]
    )
    (edit,) = clean.propose(config, view)
    return result_text(edit.insert[0]), edit


# -- stage 1: terminal rendering and repeats ---------------------------------------------


def test_pip_progress_bar_becomes_its_final_state() -> None:
    out = clean_text(pip_install())
    assert "\x1b" not in out
    assert "\r" not in out
    progress = [line for line in out.splitlines() if "MB/s" in line]
    assert progress == ["     " + "━" * 40 + " 18.2/18.2 MB 5.1 MB/s eta 0:00:00"]
    assert out.splitlines()[-1] == (
        "WARNING: Running pip as the 'root' user can result in broken permissions."
    )
    assert O200K.count(out) * 20 < O200K.count(pip_install())


def test_npm_cursor_redraws_keep_the_last_frame() -> None:
    out = clean_text(npm_install())
    assert out.splitlines()[0] == (
        "⠏ reify:lodash: timing reifyNode:node_modules/lodash Completed in 833ms"
    )
    assert "found 0 vulnerabilities" in out
    assert "41 packages are looking for funding" in out


def test_other_escapes_overstrikes_and_controls() -> None:
    link = "\x1b]8;;https://example.com\x1b\\docs\x1b]8;;\x1b\\"
    assert render_terminal(f"{link} \x1b(Bok\x1b)0\x07\x00") == "docs ok"
    assert render_terminal("N\bNA\bAM\bME\bE and _\bb_\bo_\bl_\bd") == "NAME and bold"
    assert render_terminal("a\r\nb\r\r\nc") == "a\nb\nc"
    assert render_terminal("50%\r75%\r100%\r\ndone") == "100%\ndone"
    assert render_terminal("tab\there\fform") == "tab\there\fform"


def test_identical_lines_collapse_with_a_count() -> None:
    text = "start\n" + "Waiting for lock on /var/lib/dpkg...\n" * 42 + "end"
    assert collapse_repeats(text) == (
        "start\nWaiting for lock on /var/lib/dpkg...\n[… previous line repeated 41 more times]\nend"
    )
    assert collapse_repeats("x\nx\ny") == "x\nx\ny"  # two lines: nothing to gain


def test_progress_lines_collapse_to_first_and_last() -> None:
    lines = clean_text(wget_log()).splitlines()
    assert lines[2].startswith("big.tar.gz    0%[>")
    assert lines[3] == "[… 98 similar lines omitted]"
    assert lines[4].startswith("big.tar.gz   99%[===================> ]")
    assert lines[5].startswith("big.tar.gz  100%[====================>]")  # a full bar differs
    assert lines[6].endswith("saved [134217728/134217728]")


def test_data_and_failures_are_not_progress() -> None:
    rows = "\n".join(f"Row {i}: {i * 0.37:.2f} {i * 1.91:.2f}" for i in range(30))
    assert collapse_repeats(rows) == rows
    failed = "\n".join(f"FAILED tests/test_a.py::test_x[{i}] [{i}%]" for i in range(30))
    assert collapse_repeats(failed) == failed


# -- stage 2: structure ------------------------------------------------------------------


def test_json_arrays_keep_head_and_tail_and_stay_valid() -> None:
    text = json_answer()
    out = trim_structure(text, keep=3, ref="m12")
    data = json.loads(out)
    assert data["count"] == 500
    assert [r["id"] for r in data["results"] if isinstance(r, dict)] == [0, 1, 2, 499]
    assert data["results"][3] == '… 496 more items; full output: recall("m12")'
    assert trim_structure(json_answer(4), keep=3) == json_answer(4)  # short arrays: as is
    assert O200K.count(out) * 40 < O200K.count(text)


def test_find_listing_keeps_every_directory() -> None:
    text = find_output()
    assert recognise(text) == "listing"
    out = trim_structure(text, keep=3)
    for d in DIRS:
        assert f"{d}/file_000.py" in out
    assert "[… 63 more entries in ./src/app/]\n./src/app/models\n" in out  # a subdirectory last
    for d in DIRS[1:]:
        assert f"[… 62 more entries in {d}/]\n{d}/file_065.py\n" in out
    assert out.endswith("./README_3.md\n")
    assert O200K.count(out) * 8 < O200K.count(text)


def test_tree_and_ls_listings() -> None:
    tree = "\n".join(
        [".", "├── src"] + [f"│   ├── mod_{i}.py" for i in range(40)] + ["└── setup.py", ""]
    )
    out = trim_structure(tree, keep=2)
    assert "│   ├── [… 37 more entries]" in out
    assert "│   ├── mod_39.py" in out
    assert out.endswith("└── setup.py\n")
    ls = "total 912\n" + "\n".join(
        f"-rw-r--r--  1 root root  {100 + i} Sep 10  2025 file_{i}.txt" for i in range(60)
    )
    assert recognise(ls) == "listing"
    out = trim_structure(ls, keep=8)
    assert "file_7.txt\n[… 50 more entries]\n-rw-r--r--  1 root root  158" in out


def test_pytest_log_keeps_failures_and_summaries() -> None:
    text = pytest_run()
    assert recognise(text) == "log"
    out = trim_structure(text, keep=3)
    for i in FAILING:
        assert f"tests/test_lexer.py::test_case_{i} FAILED" in out or f"test_case_{i} FAILED" in out
        assert f"E       AssertionError: assert 'binop' == 'binop{i}'" in out
        assert f">       assert tree.kind == 'binop{i}'" in out
        assert f"    def test_case_{i}():" in out  # the failure report, whole
    assert "collected 202 items" in out
    assert "2 failed, 200 passed in 3.21s" in out
    assert "short test summary info" in out
    assert "passing lines omitted]" in out
    assert "PASSED" not in out.replace("test_case_56 PASSED", "").replace("_58 PASSED", "")
    assert O200K.count(out) * 4 < O200K.count(text)


@pytest.mark.parametrize(
    ("log", "kept"),
    [
        (
            "\n".join(
                [f"test_case_{i} (tests.TestX) ... ok" for i in range(30)]
                + ["test_bad (tests.TestX) ... FAIL", "", "=" * 70]
                + ["FAIL: test_bad (tests.TestX)", "-" * 70, "Traceback (most recent call last):"]
                + ['  File "/repo/tests.py", line 9, in test_bad', "AssertionError: 1 != 2"]
                + ["-" * 70, "Ran 31 tests in 0.012s", "", "FAILED (failures=1)"]
            ),
            [
                "test_bad (tests.TestX) ... FAIL",
                "Ran 31 tests in 0.012s",
                "FAILED (failures=1)",
                '  File "/repo/tests.py", line 9, in test_bad',
                "AssertionError: 1 != 2",
            ],
        ),
        (
            "\n".join(
                [f"=== RUN   TestCase{i}\n--- PASS: TestCase{i} (0.00s)" for i in range(20)]
                + ["=== RUN   TestBad", "    bad_test.go:12: got 1, want 2"]
                + ["--- FAIL: TestBad (0.00s)", "FAIL", "FAIL\texample.com/pkg\t0.004s"]
                + ["ok  \texample.com/other\t0.002s"]
            ),
            [
                "--- FAIL: TestBad (0.00s)",
                "FAIL\texample.com/pkg\t0.004s",
                "ok  \texample.com/other\t0.002s",
                "    bad_test.go:12: got 1, want 2",
            ],
        ),
        (
            "\n".join(
                ["running 25 tests"]
                + [f"test tests::case_{i} ... ok" for i in range(24)]
                + ["test tests::bad ... FAILED", "", "failures:", "", "---- tests::bad stdout ----"]
                + ["thread 'tests::bad' panicked at src/lib.rs:9:5:", "assertion failed: x == 2"]
                + ["", "test result: FAILED. 24 passed; 1 failed; 0 ignored; finished in 0.00s"]
            ),
            [
                "test tests::bad ... FAILED",
                "assertion failed: x == 2",
                "test result: FAILED. 24 passed; 1 failed; 0 ignored; finished in 0.00s",
            ],
        ),
    ],
    ids=["unittest", "go", "cargo"],
)
def test_other_test_runners_keep_failures_and_summaries(log: str, kept: list[str]) -> None:
    assert recognise(log) == "log"
    out = trim_structure(log, keep=1)
    assert len(out) < len(log)
    for line in kept:
        assert line in out.splitlines()
    assert "passing lines omitted]" in out


def test_source_code_passes_stages_one_and_two_unchanged() -> None:
    source = python_module()
    assert recognise(source) is None
    assert clean_text(source) == source
    for keep in (1, 3, 8, 256):
        assert trim_structure(source, keep=keep) == source


def test_pathological_inputs_stay_fast() -> None:
    deep = "[" * 600 + ",".join(["1"] * 20) + "]" * 600  # deeper than Python recurses
    assert trim_structure(deep, keep=1) == deep
    hard = [
        "\n".join([" " * 200 + "x"] * 20 + ["collected 3 items"]),  # nested-quantifier bait
        "1" * 50_000 + "/",
        "x " + "F" * 50_000 + "y",
        "= " + "a" * 50_000,
        "\x1b]" + "x" * 50_000,
    ]
    start = time.perf_counter()
    for text in hard:
        trim_structure(clean_text(text), keep=1)
        recognise(text)
    assert time.perf_counter() - start < 5


# -- stage 3: head and tail --------------------------------------------------------------


def test_cut_middle_keeps_whole_lines_and_names_recall() -> None:
    source = python_module()
    out = cut_middle(O200K, source, 500, "m7", head_share=0.5)
    assert O200K.count(out) <= 500
    head, _, tail = out.partition("\n\n[… ")
    assert source.startswith(head + "\n")
    rest = tail.partition(" …]\n\n")[2]
    assert source.endswith(rest)
    assert source[: len(source) - len(rest)].endswith("\n")  # the tail starts a line
    assert 'tokens omitted to save context. Full text: recall("m7")' in out
    assert cut_middle(O200K, "short", 500, "m7") == "short"


# -- the strategy ------------------------------------------------------------------------


def test_python_file_is_only_cut_by_head_and_tail() -> None:
    source = python_module()
    out, edit = run_one(source)
    assert O200K.count(out) <= 1000
    assert edit.note == "tool output cleaned: cut to head and tail (1,000 tokens)"
    assert out.startswith(source.partition("\n")[0])
    assert out.endswith(source[-200:])
    assert 'recall("r1")' in out


def test_pytest_run_through_the_strategy() -> None:
    out, edit = run_one(pytest_run())
    assert O200K.count(out) <= 1000
    assert "log trimmed" in edit.note
    assert "cut to head and tail" not in edit.note  # the trimmed log fits whole
    for i in FAILING:
        assert f"test_case_{i} - AssertionError" in out
    assert "2 failed, 200 passed in 3.21s" in out
    assert 'recall("r1")' in out


def test_json_through_the_strategy_keeps_as_many_items_as_fit() -> None:
    out, edit = run_one(json_answer())
    data = json.loads(out)  # still valid JSON: the pointer is inside
    assert "json trimmed" in edit.note
    kept = [r for r in data["results"] if isinstance(r, dict)]
    assert 10 < len(kept) < 500
    assert O200K.count(out) <= 1000
    assert 'recall(\\"r1\\")' in out


def test_find_through_the_strategy() -> None:
    out, edit = run_one(find_output())
    assert "listing trimmed" in edit.note
    assert O200K.count(out) <= 1000
    assert all(f"{d}/file_000.py" in out for d in DIRS)
    assert out.endswith('Full text: recall("r1") …]')


def test_pure_escape_cleanup_has_no_recall_pointer() -> None:
    out, edit = run_one(pip_install())
    assert "recall(" not in out
    assert edit.note == "tool output cleaned: terminal codes and redraws resolved"
    assert out.startswith("Collecting numpy==1.26.4\n")


def test_small_lossy_collapse_is_not_worth_a_recall() -> None:
    lines = "\n".join(f"  Step {i}: loss={1 / (i + 1):.3f} 12/s" for i in range(6))
    view = view_of(exchange(1, f"training\n{lines}\ndone"))
    assert clean.propose(CONFIG, view) == ()


def test_large_progress_log_names_recall() -> None:
    out, _ = run_one(wget_log())
    assert "similar lines omitted" in out
    assert out.endswith('[… repeated lines collapsed to save context. Full text: recall("r1") …]')


def test_edit_shape_keeps_the_pair_and_is_idempotent() -> None:
    items = [*exchange(1, pytest_run()), *exchange(2, "fine"), *exchange(3, npm_install())]
    view = view_of(items)
    edits = clean.propose(CONFIG, view)
    assert [e.remove for e in edits] == [("r1",), ("r3",)]
    assert all(e.kind == "truncate" for e in edits)
    after = applied(view, edits)  # applying checks no call or result is orphaned
    by_id = {i.id: i for i in after}
    assert by_id[derived_id("r1", "clean")].tool_results[0].call_id == "c1"
    assert by_id[derived_id("r3", "clean")].tool_results[0].call_id == "c3"
    assert clean.propose(CONFIG, view_of(after)) == ()
    assert clean.propose(CONFIG, view) == edits  # deterministic


def test_pinned_fixed_and_protected_items_are_not_touched() -> None:
    items = [
        *exchange(1, npm_install(), pinned=True),
        *exchange(2, npm_install(), protected=True),
        *exchange(3, npm_install()),
    ]
    kinds = {Component.TOOL_RESULTS: ComponentKind.FIXED}
    assert clean.propose(CONFIG, view_of(items, kinds=kinds)) == ()
    assert [e.remove for e in clean.propose(CONFIG, view_of(items))] == [("r3",)]
    last = clean.propose(CONFIG, view_of(items, last_resort=True))
    assert [e.remove for e in last] == [("r2",), ("r3",)]


def test_truncated_items_are_skipped() -> None:
    items = exchange(1, npm_install())
    items[1] = items[1].with_(id=derived_id("r1", "truncate"))
    assert clean.propose(CONFIG, view_of(items)) == ()


def test_parts_content_keeps_images_and_text_observations_are_cleaned() -> None:
    content = (
        TextPart(text="shot"),
        ImagePart(url="https://x/a.png"),
        TextPart(text=npm_install()),
    )
    out = clean.propose(CONFIG, view_of(exchange(1, content)))[0].insert[0].tool_results[0]
    assert isinstance(out.content, tuple)
    assert out.content[:2] == content[:2]
    assert isinstance(out.content[2], TextPart)
    assert "\x1b" not in out.content[2].text
    observation = Item(
        id="m5",
        role="user",
        component=Component.TOOL_RESULTS,
        parts=(TextPart(text=npm_install(), provider_details={"cache_control": 1}),),
    )
    (edit,) = clean.propose(CONFIG, view_of([observation]))
    new = edit.insert[0]
    assert new.id == "m5~clean"
    assert isinstance(new.parts[0], TextPart)
    assert new.parts[0].provider_details == {"cache_control": 1}
    assert item_text(new).startswith("⠏ reify:lodash")


def test_never_empty_and_nothing_to_do() -> None:
    view = view_of(exchange(1, "\x1b[0m\x1b[K"))
    for edit in clean.propose(CONFIG, view):
        assert result_text(edit.insert[0])
    assert clean.propose(CONFIG, view_of(exchange(1, "all good\n"))) == ()
    assert clean.propose(CONFIG, view_of(exchange(1, ""))) == ()


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="tokenizer"):
        clean.propose(CleanConfig(), view_of(exchange(1, "x")))
    with pytest.raises(ConfigError, match="kind"):
        CleanConfig(kind="truncate")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_tokens"):
        CleanConfig(max_tokens=10)
    with pytest.raises(ConfigError, match="head_share"):
        CleanConfig(head_share=1.5)
    with pytest.raises(ConfigError, match="tokenizer"):
        CleanConfig(tokenizer="o200k_base")  # type: ignore[arg-type]


# -- properties --------------------------------------------------------------------------

LINES = st.sampled_from(
    [
        "",
        "ok",
        "Downloading 12%",
        "\x1b[31mERROR\x1b[0m: boom",
        "50%\r100%",
        "a\bb",
        "tests/test_a.py::test_x PASSED [ 10%]",
        "FAILED tests/test_a.py::test_y - assert 1 == 2",
        "./src/a/b.py",
        '{"k": [1, 2, 3]}',
        "def f(x):",
        "    return x  # é 漢字 🙂",
        "=" * 10 + " 1 failed, 2 passed in 0.1s " + "=" * 10,
    ]
)
TEXTS = st.lists(st.tuples(LINES, st.integers(1, 30)), min_size=1, max_size=25).map(
    lambda runs: "\n".join(line for line, times in runs for _ in range(times))
)


@settings(max_examples=60, deadline=None)
@given(text=TEXTS, max_tokens=st.integers(64, 400), share=st.floats(0, 1))
def test_output_fits_and_is_never_empty(text: str, max_tokens: int, share: float) -> None:
    config = CleanConfig(max_tokens=max_tokens, head_share=share, tokenizer=O200K)
    view = view_of(exchange(1, text))
    edits = clean.propose(config, view)
    if not edits:
        return
    out = result_text(edits[0].insert[0])
    assert O200K.count(out) <= max_tokens
    assert out or not text
    assert clean.propose(config, view_of(applied(view, edits))) == ()


@settings(max_examples=100, deadline=None)
@given(text=TEXTS | st.text(max_size=300))
def test_stage_one_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once
