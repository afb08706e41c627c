"""``ctxbudget models``: every known model, its limits and prices, and each figure's source."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from genai_prices import data_snapshot

from test_cli import run


def _listed(provider: str, model: str) -> tuple[int | None, Decimal, Decimal]:
    _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    prices = info.get_prices(None)
    return info.context_window, prices.input_mtok, prices.output_mtok


def test_models_json_gives_figures_prices_and_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "models", "codex", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["count"] == len(data["models"]) > 0
    by_id = {m["pricing_id"]: m for m in data["models"]}
    codex = by_id["openai/gpt-5.3-codex"]
    window, input_price, output_price = _listed("openai", "gpt-5.3-codex")
    assert codex["context_window"] == window
    assert codex["prices"]["input"] == float(input_price)
    assert codex["prices"]["output"] == float(output_price)
    assert codex["sources"] == {
        "context_window": "price data",
        "max_output_tokens": "family default (estimate)",
        "tokenizer": "family default",
        "prices": "price data",
    }
    assert codex["estimates"] == ["max_output_tokens"]
    assert codex["family_default"] == "gpt-5"
    assert "openai/gpt-5.1-codex-mini" in by_id


def test_models_lists_the_registry_and_the_price_data(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "models", "--json")
    assert code == 0, err
    models = json.loads(out)["models"]
    ids = {m["pricing_id"] for m in models}
    assert {"anthropic/claude-opus-5-5", "openai/gpt-5.4-mini", "openai/gpt-4o"} <= ids
    sonnet = next(m for m in models if m["profile"] == "claude-sonnet-4-5")
    assert sonnet["sources"]["max_output_tokens"] == "registry"
    assert sonnet["estimates"] == []


def test_models_table_marks_estimates_and_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "models", "claude-opus-5-5")
    assert code == 0, err
    row = next(line for line in out.splitlines() if "│ anthropic" in line)
    assert "claude-opus-5-5" in row
    assert "1,000,000" in row
    assert "64,000 ~" in row  # the output limit is a family default
    assert "P/F~/F~/P" in row  # window from the price data, prices too
    for text in ("R registry", "P price data", "F family default", "~ marks an estimate"):
        assert text in out


def test_models_with_no_match_says_how_to_price_an_unknown_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "models", "acme-model-1", "--json")
    assert code == 0, err
    assert json.loads(out) == {"count": 0, "models": []}
    assert "--price" in err
