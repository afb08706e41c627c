"""The report data, and checking it before a page is drawn from it.

The data is one JSON object (money in USD, shares as fractions 0..1, ``null`` = unknown)::

    kind            "simulate" | "analyze"
    title, version, model, provider     strings ("" hides a header fact)
    exact           false: every token figure is labelled "estimate"
    components      [str]  stack order of the composition chart (colours follow it)
    policies        [str]  [] for analyze; line order and colours follow it
    default_policy  str, optional: whose retention the session table shows
                    (default "ctxbudget" when listed, else the last policy)
    probe_reader    str, optional (``ctxbudget probe --html``): who answered the probes
    totals          sessions, calls (int); recorded_cost, computed_cost (num|null)
                    components: {name: {tokens, cost|null}}          (analyze)
                    policies: {name: {input_tokens, peak, cached_share, input_cost|null,
                      output_cost|null, retention|null, line_retention|null (optional),
                      recalls (optional), compactions, vs_none|null (input cost over
                      none's: 0.58 = 42% cheaper; recall calls included), worse_than_none,
                      probe_accuracy|null (optional: share of probes answered)}}
    sessions        [{name, format, calls, model|null, recorded_cost|null,
                      computed_cost|null, cache_hit_rate|null,
                      composition: {component: [tokens of call i]} (one per call),
                      policies: {policy: {context: [tokens of call i], cumulative_cost:
                        [USD after call i] ([] when prices are unknown), compactions:
                        [{call (0-based index of the call it shaped), strategy,
                        tokens_before, tokens_after}], retention|null, line_retention|null
                        (optional), recalls (optional), input_tokens,
                        peak, cached_share, input_cost|null}}}]

Every policy needs its totals; a session may lack a policy or a component (it is not
drawn). Unknown extra keys are kept in the embedded JSON and otherwise ignored.

A missing key or a value of the wrong type raises :class:`~ctxbudget.errors.ConversionError`
(a ``UsageError``) whose ``path`` says where, e.g. ``report data
sessions[3].policies['none'].context: expected 42 values (one per call), got 41``, instead of
producing a page whose charts break in the browser.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from ctxbudget.errors import ConversionError

__all__ = ["KINDS", "validate"]

KINDS = ("simulate", "analyze")


def _fail(where: str, message: str) -> NoReturn:
    raise ConversionError(message, path=f"report data {where}" if where else "report data")


def _key(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        _fail(where, f"missing key {key!r}")
    return obj[key]


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(where, f"expected an object, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            _fail(where, f"keys must be strings, got {key!r}")
    return value


def _seq(value: Any, where: str, length: int | None = None) -> Sequence[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        _fail(where, f"expected a list, got {type(value).__name__}")
    if length is not None and len(value) != length:
        _fail(where, f"expected {length} values (one per call), got {len(value)}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_num_or_null(value: Any) -> bool:
    return value is None or _is_num(value)


def _each(values: Sequence[Any], where: str, test: Callable[[Any], bool], expected: str) -> None:
    """Check every value of a per-call list; name the first bad one by its index."""
    for i, value in enumerate(values):
        if not test(value):
            _fail(f"{where}[{i}]", f"expected {expected}, got {value!r}")


def _check(obj: Mapping[str, Any], where: str, **fields: str) -> None:
    """Check ``obj[name]`` for each ``name=type``: str, bool, int (>= 0), num or num? (or null)."""
    tests: dict[str, tuple[Callable[[Any], bool], str]] = {
        "str": (lambda v: isinstance(v, str), "a string"),
        "str?": (lambda v: v is None or isinstance(v, str), "a string or null"),
        "bool": (lambda v: isinstance(v, bool), "true or false"),
        "int": (_is_int, "a whole number >= 0"),
        "num": (_is_num, "a finite number"),
        "num?": (_is_num_or_null, "a finite number or null"),
    }
    for name, kind in fields.items():
        value = _key(obj, name, where)
        test, expected = tests[kind]
        if not test(value):
            _fail(f"{where}.{name}".lstrip("."), f"expected {expected}, got {value!r}")


def _names(value: Any, where: str) -> list[str]:
    names = list(_seq(value, where))
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            _fail(f"{where}[{i}]", f"expected a non-empty string, got {name!r}")
    if len(set(names)) != len(names):
        _fail(where, "names must be unique")
    return names


def _known(names: Mapping[str, Any], allowed: list[str], where: str, listed_in: str) -> None:
    for name in names:
        if name not in allowed:
            _fail(where, f"unknown name {name!r}: it must be listed in the top-level {listed_in!r}")


def _check_session(
    s: Mapping[str, Any], where: str, components: list[str], policies: list[str]
) -> None:
    _check(s, where, name="str", format="str", calls="int", model="str?")
    _check(s, where, recorded_cost="num?", computed_cost="num?", cache_hit_rate="num?")
    calls: int = s["calls"]
    composition = _mapping(_key(s, "composition", where), f"{where}.composition")
    _known(composition, components, f"{where}.composition", "components")
    for name, values in composition.items():
        at = f"{where}.composition[{name!r}]"
        _each(_seq(values, at, calls), at, _is_int, "a whole number of tokens >= 0")
    session_policies = _mapping(_key(s, "policies", where), f"{where}.policies")
    _known(session_policies, policies, f"{where}.policies", "policies")
    for name, raw in session_policies.items():
        at = f"{where}.policies[{name!r}]"
        p = _mapping(raw, at)
        _check(p, at, input_tokens="int", peak="int", cached_share="num")
        _check(p, at, retention="num?", input_cost="num?")
        context = _seq(_key(p, "context", at), f"{at}.context", calls)
        _each(context, f"{at}.context", _is_int, "a whole number of tokens >= 0")
        costs = _seq(_key(p, "cumulative_cost", at), f"{at}.cumulative_cost")
        if costs:  # empty when the model has no known prices
            _seq(costs, f"{at}.cumulative_cost", calls)
        _each(costs, f"{at}.cumulative_cost", _is_num_or_null, "a number (USD) or null")
        for i, raw_event in enumerate(_seq(_key(p, "compactions", at), f"{at}.compactions")):
            event_at = f"{at}.compactions[{i}]"
            event = _mapping(raw_event, event_at)
            _check(event, event_at, call="int", strategy="str", tokens_before="int")
            _check(event, event_at, tokens_after="int")
            if event["call"] >= calls:
                _fail(f"{event_at}.call", f"call index {event['call']} is past the {calls} calls")


def validate(data: Mapping[str, Any]) -> None:
    """Raise :class:`ConversionError` naming the first missing key or wrong value in ``data``."""
    data = _mapping(data, "")
    _check(data, "", kind="str", title="str", version="str", model="str", provider="str")
    _check(data, "", exact="bool")
    if data["kind"] not in KINDS:
        _fail("kind", f"expected one of {', '.join(KINDS)}, got {data['kind']!r}")
    components = _names(_key(data, "components", ""), "components")
    policies = _names(_key(data, "policies", ""), "policies")
    if data["kind"] == "simulate" and not policies:
        _fail("policies", "a simulate report needs at least one policy")
    default = data.get("default_policy")
    if default is not None and default not in policies:
        _fail("default_policy", f"{default!r} is not one of the policies")
    totals = _mapping(_key(data, "totals", ""), "totals")
    _check(
        totals, "totals", sessions="int", calls="int", recorded_cost="num?", computed_cost="num?"
    )
    comp_totals = _mapping(_key(totals, "components", "totals"), "totals.components")
    _known(comp_totals, components, "totals.components", "components")
    for name, raw in comp_totals.items():
        _check(
            _mapping(raw, f"totals.components[{name!r}]"),
            f"totals.components[{name!r}]",
            tokens="int",
            cost="num?",
        )
    pol_totals = _mapping(_key(totals, "policies", "totals"), "totals.policies")
    _known(pol_totals, policies, "totals.policies", "policies")
    for name in policies:
        at = f"totals.policies[{name!r}]"
        p = _mapping(_key(pol_totals, name, "totals.policies"), at)
        _check(p, at, input_tokens="int", peak="int", cached_share="num", input_cost="num?")
        _check(p, at, output_cost="num?", retention="num?", compactions="int", vs_none="num?")
        _check(p, at, worse_than_none="int")
        if "probe_accuracy" in p:
            _check(p, at, probe_accuracy="num?")
    if "probe_reader" in data:
        _check(data, "", probe_reader="str")
    for i, raw in enumerate(_seq(_key(data, "sessions", ""), "sessions")):
        _check_session(_mapping(raw, f"sessions[{i}]"), f"sessions[{i}]", components, policies)
