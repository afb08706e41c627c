"""The self-contained, offline HTML report of ``ctxbudget analyze`` and ``ctxbudget simulate``.

One file and no network: the stylesheet and the chart script (package data under
``assets/``) are inlined, and the figures are embedded as JSON in
``<script type="application/json" id="ctxbudget-data">``. The header and the tables are
rendered here, so they read without JavaScript; the script draws the SVG charts of the
selected session and makes the tables sortable. A Content-Security-Policy forbids every
request, so the page cannot reach the network even by mistake.

The same data always gives the same bytes (keys are sorted, nothing depends on the clock).
The data is checked first: a missing key or a wrong type raises
:class:`~ctxbudget.errors.ConversionError` (a ``UsageError``) naming where, instead of
producing a broken page. The contract is in :func:`render_html`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import Any

from ctxbudget.errors import ConversionError, UsageError
from ctxbudget.report._schema import validate

__all__ = ["render_html", "write_html"]

_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


# ---- formatting ----------------------------------------------------------------------------


def _usd(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    size = abs(value)
    return f"{sign}${size:,.2f}" if size >= 1 else f"{sign}${size:.4f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _td(text: str, value: float | str | None = None, *, num: bool = True, html: str = "") -> str:
    """A cell: shown text (escaped) or raw ``html``; ``data-v`` holds the value sorted on."""
    attrs = ' class="num"' if num else ""
    if value is not None:
        attrs += f' data-v="{escape(str(value))}"'
    return f"<td{attrs}>{html or escape(text)}</td>"


def _th(label: str, *, num: bool = True, title: str = "") -> str:
    attrs = ' class="num" data-type="num"' if num else ' data-type="text"'
    if title:
        attrs += f' title="{escape(title)}"'
    button = f'<button type="button">{escape(label)}</button>'
    return f'<th scope="col"{attrs} aria-sort="none">{button}</th>'


def _table(table_id: str, heads: list[str], rows: list[str], caption: str) -> str:
    return (
        f'<div class="table-wrap"><table id="{table_id}" class="sortable">'
        f'<caption class="note">{escape(caption)}</caption>'
        f"<thead><tr>{''.join(heads)}</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table></div>"
    )


def _default_policy(data: Mapping[str, Any]) -> str | None:
    policies: list[str] = list(data["policies"])
    chosen = data.get("default_policy")
    if chosen is not None:
        return str(chosen)
    if "ctxbudget" in policies:
        return "ctxbudget"
    return policies[-1] if policies else None


# ---- sections ------------------------------------------------------------------------------


def _header(data: Mapping[str, Any]) -> str:
    totals = data["totals"]
    facts = [
        ("model", data["model"]),
        ("provider", data["provider"]),
        ("sessions", f"{totals['sessions']:,}"),
        ("calls", f"{totals['calls']:,}"),
    ]
    for key in ("recorded_cost", "computed_cost"):
        if totals[key] is not None:
            facts.append((key.replace("_", " "), _usd(totals[key])))
    if data.get("probe_reader") is not None:
        facts.append(("probe reader", data["probe_reader"]))
    facts = [(k, v) for k, v in facts if v] + [("ctxbudget", data["version"])]
    items = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts)
    banner = ""
    if not data["exact"]:
        banner = (
            '<p class="banner" id="estimate-banner" role="note"><strong>Token counts are '
            "estimates.</strong> The exact tokenizer of this model was not available: every "
            "token figure in this report is an estimate and is labelled so.</p>"
        )
    return (
        f'<header><h1>{escape(data["title"])}</h1><dl class="facts">{items}</dl>{banner}</header>'
    )


def _totals_simulate(data: Mapping[str, Any], tok: str) -> str:
    heads = [
        _th("policy", num=False),
        _th(f"input {tok}"),
        _th(f"peak prompt {tok}"),
        _th("cached share", title="share of input tokens read from the prompt cache"),
        _th("input $"),
        _th("output $"),
        _th("vs none", title="input cost over the 'none' policy's (0.58× = 42% cheaper)"),
        _th("retention", title="share of the references the agent reused still in view"),
        _th(
            "line retention",
            title="reused references whose whole earlier line was still in view verbatim",
        ),
    ]
    reader = data.get("probe_reader")
    if reader is not None:
        heads.append(
            _th(
                f"probe accuracy ({reader})",
                title="share of probes (facts the session holds) answered from the policy's "
                f"request, by the {reader}",
            )
        )
    heads += [
        _th("recall calls", title="extra calls to read back what the view had lost (priced)"),
        _th("compactions"),
        _th("sessions costing more than none"),
    ]
    rows = []
    for name in data["policies"]:
        p = data["totals"]["policies"][name]
        cells = [
            _td(name, name, num=False),
            _td(f"{p['input_tokens']:,}", p["input_tokens"]),
            _td(f"{p['peak']:,}", p["peak"]),
            _td(_pct(p["cached_share"]), p["cached_share"]),
            _td(_usd(p["input_cost"]), p["input_cost"]),
            _td(_usd(p["output_cost"]), p["output_cost"]),
            _td(_ratio(p["vs_none"]), p["vs_none"]),
            _td(_pct(p["retention"]), p["retention"]),
            _td(_pct(p.get("line_retention")), p.get("line_retention")),
        ]
        if reader is not None:
            cells.append(_td(_pct(p.get("probe_accuracy")), p.get("probe_accuracy")))
        cells += [
            _td(f"{p.get('recalls', 0):,}", p.get("recalls", 0)),
            _td(f"{p['compactions']:,}", p["compactions"]),
            _td(f"{p['worse_than_none']:,}", p["worse_than_none"]),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    caption = "Totals over all sessions, one row per context policy."
    if reader is not None:
        caption += f" Probe accuracy: answers by the {reader}."
    return _table("totals-table", heads, rows, caption)


def _totals_analyze(data: Mapping[str, Any], tok: str) -> str:
    comps = data["totals"]["components"]
    names = [n for n in data["components"] if n in comps]
    total = sum(comps[n]["tokens"] for n in names)
    heads = [_th("component", num=False), _th(tok), _th("share"), _th("cost $")]
    rows = []
    for name in names:
        c = comps[name]
        share = c["tokens"] / total if total else 0.0
        cells = [
            _td(name, name, num=False),
            _td(f"{c['tokens']:,}", c["tokens"]),
            _td(_pct(share), share),
            _td(_usd(c["cost"]), c["cost"]),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    costs = [comps[n]["cost"] for n in names]
    cost_total = None if any(c is None for c in costs) else sum(costs)
    total_cells = [
        _td("total", num=False),
        _td(f"{total:,}"),
        _td(_pct(1.0 if total else 0.0)),
        _td(_usd(cost_total)),
    ]
    rows.append(f'<tr class="total">{"".join(total_cells)}</tr>')
    caption = "Prompt tokens over every call of every session, by component."
    return _table("totals-table", heads, rows, caption)


def _sessions_table(data: Mapping[str, Any]) -> str:
    simulate = data["kind"] == "simulate"
    default = _default_policy(data)
    heads = [_th("session", num=False), _th("format", num=False)]
    if simulate:
        heads += [_th("calls")] + [_th(f"input $ {p}") for p in data["policies"]]
        heads.append(_th(f"retention ({default})"))
    else:
        heads += [_th("model", num=False), _th("calls"), _th("recorded $"), _th("computed $")]
        heads += [_th("difference", title="computed minus recorded"), _th("cache hit rate")]
    rows = []
    for i, s in enumerate(data["sessions"]):
        name = escape(s["name"])
        pick = f'<button type="button" class="pick" data-index="{i}">{name}</button>'
        cells = [
            _td(s["name"], s["name"], num=False, html=pick),
            _td(s["format"], s["format"], num=False),
        ]
        if simulate:
            cells.append(_td(f"{s['calls']:,}", s["calls"]))
            for p in data["policies"]:
                cost = s["policies"].get(p, {}).get("input_cost")
                cells.append(_td(_usd(cost), cost))
            retention = s["policies"].get(default, {}).get("retention")
            cells.append(_td(_pct(retention), retention))
        else:
            recorded, computed = s["recorded_cost"], s["computed_cost"]
            diff = None if recorded is None or computed is None else computed - recorded
            cells += [
                _td(s["model"] or "—", s["model"], num=False),
                _td(f"{s['calls']:,}", s["calls"]),
                _td(_usd(recorded), recorded),
                _td(_usd(computed), computed),
                _td(_usd(diff, signed=True), diff),
                _td(_pct(s["cache_hit_rate"]), s["cache_hit_rate"]),
            ]
        rows.append(f'<tr data-index="{i}">{"".join(cells)}</tr>')
    caption = "Every session; click a header to sort, a name to chart that session."
    return _table("sessions-table", heads, rows, caption)


def _default_session(sessions: Sequence[Mapping[str, Any]]) -> int:
    """The longest session (most calls; the first of equals): the most to look at."""
    best = 0
    for i, s in enumerate(sessions):
        if s["calls"] > sessions[best]["calls"]:
            best = i
    return best


def _figure(chart: str, caption: str) -> str:
    return (
        f'<figure id="chart-{chart}" data-chart="{chart}" data-rendered="0">'
        f'<figcaption>{escape(caption)}</figcaption><div class="chart"></div>'
        '<ul class="legend"></ul></figure>'
    )


def _session_section(data: Mapping[str, Any]) -> str:
    sessions = data["sessions"]
    if not sessions:
        empty = '<p class="note">No sessions.</p>'
        return f'<section id="session-charts"><h2>Per session</h2>{empty}</section>'
    default = _default_session(sessions)
    options = "".join(
        f'<option value="{i}"{" selected" if i == default else ""}>'
        f"{escape(s['name'])} ({s['calls']:,} calls)</option>"
        for i, s in enumerate(sessions)
    )
    figures = [_figure("composition", "Context composition per call (no context management)")]
    if data["kind"] == "simulate":
        figures.append(
            _figure("context", "Context size per call by policy, with compaction events")
        )
        figures.append(_figure("cost", "Cumulative input cost per policy"))
    return (
        '<section id="session-charts"><h2>Per session</h2>'
        '<div class="picker"><label for="session-picker">Session</label>'
        f'<select id="session-picker">{options}</select>'
        '<span id="session-facts" class="note"></span></div>' + "".join(figures) + "</section>"
    )


# ---- the page ------------------------------------------------------------------------------


@cache
def _asset(name: str) -> str:
    text = files("ctxbudget.report").joinpath("assets", name).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():  # pragma: no cover - our files
        raise UsageError(f"report asset {name} would close its inline tag")
    return text


def _json_for_script(data: Mapping[str, Any]) -> str:
    """Sorted, compact JSON that cannot end the ``<script>`` it sits in (``<`` as ``\\u003c``)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return dict(value)
        raise TypeError(f"{type(value).__name__} is not JSON")

    try:
        text = json.dumps(
            data,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=plain,
        )
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"cannot be written as JSON: {exc}", path="report data") from exc
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_html(data: Mapping[str, Any]) -> str:
    """The report page for ``data``: one self-contained HTML document, deterministic bytes.

    ``data`` is the report's JSON object, whose keys are listed in
    :mod:`ctxbudget.report._schema` (kind, title, version, model, provider, exact,
    components, policies, totals, sessions and, optionally, default_policy). Every figure
    the page shows comes from it; nothing is recomputed except shares and differences.

    Raises :class:`~ctxbudget.errors.ConversionError` naming the first bad key.
    """
    validate(data)
    tok = "tokens" if data["exact"] else "tokens (estimate)"
    simulate = data["kind"] == "simulate"
    totals = _totals_simulate(data, tok) if simulate else _totals_analyze(data, tok)
    retention = ""
    if simulate:
        retention = (
            '<section id="retention"><h2>Retention per policy</h2>'
            + _figure("retention", "Retention per policy over all sessions (target: 97%)")
            + "</section>"
        )
    body_attrs = (
        f'data-kind="{data["kind"]}" data-exact="{str(data["exact"]).lower()}" data-rendered="0"'
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f'<meta name="generator" content="ctxbudget {escape(data["version"])}">',
        f"<title>{escape(data['title'])}</title>",
        f"<style>\n{_asset('report.css')}</style>",
        f"</head><body {body_attrs}>",
        _header(data),
        '<div id="report-errors" role="alert" hidden></div>',
        '<noscript><p class="note">The charts need JavaScript; the tables are complete.</p>'
        "</noscript>",
        "<main>",
        f'<section id="totals"><h2>Totals</h2>{totals}</section>',
        _session_section(data),
        retention,
        f'<section id="sessions"><h2>Sessions</h2>{_sessions_table(data)}</section>',
        "</main>",
        f"<footer>Made by ctxbudget {escape(data['version'])}. This file is self-contained and "
        "reads nothing from the network.</footer>",
        f'<script type="application/json" id="ctxbudget-data">{_json_for_script(data)}</script>',
        f"<script>\n{_asset('report.js')}</script>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_html(data: Mapping[str, Any], path: str | Path) -> Path:
    """Render ``data`` and write it to ``path`` (UTF-8, ``\\n`` line ends); returns the path."""
    target = Path(path)
    page = render_html(data)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(page.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot write the report to {target}: {exc.strerror or exc}") from exc
    return target
