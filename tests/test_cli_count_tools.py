"""``ctxbudget count --tools``: each tool schema's tokens (labelled estimate) and dollars."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.budget.models import resolve_model
from ctxbudget.cli import main
from ctxbudget.scoping import read_tool_specs, tool_costs
from ctxbudget.tokens.counter import TokenCounter

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city. " * 8,
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    },
    {"type": "function", "function": {"name": "now", "description": "The time."}},
]


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    path = tmp_path / "request.json"
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS}
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def counter() -> TokenCounter:
    from ctxbudget.budget.accounting import counter_for

    return counter_for(resolve_model("gpt-4o"))


def test_json_lists_each_tool_and_the_parts_add_up(
    request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(capsys, "count", str(request_file), "--tools", "--json")
    assert code == 0, output
    data = json.loads(output)
    tools = data["tools"]
    assert [t["name"] for t in tools["per_tool"]] == ["get_weather", "now"]
    assert tools["total_tokens"] == data["tools_tokens"]
    owned = sum(t["tokens"] for t in tools["per_tool"])
    assert owned + tools["overhead_tokens"] == tools["total_tokens"]
    assert tools["exact"] is False
    assert all(t["exact"] is False for t in tools["per_tool"])
    weather, now = tools["per_tool"]
    assert weather["tokens"] > now["tokens"] > 0
    prices = resolve_model("gpt-4o").prices
    assert prices is not None
    assert prices.input is not None
    assert Decimal(weather["input_usd"]) == weather["tokens"] * prices.input / Decimal(1_000_000)
    assert Decimal(weather["cached_usd"]) < Decimal(weather["input_usd"])


def test_the_table_labels_estimates_and_shows_dollars(
    request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(capsys, "count", str(request_file), "--tools")
    assert code == 0, output
    assert "get_weather" in output
    assert "(estimate)" in output
    assert "$0.0" in output
    assert "all tools" in output


def test_without_the_flag_the_output_is_unchanged(
    request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(capsys, "count", str(request_file), "--json")
    assert code == 0, output
    assert "tools" not in json.loads(output)


def test_marginal_costs_match_counting_without_each_tool() -> None:
    specs = read_tool_specs(TOOLS)
    costs = tool_costs(counter(), specs, None)
    whole = counter().count_tools(specs).tokens
    assert costs.tools[0].tokens.tokens == whole - counter().count_tools(specs[1:]).tokens
    assert costs.tools[0].input_usd is None  # no prices: unpriced, never zero
