"""Framing rules beyond the cookbook examples: exactness per part, families, model names."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.budget.models import (
    encoding_for_model,
    family_for_model,
    framing_for_model,
    tokenizer_for_model,
)
from ctxbudget.errors import ConfigError, TokenizerError, UnknownModelError
from ctxbudget.session.items import (
    Component,
    DocumentPart,
    ImagePart,
    Item,
    Part,
    ReasoningPart,
    Role,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from ctxbudget.tokens import (
    FRAMINGS,
    EstimatingTokenizer,
    TiktokenTokenizer,
    TokenCount,
    TokenCounter,
    count_item,
    count_tools,
    get_framing,
    request_overhead,
    tokenizer_from_spec,
)
from ctxbudget.tokens.framing import tally_item

O200K = TiktokenTokenizer.load("o200k_base")


def item(*parts: Part, role: Role = "user", name: str | None = None) -> Item:
    return Item(id="x", role=role, component=Component.HISTORY, parts=parts, name=name)


def text(value: str) -> TextPart:
    return TextPart(text=value)


def test_plain_text_is_exact_for_verified_roles() -> None:
    for role in ("system", "user", "assistant"):
        assert count_item(item(text("hi"), role=role), O200K, "openai").exact
    assert count_item(item(), O200K, "openai") == TokenCount(3 + O200K.count("user"), True)


@pytest.mark.parametrize(
    "unpublished",
    [
        item(text("hi"), role="developer"),
        item(text("a"), text("b")),
        item(ToolCallPart(id="c1", name="get", arguments='{"q": 1}'), role="assistant"),
        item(ToolResultPart(call_id="c1", content="42"), role="tool"),
        item(ImagePart(url="https://example.com/cat.png")),
        item(DocumentPart(data="plain", media_type="text/plain")),
        item(ReasoningPart(text="thinking", signature="sig"), role="assistant"),
    ],
)
def test_everything_without_a_published_rule_is_an_estimate(unpublished: Item) -> None:
    counted = count_item(unpublished, O200K, "openai")
    assert counted.exact is False
    assert counted.tokens >= 3


def test_part_estimates() -> None:
    base = count_item(item(), O200K, "openai").tokens
    call = ToolCallPart(id="c1", name="get_weather", arguments='{"city": "Paris"}')
    expected_call = O200K.count("get_weather") + O200K.count('{"city": "Paris"}') + 8
    assert count_item(item(call), O200K, "openai").tokens == base + expected_call
    low = ImagePart(url="https://x/y.png", detail="low")
    assert count_item(item(low), O200K, "openai").tokens == base + 85
    assert count_item(item(ImagePart(url="https://x/y.png")), O200K, "openai").tokens == base + 765
    nested = ToolResultPart(call_id="c1", content=(text("sunny"), ImagePart(data="AAAA")))
    assert count_item(item(nested), O200K, "openai").tokens == base + O200K.count("sunny") + 765
    pdf = DocumentPart(data="A" * 4000, media_type="application/pdf", title="Report")
    assert count_item(item(pdf), O200K, "openai").tokens == base + O200K.count("Report") + 1000
    by_url = DocumentPart(url="https://x/doc.pdf")
    assert count_item(item(by_url), O200K, "openai").tokens == base + 1500
    hidden = ReasoningPart(text="", encrypted_content="x" * 1000)
    assert count_item(item(hidden), O200K, "openai").tokens == base


def test_gpt_4o_mini_images_cost_more() -> None:
    mini = framing_for_model("gpt-4o-mini-2024-07-18")
    assert (mini.image_tokens, mini.low_detail_image_tokens) == (25501, 2833)
    assert framing_for_model("gpt-4o").image_tokens == 765


def test_anthropic_is_an_estimate_with_the_documented_tool_prompt() -> None:
    est = EstimatingTokenizer(O200K, 1.3)
    message = item(text("The quick brown fox jumps over the lazy dog."))
    # 10 proxy tokens * 1.3 + 3 framing tokens (role not counted separately).
    assert count_item(message, est, "anthropic") == TokenCount(13 + 3, False)
    spec = ToolSpec(name="get_time", description="Current time", parameters={"type": "object"})
    tools = count_tools([spec], est, "anthropic")
    assert tools.exact is False
    assert tools.tokens > 346
    assert count_tools([], est, "anthropic") == TokenCount(0, True)
    assert request_overhead("anthropic") == TokenCount(3, False)


def test_framing_for_family_names() -> None:
    assert get_framing("gemini") is FRAMINGS["gemini"]
    assert get_framing(FRAMINGS["generic"]) is FRAMINGS["generic"]
    with pytest.raises(ConfigError, match="unknown provider family"):
        get_framing("mistral")


def test_nested_tool_schemas_are_counted_beyond_the_cookbook_rule() -> None:
    flat = ToolSpec(name="f", description="d", parameters={"properties": {"xs": {"type": "array"}}})
    nested = ToolSpec(
        name="f",
        description="d",
        parameters={"properties": {"xs": {"type": "array", "items": {"type": "string"}}}},
    )
    assert (
        count_tools([nested], O200K, "openai").tokens > count_tools([flat], O200K, "openai").tokens
    )


@pytest.mark.parametrize(
    ("model", "family", "encoding", "exact"),
    [
        ("gpt-4o", "openai", "o200k_base", True),
        ("gpt-4o-mini-2024-07-18", "openai", "o200k_base", True),
        ("openai/gpt-4o", "openai", "o200k_base", True),
        ("gpt-4", "openai", "cl100k_base", True),
        ("gpt-4-turbo", "openai", "cl100k_base", True),
        ("gpt-3.5-turbo-0125", "openai", "cl100k_base", True),
        ("gpt-4.1-mini", "openai", "o200k_base", False),
        ("gpt-5", "openai", "o200k_base", False),
        ("o3-mini", "openai", "o200k_base", False),
        ("o1", "openai", "o200k_base", False),
    ],
)
def test_openai_models(model: str, family: str, encoding: str, exact: bool) -> None:
    assert family_for_model(model) == family
    assert encoding_for_model(model) == encoding
    framing = framing_for_model(model)
    assert framing.messages_exact is exact
    assert framing.tool_rule is not None
    assert framing.tool_rule.func_init == (7 if encoding == "o200k_base" else 10)
    assert tokenizer_for_model(model).name == encoding


def test_estimated_models() -> None:
    assert family_for_model("claude-sonnet-4-5") == "anthropic"
    assert family_for_model("models/gemini-2.5-pro") == "gemini"
    assert tokenizer_for_model("claude-opus-4-1").exact is False
    assert framing_for_model("gemini-2.5-flash") is FRAMINGS["gemini"]
    with pytest.raises(UnknownModelError):
        family_for_model("llama-3-70b")
    with pytest.raises(UnknownModelError):
        encoding_for_model("claude-sonnet-4-5")


texts = st.text(max_size=60)
items_strategy = st.lists(
    st.builds(
        item,
        st.one_of(st.builds(text, texts), st.builds(ReasoningPart, text=texts)),
        role=st.sampled_from(["system", "user", "assistant", "developer", "tool"]),
        name=st.none() | st.text(max_size=8),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(items_strategy, st.sampled_from(["openai", "anthropic", "gemini", "generic"]))
def test_request_is_the_sum_of_its_parts(items: list[Item], family: str) -> None:
    tokenizer = EstimatingTokenizer(O200K, 1.17) if family in ("anthropic", "gemini") else O200K
    counter = TokenCounter(tokenizer, family)
    spec = ToolSpec(name="t", description="d", parameters={"properties": {"a": {"type": "x"}}})
    total = counter.count_request(items, [spec])
    parts = [count_item(i, tokenizer, family) for i in items]
    expected = sum(parts, count_tools([spec], tokenizer, family) + request_overhead(family))
    assert total == expected
    tallies = [tally_item(i, tokenizer, family) for i in items]
    assert all(t.raw >= 0 and t.fixed >= 0 for t in tallies)


def test_framing_with_a_family_from_the_registry() -> None:
    assert framing_for_model("my-azure-deployment", "openai").messages_exact is False
    assert framing_for_model("gpt-4o", "openai").messages_exact is True
    assert framing_for_model("my-claude", "anthropic") is FRAMINGS["anthropic"]


def test_tokenizer_from_registry_specs(tmp_path: Path) -> None:
    assert tokenizer_from_spec("cl100k_base").name == "cl100k_base"
    est = tokenizer_from_spec("estimate:o200k_base", factor=1.4)
    assert isinstance(est, EstimatingTokenizer)
    assert (est.factor, est.exact) == (1.4, False)
    with pytest.raises(ConfigError, match="applies only"):
        tokenizer_from_spec("o200k_base", factor=1.2)
    with pytest.raises(ConfigError, match="unknown encoding"):
        tokenizer_from_spec("p50k_base")
    with pytest.raises(TokenizerError):
        tokenizer_from_spec(f"hf:{tmp_path / 'missing.json'}")
