"""The figures the README and docs state are the recorded runs', and the demo's are current.

Every figure lives in a ``<!-- figures:NAME -->`` block rendered by ``bench/figures_render.py``
from one record in ``bench/figures/<bench>.json`` (commit, date, machine, command, figures).
These tests fail when a block differs from its record, when a figure is written outside a
block, or when the demo session's figures (deterministic for a source tree; recomputed
here in ~10 s) differ from the record. The traces' deterministic figures are compared in
CI's benchmark pass (``python bench/figures.py --quick-check``). To regenerate everything:
``python bench/figures.py --write``; to re-render from the records: ``--render``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import figures  # noqa: E402
from figures_render import BLOCK, RENDERERS  # noqa: E402

REGENERATE = (
    "regenerate with `python bench/figures.py --write` (measure again; `--only demo` for the "
    "demo session alone) or `python bench/figures.py --render` (re-render the records)"
)


@pytest.fixture(scope="module")
def records() -> dict[str, dict[str, Any]]:
    found = figures.load_records()
    missing = [bench for bench in figures.BENCHES if bench not in found]
    assert not missing, f"no record in bench/figures for {missing}: {REGENERATE}"
    return found


def test_every_block_has_a_renderer_and_appears_once() -> None:
    seen: list[str] = []
    for doc in figures.DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        names = [m.group("name") for m in BLOCK.finditer(text)]
        assert text.count("<!-- figures:") == len(names), f"{doc}: an unclosed figure block"
        seen += names
    assert sorted(seen) == sorted(RENDERERS), "each renderer's block appears exactly once"


def test_records_say_which_run(records: dict[str, dict[str, Any]]) -> None:
    for bench, record in records.items():
        assert record["bench"] == bench
        assert re.fullmatch(r"[0-9a-f]{40}", record["commit"]), bench
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", record["date"]), bench
        script, extra = figures.SCRIPTS.get(bench, (bench, []))
        assert record["command"] == " ".join(["python", f"bench/{script}.py", *extra]), bench
        assert {"cpus", "cpu", "python"} <= set(record["machine"]), bench
        assert "exact" in record["full"], bench
        assert record["quick"]["command"] == f"{record['command']} --quick", bench
        assert "exact" in record["quick"], bench


def test_docs_show_the_recorded_figures(records: dict[str, dict[str, Any]]) -> None:
    problems = figures.check_docs(records)
    assert not problems, "\n\n".join([*problems, REGENERATE])


def test_benchmark_section_states_no_figure_outside_a_block() -> None:
    """Between the blocks only words: a number typed by hand would not be checked.

    ``bench_store``'s paragraph is its owner's (not recorded here) and is left out.
    """
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Benchmarks\n", 1)[1].split("\n## ", 1)[0]
    section = BLOCK.sub("", section)
    store = r"```bash\n\.venv/bin/python bench/bench_store\.py\n```.*?(?=```)"
    section = re.sub(store, "", section, flags=re.DOTALL)
    section = re.sub(r"```.*?```", "", section, flags=re.DOTALL)
    numbers = re.findall(r".{0,30}\d.{0,30}", section)
    assert not numbers, f"figures outside a generated block in README's Benchmarks: {numbers}"


def test_demo_figures_are_current(records: dict[str, dict[str, Any]]) -> None:
    """The demo session is built from the package's own sources: any change that moves
    its figures must regenerate them (``python bench/figures.py --write --only demo``,
    ~30 s)."""
    from bench_simulate import demo_figures

    record = records["demo"]
    recorded = record["full"]["exact"]
    changed = record.get("source_sha256", "") != figures.source_digest()
    why = "the package changed since the recorded run; " if changed else ""
    assert demo_figures() == recorded, why + REGENERATE
