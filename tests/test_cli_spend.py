"""``ctxbudget spend``: set a limit, show spend, against each backend."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

import ctxbudget.cli.spend  # noqa: F401  (registers the command group)
from _stores import store_url
from ctxbudget.cli import app, main
from ctxbudget.spend import SpendGuard, Tags, open_ledger

__all__ = ["store_url"]


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_set_limit_then_show(store_url: str) -> None:
    out = _run(
        "spend",
        "set-limit",
        "--scope",
        "team",
        "--key",
        "research",
        "--period",
        "day",
        "--usd",
        "5",
        "--store",
        store_url,
        "--json",
    )
    assert json.loads(out)["usd"] == "5"
    guard = SpendGuard(open_ledger(store_url), Tags(team="research"), clock=lambda: 1.75e9)
    held = guard.reserve_amount(Decimal("0.25"), 100, model="m")
    shown = json.loads(_run("spend", "show", "--store", store_url, "--json"))
    assert shown["limits"][0]["scope"] == "team"
    team = [s for s in shown["spend"] if s["scope"] == "team" and s["period"] == "day"]
    assert team[0]["reserved_usd"] == "0.25"
    assert held.id
    text = _run("spend", "show", "--store", store_url)
    assert "research" in text
    assert "limits" in text
    removed = json.loads(
        _run(
            "spend",
            "set-limit",
            "--scope",
            "team",
            "--key",
            "research",
            "--period",
            "day",
            "--remove",
            "--store",
            store_url,
            "--json",
        )
    )
    assert removed["removed"] is True


def test_bad_limits_are_clear_errors(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["spend", "set-limit", "--scope", "planet", "--usd", "5", "--store", store_url])
    assert info.value.code == 2
    assert "spend scope 'planet'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["spend", "set-limit", "--scope", "team", "--usd", "five", "--store", store_url])
    assert "not an amount of dollars" in capsys.readouterr().err
