"""Model registry: profile matching, genai-prices data, family defaults, sources of each
figure, explicit settings, errors, the catalog of every known model."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import data_snapshot

from ctxbudget.budget.catalog import known_models
from ctxbudget.budget.models import (
    FAMILY_DEFAULT,
    GIVEN,
    PRICE_DATA,
    PROFILES,
    REGISTRY,
    UNKNOWN,
    FigureSources,
    ModelSpec,
    Prices,
    encoding_for_model,
    family_for_model,
    known_model_names,
    list_models,
    resolve_model,
    tokenizer_for_model,
)
from ctxbudget.errors import ConfigError, UnknownModelError

AT = datetime(2026, 1, 15, tzinfo=UTC)


def _genai_price(provider: str, model: str, key: str) -> Decimal:
    snapshot = data_snapshot.get_snapshot()
    _, info = snapshot.find_provider_model(model, None, provider, None)
    value = getattr(info.get_prices(AT), key)
    return getattr(value, "base", value)


def test_gpt_4o_limits_tokenizer_and_prices() -> None:
    spec = resolve_model("gpt-4o", at=AT)
    assert (spec.provider, spec.context_window, spec.max_output_tokens) == (
        "openai",
        128_000,
        16_384,
    )
    assert (spec.tokenizer, spec.family, spec.estimate_factor) == ("o200k_base", "openai", 1.0)
    assert spec.exact_tokenizer
    assert spec.encoding == "o200k_base"
    assert spec.hf_tokenizer_path is None
    assert spec.prices is not None
    assert spec.prices.input == Decimal("2.5") == _genai_price("openai", "gpt-4o", "input_mtok")
    assert spec.prices.output == _genai_price("openai", "gpt-4o", "output_mtok")
    assert spec.prices.cache_read == _genai_price("openai", "gpt-4o", "cache_read_mtok")
    assert spec.prices.cache_write_5m is None  # not listed, never 0
    assert spec.pricing_id == "openai/gpt-4o"
    assert "genai-prices" in spec.prices.source


@pytest.mark.parametrize(
    ("name", "profile", "max_output"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o", 16_384),
        ("openai/gpt-4o", "gpt-4o", 16_384),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13", 4_096),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini", 16_384),
        ("gpt-4.1-2025-04-14", "gpt-4.1", 32_768),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini", 128_000),
        ("o3-2025-04-16", "o3", 100_000),
        ("o4-mini", "o4-mini", 100_000),
        ("gpt-4-0613", "gpt-4", 8_192),
        ("gpt-4-1106-preview", "gpt-4-turbo", 4_096),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo", 4_096),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", 64_000),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", 64_000),
        ("claude-opus-4-1-20250805", "claude-opus-4-1", 32_000),
        ("claude-opus-4-20250514", "claude-opus-4", 32_000),
        ("claude-sonnet-4-20250514", "claude-sonnet-4", 64_000),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5", 64_000),
        ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet", 64_000),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet", 8_192),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku", 8_192),
        ("claude-opus-4-6", "claude-opus-4-6", 128_000),
        ("gemini-2.5-pro", "gemini-2.5-pro", 65_536),
        ("gemini/gemini-2.5-flash", "gemini-2.5-flash", 65_536),
        ("gemini-2.5-pro-preview-05-06", "gemini-2.5-pro", 65_536),
        ("gemini-2.0-flash-001", "gemini-2.0-flash", 8_192),
        ("GPT-4o", "gpt-4o", 16_384),
    ],
)
def test_names_match_profiles(name: str, profile: str, max_output: int) -> None:
    spec = resolve_model(name, at=AT)
    assert spec.profile == profile
    assert spec.max_output_tokens == max_output
    assert spec.prices is not None


def test_provider_prefix_is_stripped_and_kept_as_provider() -> None:
    spec = resolve_model("openai/gpt-4o-2024-08-06", at=AT)
    assert spec.name == "gpt-4o-2024-08-06"
    assert spec.provider == "openai"
    azure = resolve_model("azure/gpt-4o", at=AT)
    assert (azure.provider, azure.family, azure.profile) == ("azure", "openai", "gpt-4o")


def test_claude_is_an_estimate_with_cache_write_prices_and_tiers() -> None:
    spec = resolve_model("claude-sonnet-4-5-20250929", at=AT)
    assert spec.provider == "anthropic"
    assert spec.family == "anthropic"
    assert spec.tokenizer == "estimate:o200k_base"
    assert not spec.exact_tokenizer
    assert spec.encoding == "o200k_base"
    assert 1.1 <= spec.estimate_factor <= 1.3
    assert spec.prices is not None
    assert spec.prices.input == _genai_price("anthropic", "claude-sonnet-4-5", "input_mtok")
    assert spec.prices.cache_write_5m == Decimal("3.75")
    assert spec.prices.cache_write_1h == Decimal("6")
    assert spec.prices.tiered_above == 200_000
    assert spec.prices.notes
    later = resolve_model("claude-opus-4-7", at=AT)
    assert later.estimate_factor > spec.estimate_factor  # the newer tokenizer yields more


def test_window_falls_back_to_the_profile_when_genai_prices_has_none() -> None:
    spec = resolve_model("gemini-2.5-pro", at=AT)
    assert spec.context_window == 1_048_576
    assert spec.family == "gemini"
    assert spec.prices is not None
    assert spec.prices.tiered_above == 200_000


def test_any_model_works_with_explicit_settings() -> None:
    spec = resolve_model(
        "my-llama", context_window=8192, max_output_tokens=1024, tokenizer="hf:/p/tokenizer.json"
    )
    assert (spec.name, spec.provider, spec.family) == ("my-llama", "custom", "generic")
    assert spec.exact_tokenizer
    assert spec.hf_tokenizer_path == "/p/tokenizer.json"
    assert spec.encoding is None
    assert spec.prices is None
    assert spec.profile is None
    default_tok = resolve_model("my-llama", context_window=8192, max_output_tokens=1024)
    assert default_tok.tokenizer == "estimate:o200k_base"
    assert not default_tok.exact_tokenizer


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(UnknownModelError) as info:
        resolve_model("claude-sonet-4-5")
    assert "claude-sonnet-4-5" in info.value.suggestions
    assert "claude-sonnet-4-5" in str(info.value)
    with pytest.raises(UnknownModelError) as info:
        resolve_model("gpt-4oo")
    assert "gpt-4o" in info.value.suggestions
    with pytest.raises(UnknownModelError):
        resolve_model("my-llama")
    with pytest.raises(UnknownModelError):
        resolve_model("my-llama", context_window=8192)  # output limit still unknown


def test_model_known_only_to_genai_prices_takes_family_defaults() -> None:
    spec = resolve_model("gpt-5.5", at=AT)
    assert spec.context_window == 1_000_000  # from genai-prices
    assert spec.max_output_tokens == 128_000  # the gpt-5 family default
    assert spec.sources.max_output_tokens == FAMILY_DEFAULT
    assert spec.tokenizer == "o200k_base"
    assert spec.prices is not None
    assert spec.prices.tiered_above is not None
    given = resolve_model("gpt-5.5", max_output_tokens=100_000, at=AT)
    assert (given.max_output_tokens, given.sources.max_output_tokens) == (100_000, GIVEN)
    assert "max_output_tokens" not in given.sources.estimates


@pytest.mark.parametrize(
    ("name", "provider", "family"),
    [
        ("claude-opus-5-5", "anthropic", "claude"),
        ("gpt-5.3-codex", "openai", "gpt-5"),
        ("gpt-5.1-codex-mini", "openai", "gpt-5"),
        ("gpt-5.4-mini", "openai", "gpt-5"),
    ],
)
def test_models_the_price_data_prices_resolve_with_labelled_figures(
    name: str, provider: str, family: str
) -> None:
    spec = resolve_model(name, at=AT)
    assert (spec.provider, spec.pricing_id, spec.profile) == (provider, f"{provider}/{name}", None)
    assert spec.family_default == family
    assert spec.prices is not None
    for ours, theirs in (
        ("input", "input_mtok"),
        ("output", "output_mtok"),
        ("cache_read", "cache_read_mtok"),
    ):
        assert getattr(spec.prices, ours) == _genai_price(provider, name, theirs), ours
    assert spec.sources.prices == PRICE_DATA
    snapshot = data_snapshot.get_snapshot()
    _, info = snapshot.find_provider_model(name, None, provider, None)
    assert spec.context_window == info.context_window
    assert spec.sources.context_window == PRICE_DATA
    assert spec.sources.max_output_tokens == FAMILY_DEFAULT  # genai-prices has no output limit
    assert "max_output_tokens" in spec.sources.estimates
    assert spec.max_output_tokens <= spec.context_window


def test_claude_code_default_is_a_claude_with_the_newer_tokenizer() -> None:
    spec = resolve_model("claude-opus-5-5-20260101", at=AT)  # a dated snapshot of it too
    assert (spec.family, spec.tokenizer) == ("anthropic", "estimate:o200k_base")
    assert spec.estimate_factor == resolve_model("claude-opus-4-7").estimate_factor
    assert spec.sources.tokenizer == "family default (estimate)"
    assert (spec.context_window, spec.max_output_tokens) == (1_000_000, 64_000)
    assert spec.prices is not None
    assert spec.prices.cache_write_5m is not None  # Anthropic lists cache writes


def test_openai_family_default_tokenizer_is_its_encoding() -> None:
    spec = resolve_model("gpt-5.3-codex", at=AT)
    assert spec.tokenizer == "o200k_base"
    assert spec.exact_tokenizer
    assert spec.sources.tokenizer == "family default"
    assert family_for_model("gpt-5.3-codex") == "openai"
    assert encoding_for_model("openai/gpt-5.1-codex-mini") == "o200k_base"
    assert tokenizer_for_model("gpt-5.4-mini").exact
    assert not tokenizer_for_model("claude-opus-5-5").exact


def test_window_missing_from_the_price_data_is_a_family_default() -> None:
    spec = resolve_model("gemini-3-pro-preview", at=AT)
    assert spec.sources.context_window == FAMILY_DEFAULT
    assert spec.sources.prices == PRICE_DATA
    assert (spec.family, spec.family_default) == ("gemini", "gemini")
    other = resolve_model("deepseek-chat", at=AT)  # priced, of no known family
    assert other.family_default == "generic"
    assert other.sources.context_window == PRICE_DATA
    assert other.sources.max_output_tokens == FAMILY_DEFAULT
    assert other.sources.tokenizer == "generic default (estimate)"


def test_registry_figures_say_so() -> None:
    spec = resolve_model("gpt-4o", at=AT)
    assert spec.sources == FigureSources(
        context_window=PRICE_DATA,
        max_output_tokens=REGISTRY,
        tokenizer=REGISTRY,
        prices=PRICE_DATA,
    )
    assert spec.sources.estimates == ()
    assert spec.family_default is None
    assert resolve_model("gemini-2.5-pro").sources.context_window == REGISTRY
    sheet = resolve_model("gpt-4o", prices={"input": 2}, context_window=64_000, at=AT)
    assert sheet.sources.prices == "price data + given"
    assert sheet.sources.context_window == GIVEN


def test_a_model_nobody_knows_has_no_window_and_no_prices() -> None:
    with pytest.raises(UnknownModelError):
        resolve_model("claude-opus-9", at=AT)  # looks like a Claude: still nobody's model
    spec = resolve_model("claude-opus-9", context_window=200_000, max_output_tokens=8_000)
    assert spec.prices is None  # never another Claude's prices
    assert spec.sources.prices == UNKNOWN
    assert spec.pricing_id is None
    assert spec.provider == "anthropic"  # counted as a Claude (labelled)
    assert spec.sources.tokenizer == "family default (estimate)"


def test_the_catalog_lists_every_model_of_the_price_data() -> None:
    from genai_prices.data import providers

    everything = known_models(at=AT)
    ids = {s.pricing_id for s in everything}
    for provider in providers:
        for info in provider.models:
            assert f"{provider.id}/{info.id}" in ids
    assert {p.name for p in PROFILES} <= {s.profile for s in everything}
    for spec in everything:
        assert spec.max_output_tokens <= spec.context_window
        assert spec.sources.prices in (PRICE_DATA, UNKNOWN)
    codex = [s.pricing_id for s in known_models("codex", at=AT)]
    assert "openai/gpt-5.3-codex" in codex
    assert all("codex" in (i or "") for i in codex)
    assert [s.name for s in known_models("claude-opus-5-5", at=AT)][:1] == ["claude-opus-5-5"]
    assert known_models("openai/gpt-5.1-codex-m*", at=AT)[0].pricing_id == (
        "openai/gpt-5.1-codex-mini"
    )
    assert known_models("acme-model-1", at=AT) == []


def test_overrides_win_over_the_registry() -> None:
    spec = resolve_model(
        "gpt-4o",
        context_window=64_000,
        max_output_tokens=4_000,
        family="generic",
        prices={"input": "2", "cache_write_5m": 3},
        at=AT,
    )
    assert (spec.context_window, spec.max_output_tokens, spec.family) == (64_000, 4_000, "generic")
    assert spec.prices is not None
    assert spec.prices.input == Decimal("2")
    assert spec.prices.cache_write_5m == Decimal("3")
    assert spec.prices.output == Decimal("10")  # not overridden: from the registry
    assert spec.prices.source.endswith("override")
    sheet = Prices(input=Decimal("1"), output=Decimal("4"))
    assert resolve_model("claude-haiku-4-5", prices=sheet).prices == sheet


def test_tokenizer_override_resets_the_proxy_factor() -> None:
    spec = resolve_model("claude-sonnet-4-5", tokenizer="hf:/claude/tokenizer.json")
    assert spec.exact_tokenizer
    assert spec.estimate_factor == 1.0
    custom = resolve_model("claude-sonnet-4-5", estimate_factor=1.17)
    assert custom.estimate_factor == 1.17


@pytest.mark.parametrize(
    "overrides",
    [
        {"prices": {"inptu": 1}},
        {"prices": {"input": "cheap"}},
        {"prices": {"input": -1}},
        {"tokenizer": "p50k_base"},
        {"tokenizer": "hf:"},
        {"tokenizer": "estimate:hf:/x"},
        {"max_output_tokens": 200_000},
        {"max_output_tokens": 0},
        {"context_window": -5},
        {"family": "mistral"},
        {"estimate_factor": 1.2, "tokenizer": "o200k_base"},
        {"estimate_factor": 0.0},
    ],
)
def test_bad_settings_raise_config_errors(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        resolve_model("gpt-4o", **overrides)  # type: ignore[arg-type]


def test_model_spec_validates_directly() -> None:
    with pytest.raises(ConfigError, match="max_output_tokens"):
        ModelSpec(
            name="m",
            provider="x",
            context_window=100,
            max_output_tokens=200,
            tokenizer="o200k_base",
        )
    with pytest.raises(ConfigError, match="name"):
        resolve_model("  ")
    with pytest.raises(ConfigError, match="Decimal"):
        Prices(input=2.5)  # type: ignore[arg-type]


def test_list_models_resolves_every_profile() -> None:
    specs = list_models(at=AT)
    assert len(specs) == len(PROFILES)
    assert [s.name for s in specs] == [s.profile for s in specs]
    assert len({s.name for s in specs}) == len(specs)
    for spec in specs:
        assert spec.prices is not None, spec.name
        assert spec.prices.input is not None, spec.name
        assert spec.max_output_tokens <= spec.context_window
        assert spec.pricing_id is not None
    names = known_model_names()
    assert list(names) == sorted(names)
    assert "claude-3-7-sonnet-latest" in names


def test_only_embedded_prices_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    empty = data_snapshot.DataSnapshot(providers=[], from_auto_update=True)
    monkeypatch.setattr(data_snapshot, "_custom_snapshot", empty)
    spec = resolve_model("gpt-4o", at=AT)
    assert spec.prices is not None
    assert spec.prices.input == Decimal("2.5")
