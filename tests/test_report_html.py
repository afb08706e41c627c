"""The offline HTML report: pure checks of the page, then the page drawn in headless Chromium.

The browser tests open the written file in the system Chromium through Playwright and
compare what was drawn (SVG marks, their positions, the tables) with the data. They skip
with the reason from ``tests/_browser.py`` when Playwright or Chromium is missing (and
fail under CI: ``tests/_require.py``).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from _browser import count_colours, launch, unavailable_reason
from _require import unavailable
from ctxbudget.errors import ConversionError, UsageError
from ctxbudget.report import render_html, write_html

ROOT = Path(__file__).resolve().parents[1]

COMPONENTS = [
    "system",
    "tool schemas",
    "user",
    "assistant",
    "reasoning",
    "tool results: bash",
    "tool results: grep",
]
POLICIES = ["none-nocache", "none", "mask-last-10", "clear-tool-uses", "ctxbudget"]
PRICE = 3e-6  # USD per input token
CACHED = {"none-nocache": 0.0, "none": 0.8, "mask-last-10": 0.5, "clear-tool-uses": 0.6}
LIMITS = {"clear-tool-uses": 30_000, "ctxbudget": 18_000}  # compaction thresholds


def _composition(calls: int, seed: int, grep: bool) -> dict[str, list[int]]:
    """Prompt tokens per component per call, growing like an agent's history does."""
    comp: dict[str, list[int]] = {c: [] for c in COMPONENTS if grep or c != "tool results: grep"}
    for i in range(calls):
        comp["system"].append(1_200)
        comp["tool schemas"].append(3_400)
        comp["user"].append(300 + 40 * i)
        comp["assistant"].append(180 * i)
        comp["reasoning"].append(90 * i + (seed % 7) * 10)
        comp["tool results: bash"].append(((i * (seed + 3)) % 11) * 150 * i // 4)
        if grep:
            comp["tool results: grep"].append(120 * i)
    return comp


def _policy_run(policy: str, totals: list[int]) -> dict[str, Any]:
    """A policy's timeline: masked, or a sawtooth of compactions past a threshold."""
    context, events, offset = [], [], 0
    for i, total in enumerate(totals):
        size = max(2_000, total - offset)
        if policy == "mask-last-10":
            size = int(total * 0.7) if i > 10 else total
        limit = LIMITS.get(policy)
        if limit is not None and size > limit:
            after = int(limit * 0.4)
            strategy = "clear" if policy == "clear-tool-uses" else "summarize"
            events.append(
                {"call": i, "strategy": strategy, "tokens_before": size, "tokens_after": after}
            )
            offset += size - after
            size = after
        context.append(size)
    share = CACHED.get(policy, 0.7)
    cumulative, running = [], 0.0
    for size in context:
        running += size * PRICE * (1 - 0.9 * share)
        cumulative.append(round(running, 6))
    return {
        "context": context,
        "cumulative_cost": cumulative,
        "compactions": events,
        "retention": 1.0 if not events else round(1 - 0.01 * len(events), 4),
        "input_tokens": sum(context),
        "peak": max(context, default=0),
        "cached_share": share,
        "input_cost": cumulative[-1] if cumulative else 0.0,
    }


def _session(name: str, calls: int, seed: int, *, grep: bool = True) -> dict[str, Any]:
    comp = _composition(calls, seed, grep)
    totals = [sum(v[i] for v in comp.values()) for i in range(calls)]
    computed = round(sum(totals) * PRICE * 0.4, 6)
    return {
        "name": name,
        "format": ["claude-code", "codex", "openhands"][seed % 3],
        "calls": calls,
        "model": "claude-sonnet-4-5" if seed % 2 else None,
        "composition": comp,
        "recorded_cost": round(computed * (1 + 0.05 * (seed % 3)), 6) if seed % 2 else None,
        "computed_cost": computed,
        "cache_hit_rate": 0.8 if seed % 2 else None,
        "policies": {p: _policy_run(p, totals) for p in POLICIES},
    }


def simulate_data(sessions: int = 4, *, exact: bool = False) -> dict[str, Any]:
    lengths = [40, 120, 7, 75, 1, 33]
    items = [
        _session(f"session-{i:02d}", lengths[i % len(lengths)], i, grep=i % 3 != 2)
        for i in range(sessions)
    ]
    pols: dict[str, Any] = {}
    for p in POLICIES:
        runs = [s["policies"][p] for s in items]
        cost = round(sum(r["input_cost"] for r in runs), 6)
        events = sum(len(r["compactions"]) for r in runs)
        pols[p] = {
            "input_tokens": sum(r["input_tokens"] for r in runs),
            "peak": max((r["peak"] for r in runs), default=0),
            "cached_share": CACHED.get(p, 0.7),
            "input_cost": cost,
            "output_cost": 0.25,
            "retention": round(1 - 0.004 * events, 4),
            "compactions": events,
            "vs_none": None,
            "worse_than_none": 1 if p == "mask-last-10" else 0,
        }
    for p in POLICIES:
        base = pols["none"]["input_cost"]
        pols[p]["vs_none"] = round(pols[p]["input_cost"] / base, 4) if base else None
    return {
        "kind": "simulate",
        "title": "Policies over recorded agent sessions",
        "version": "0.1.0",
        "model": "claude-sonnet-4-5",
        "provider": "anthropic",
        "exact": exact,
        "components": COMPONENTS,
        "policies": POLICIES,
        "totals": {
            "sessions": len(items),
            "calls": sum(s["calls"] for s in items),
            "components": {},
            "policies": pols,
            "recorded_cost": None,
            "computed_cost": None,
        },
        "sessions": items,
    }


def analyze_data(sessions: int = 4, *, exact: bool = True) -> dict[str, Any]:
    data = simulate_data(sessions, exact=exact)
    data.update(kind="analyze", title="Where the tokens go", policies=[])
    for s in data["sessions"]:
        s["policies"] = {}
    tokens = {
        c: sum(sum(s["composition"].get(c, [])) for s in data["sessions"]) for c in COMPONENTS
    }
    data["totals"].update(
        policies={},
        components={c: {"tokens": t, "cost": round(t * PRICE, 6)} for c, t in tokens.items()},
        recorded_cost=1.5,
        computed_cost=1.45,
    )
    return data


def _embedded(page: str) -> Any:
    match = re.search(
        r'<script type="application/json" id="ctxbudget-data">(.*?)</script>', page, re.S
    )
    assert match, "no embedded data"
    return json.loads(match.group(1))


def _markup(page: str) -> str:
    """The page without its two scripts (what a reader sees before the charts)."""
    return page.split('<script type="application/json"', maxsplit=1)[0]


# ---- the page as text --------------------------------------------------------------------


@pytest.mark.parametrize("data", [simulate_data(), analyze_data()], ids=["simulate", "analyze"])
def test_page_is_self_contained(data: dict[str, Any]) -> None:
    page = render_html(data)
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(
        r"""\b(?:src|href|action|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I
    )
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", page, re.I)
    # The only absolute URL is the SVG namespace (a name, never fetched).
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "default-src 'none'" in page  # the CSP forbids every request


@pytest.mark.parametrize("data", [simulate_data(), analyze_data()], ids=["simulate", "analyze"])
def test_data_is_embedded_and_reads_back(data: dict[str, Any]) -> None:
    assert _embedded(render_html(data)) == json.loads(json.dumps(data))


def test_a_session_name_cannot_break_out_of_the_script() -> None:
    data = simulate_data(2)
    evil = "</script><script>alert(1)</script><!-- </SCRIPT \u2028"
    data["sessions"][0]["name"] = evil
    page = render_html(data)
    assert page.lower().count("</script") == 2  # the data's and the chart script's
    assert _embedded(page)["sessions"][0]["name"] == evil
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page  # escaped in the tables


def test_same_data_same_bytes(tmp_path: Path) -> None:
    data = simulate_data()
    shuffled = json.loads(json.dumps(data, sort_keys=True))  # same content, other key order
    assert render_html(data) == render_html(copy.deepcopy(data)) == render_html(shuffled)
    written = write_html(data, tmp_path / "deep" / "report.html")
    assert written == tmp_path / "deep" / "report.html"
    assert written.read_bytes() == render_html(data).encode("utf-8")


def test_estimates_are_labelled() -> None:
    page = _markup(render_html(simulate_data(exact=False)))
    assert "Token counts are estimates" in page
    heads = re.findall(r'<th\b[^>]*><button type="button">(.*?)</button></th>', page)
    token_heads = [h for h in heads if "tokens" in h]
    assert len(token_heads) == 2
    assert all("tokens (estimate)" in h for h in token_heads)

    exact = _markup(render_html(simulate_data(exact=True)))
    assert "estimate" not in exact.lower()
    assert 'id="estimate-banner"' not in exact
    assert "input tokens" in exact


def test_tables_show_the_figures() -> None:
    data = analyze_data()
    page = _markup(render_html(data))
    assert page.count('<tr data-index="') == len(data["sessions"])
    total = sum(c["tokens"] for c in data["totals"]["components"].values())
    assert f"{total:,}" in page
    sim = _markup(render_html(simulate_data()))
    assert 'id="session-picker"' in sim
    assert "retention (ctxbudget)" in sim
    # The longest session is picked first.
    assert re.search(r'<option value="1" selected>session-01 \(120 calls\)', sim)


def _drop(path: str) -> Any:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        del node[last]

    return edit


def _set(path: str, value: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "where", "what"),
    [
        (_drop("sessions"), "report data", "missing key 'sessions'"),
        (_drop("sessions/1/policies/none/context"), "sessions[1].policies['none']", "'context'"),
        (_set("sessions/0/policies/none/context", [1, 2]), ".context", "one per call"),
        (_set("sessions/0/composition/user", [-1] * 40), "composition['user'][0]", "whole number"),
        (_set("sessions/0/composition/mystery", [0] * 40), "composition", "'mystery'"),
        (_set("kind", "report"), "kind", "simulate, analyze"),
        (_set("exact", "no"), "exact", "true or false"),
        (_set("totals/policies/none/input_cost", float("nan")), "input_cost", "finite"),
        (_drop("totals/policies/ctxbudget"), "totals.policies", "'ctxbudget'"),
        (_set("sessions/1/policies/ctxbudget/compactions/0/call", 120), ".call", "past the 120"),
        (_set("policies", ["none", "none"]), "policies", "unique"),
        (_set("sessions", {"a": 1}), "sessions", "expected a list"),
    ],
)
def test_bad_data_names_what_is_wrong(edit: Any, where: str, what: str) -> None:
    data = simulate_data()
    edit(data)
    with pytest.raises(UsageError) as caught:
        render_html(data)
    assert isinstance(caught.value, ConversionError)
    assert where in caught.value.path
    assert what in str(caught.value)


def test_data_that_is_not_json_is_refused() -> None:
    data = simulate_data(1)
    data["extra"] = object()
    with pytest.raises(UsageError, match="JSON"):
        render_html(data)


def test_unwritable_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot write the report"):
        write_html(simulate_data(1), tmp_path)  # a directory


def test_assets_are_package_data() -> None:
    assets = files("ctxbudget.report").joinpath("assets")
    assert assets.joinpath("report.js").is_file()
    assert assets.joinpath("report.css").is_file()


# ---- the page in a browser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = unavailable_reason()
    if reason is not None:
        unavailable(reason)
    with launch() as b:
        yield b


class Opened:
    """A report open in a page, with every console error, page error and request kept."""

    def __init__(self, browser: Any, path: Path, width: int = 1280) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector('body[data-rendered="1"]', timeout=10_000)

    def _console(self, message: Any) -> None:
        if message.type in {"error", "warning"}:
            self.errors.append(f"{message.type}: {message.text}")

    def count(self, selector: str) -> int:
        return int(self.page.locator(selector).count())

    def attr(self, selector: str, name: str) -> str:
        return str(self.page.get_attribute(selector, name))

    def assert_clean(self) -> None:
        assert self.errors == []
        assert self.requests == [self.url]  # nothing but the file itself
        assert self.page.get_attribute("body", "data-errors") is None
        assert self.page.locator("#report-errors").is_hidden()


@pytest.fixture
def opened(browser: Any, tmp_path: Path) -> Iterator[Any]:
    pages: list[Opened] = []

    def open_(data: dict[str, Any], width: int = 1280) -> Opened:
        o = Opened(browser, write_html(data, tmp_path / f"report-{len(pages)}.html"), width)
        pages.append(o)
        return o

    yield open_
    for o in pages:
        o.page.close()


def _value_at(o: Opened, chart: str, y: float) -> float:
    """Turn a pixel row of a chart back into a value with the axis the page drew."""
    svg = f"#chart-{chart} svg"
    _, top, _, height = (float(v) for v in o.attr(svg, "data-plot").split(","))
    return (top + height - y) / height * float(o.attr(svg, "data-y-max"))


def _check_session(o: Opened, data: dict[str, Any], index: int) -> None:
    s = data["sessions"][index]
    present = [c for c in data["components"] if any(s["composition"].get(c, []))]
    assert o.count("#chart-composition svg path.series") == len(present)
    assert o.count("#chart-composition .legend li") == len(present)
    assert o.attr("#chart-composition", "data-rendered") == str(len(present))
    assert o.attr("#chart-composition", "data-session") == str(index)
    names = o.page.eval_on_selector_all(
        "#chart-composition path.series", "ps => ps.map(p => p.dataset.component)"
    )
    assert names == present
    if data["kind"] != "simulate":
        return
    events = {p: len(s["policies"][p]["compactions"]) for p in data["policies"]}
    assert o.count("#chart-context svg path.line") == len(data["policies"])
    assert o.count("#chart-context svg g.marker") == sum(events.values())
    for p, n in events.items():
        assert o.count(f'#chart-context g.marker[data-policy="{p}"]') == n
    assert o.attr("#chart-context", "data-rendered") == str(
        len(data["policies"]) + sum(events.values())
    )
    lines = o.page.eval_on_selector_all(
        "#chart-cost svg path.line",
        "ps => ps.map(p => [p.dataset.policy, Number(p.dataset.last), p.getAttribute('d')])",
    )
    assert [p for p, _, _ in lines] == data["policies"]
    for p, last, d in lines:
        cost = s["policies"][p]["input_cost"]
        assert last == pytest.approx(cost)
        y = float(re.findall(r"[-\d.]+", d)[-1])  # the last point drawn
        assert _value_at(o, "cost", y) == pytest.approx(
            cost, abs=float(o.attr("#chart-cost svg", "data-y-max")) / 200
        )


def test_simulate_report_draws_every_chart(opened: Any) -> None:
    data = simulate_data(6)
    o = opened(data)
    o.assert_clean()
    assert o.attr("body", "data-session") == "1"  # the longest session
    _check_session(o, data, 1)
    assert o.count("#chart-retention svg rect.bar") == len(data["policies"])
    assert o.count("#chart-retention svg line.threshold") == 1
    widths = o.page.eval_on_selector_all(
        "#chart-retention rect.bar", "rs => rs.map(r => Number(r.getAttribute('width')))"
    )
    plot_width = float(o.attr("#chart-retention svg", "data-plot").split(",")[2])
    for p, w in zip(data["policies"], widths, strict=True):
        assert w == pytest.approx(data["totals"]["policies"][p]["retention"] * plot_width, abs=0.02)


def test_picking_a_session_redraws_its_charts(opened: Any) -> None:
    data = simulate_data(6)
    o = opened(data)
    before = o.count("#chart-context g.marker")
    for index in (2, 4, 0):  # 7 calls without grep results, a single call, then 40 calls
        o.page.select_option("#session-picker", str(index))
        assert o.attr("body", "data-session") == str(index)
        _check_session(o, data, index)
    assert o.count("#chart-context g.marker") != before
    o.page.click('button.pick[data-index="3"]')  # a name in the table picks it too
    assert o.page.input_value("#session-picker") == "3"
    _check_session(o, data, 3)
    o.assert_clean()


def test_tooltips_legends_and_ticks(opened: Any) -> None:
    data = simulate_data(3, exact=False)
    o = opened(data)
    band = o.page.text_content("#chart-composition rect.hover title") or ""
    assert band.startswith("call 1: ")
    assert "tokens (estimate)" in band
    marker = o.page.text_content("#chart-context g.marker title") or ""
    assert re.search(
        r"compaction before call \d+ \((clear|summarize)\), [\d,]+ → [\d,]+ tokens \(estimate\)",
        marker,
    )
    ticks = o.page.eval_on_selector_all(
        "#chart-context .axis-y text", "ts => ts.map(t => t.textContent)"
    )
    assert ticks[0] == "0"
    assert all(re.fullmatch(r"\d+(\.\d+)?[KMB]?", t) for t in ticks)
    assert any(t.endswith("K") for t in ticks)
    money = o.page.eval_on_selector_all(
        "#chart-cost .axis-y text", "ts => ts.map(t => t.textContent)"
    )
    assert all(re.fullmatch(r"\$\d+(\.\d+)?", t) for t in money)
    assert o.page.text_content("#chart-composition .axis-label") == "prompt tokens (estimate)"
    assert o.count("#chart-context .legend li") == len(data["policies"]) + 1  # + compaction
    o.assert_clean()


def test_clicking_a_header_sorts_the_rows(opened: Any) -> None:
    data = simulate_data(6)
    o = opened(data)
    table = "#sessions-table"
    calls = f"{table} tbody tr td:nth-child(3)"

    def column() -> list[int]:
        return [int(t.replace(",", "")) for t in o.page.locator(calls).all_text_contents()]

    assert column() == [s["calls"] for s in data["sessions"]]
    o.page.click(f"{table} thead th:nth-child(3) button")
    assert column() == sorted(s["calls"] for s in data["sessions"])
    assert o.attr(f"{table} thead th:nth-child(3)", "aria-sort") == "ascending"
    o.page.click(f"{table} thead th:nth-child(3) button")
    assert column() == sorted((s["calls"] for s in data["sessions"]), reverse=True)
    o.page.click(f"{table} thead th:nth-child(1) button")
    names = o.page.locator(f"{table} tbody tr td:nth-child(1)").all_text_contents()
    assert names == sorted(s["name"] for s in data["sessions"])
    o.assert_clean()


def test_analyze_report(opened: Any) -> None:
    data = analyze_data(5)
    o = opened(data)
    o.assert_clean()
    for absent in ("context", "cost", "retention"):
        assert o.count(f"#chart-{absent}") == 0
    _check_session(o, data, 1)
    o.page.select_option("#session-picker", "2")
    _check_session(o, data, 2)
    heads = o.page.locator("#sessions-table thead th").all_text_contents()
    assert heads[4:7] == ["recorded $", "computed $", "difference"]
    assert o.count("#totals-table tbody tr") == len(COMPONENTS) + 1


def test_sparse_data_draws_without_errors(opened: Any) -> None:
    data = simulate_data(3)
    idle = _session("idle", 0, 1)  # a session with no calls at all
    data["sessions"].append(idle)
    unpriced = data["sessions"][0]["policies"]  # a model without known prices
    for run in unpriced.values():
        run.update(cumulative_cost=[], input_cost=None)
    del data["sessions"][1]["policies"]["mask-last-10"]  # a policy that did not run
    data["sessions"][1]["composition"] = {}
    data["totals"]["policies"]["none"]["retention"] = None
    o = opened(data)
    o.assert_clean()
    assert o.count("#chart-retention rect.bar") == len(data["policies"]) - 1
    assert o.count("#chart-context path.line") == len(data["policies"]) - 1
    assert "No composition" in (o.page.text_content("#chart-composition .empty") or "")
    for index, chart, words in [(0, "cost", "No prices"), (3, "context", "No calls")]:
        o.page.select_option("#session-picker", str(index))
        assert words in (o.page.text_content(f"#chart-{chart} .empty") or "")
        assert o.attr(f"#chart-{chart}", "data-rendered") == "0"
    o.assert_clean()


def test_a_report_without_sessions(opened: Any) -> None:
    data = analyze_data(0)
    data["totals"]["components"] = {}
    o = opened(data)
    o.assert_clean()
    assert o.count("#session-picker") == 0
    assert o.count("#sessions-table tbody tr") == 0


def test_charts_follow_the_window_width(opened: Any) -> None:
    o = opened(simulate_data(2), width=1280)
    wide = float(o.attr("#chart-context svg", "width"))
    o.page.set_viewport_size({"width": 700, "height": 900})
    # Redrawn on the next animation frame (the page's CSP rules out wait_for_function).
    for _ in range(50):
        narrow = float(o.attr("#chart-context svg", "width"))
        if narrow < wide:
            break
        o.page.wait_for_timeout(20)
    assert narrow < 700 < wide
    assert o.count("#chart-context g.marker") == sum(
        len(r["compactions"]) for r in simulate_data(2)["sessions"][1]["policies"].values()
    )
    o.assert_clean()


def test_a_drawing_error_is_shown_not_swallowed(opened: Any, browser: Any, tmp_path: Path) -> None:
    data = simulate_data(2)
    page = render_html(data)
    broken = copy.deepcopy(data)
    broken["sessions"][1]["composition"] = None  # what validation would have refused
    text = json.dumps(broken, sort_keys=True).replace("<", "\\u003c")
    path = tmp_path / "broken.html"
    path.write_text(
        re.sub(
            r'(id="ctxbudget-data">).*?(</script>)',
            lambda m: m.group(1) + text + m.group(2),
            page,
            flags=re.S,
        )
    )
    o = Opened(browser, path)
    assert o.attr("body", "data-errors") == "1"
    assert "chart chart-composition" in (o.page.text_content("#report-errors") or "")
    assert o.page.locator("#report-errors").is_visible()
    assert int(o.attr("#chart-context", "data-rendered")) > 0  # the other charts still drew
    o.page.close()


def test_screenshot_is_not_blank(opened: Any, browser: Any) -> None:
    o = opened(simulate_data(3))
    blank = browser.new_page()
    try:
        assert count_colours(blank, o.page.screenshot(full_page=True)) > 50
        assert count_colours(blank, o.page.locator("#chart-composition").screenshot()) > 8
    finally:
        blank.close()


def test_screenshot_script(browser: Any, tmp_path: Path) -> None:
    report = write_html(simulate_data(3), tmp_path / "report.html")
    out = tmp_path / "shots"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshot_report.py"), str(report), str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [
        "chart-composition.png",
        "chart-context.png",
        "chart-cost.png",
        "chart-retention.png",
        "page.png",
    ]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in out.glob("*.png"))
