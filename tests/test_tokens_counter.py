"""TokenCounter: each content tokenized once, cached counts, factor applied after the cache."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ctxbudget.errors import ConfigError
from ctxbudget.session.items import Component, Item, TextPart, ToolSpec
from ctxbudget.tokens import (
    CacheInfo,
    EstimatingTokenizer,
    TiktokenTokenizer,
    TokenCount,
    TokenCounter,
    count_item,
)

O200K = TiktokenTokenizer.load("o200k_base")


@dataclass
class Spy:
    """A tokenizer that records what it was asked to count (one token per word)."""

    name: str = "spy"
    exact: bool = True
    calls: list[str] = field(default_factory=list)

    def count(self, text: str) -> int:
        self.calls.append(text)
        return len(text.split())


def msg(content: str, *, id: str = "m", role: str = "user") -> Item:
    return Item(id=id, role=role, component=Component.HISTORY, parts=(TextPart(text=content),))  # type: ignore[arg-type]


def test_second_count_of_the_same_item_does_not_tokenize() -> None:
    spy = Spy()
    counter = TokenCounter(spy, "openai")
    message = msg("one two three")
    first = counter.count_item(message)
    content_calls = [c for c in spy.calls if c == "one two three"]
    assert len(content_calls) == 1
    spy.calls.clear()
    assert counter.count_item(message) == first
    assert spy.calls == []
    assert counter.cache_info() == CacheInfo(hits=1, misses=1, size=1)


def test_equal_content_with_another_id_is_counted_once() -> None:
    spy = Spy()
    counter = TokenCounter(spy, "openai")
    counter.count_item(msg("same words here", id="a"))
    spy.calls.clear()
    counter.count_item(msg("same words here", id="b"))  # rebuilt from storage, new id
    assert spy.calls == []
    counter.count_item(msg("different words", id="c"))
    assert spy.calls == ["different words"]  # role count is memoized too


def test_appending_costs_only_the_new_message() -> None:
    spy = Spy()
    counter = TokenCounter(spy, "openai")
    history = [msg(f"message number {i}", id=str(i)) for i in range(50)]
    counter.count_items(history)
    spy.calls.clear()
    history.append(msg("the new one", id="new"))
    counter.count_items(history)
    assert spy.calls == ["the new one"]


def test_counts_equal_the_uncached_function() -> None:
    counter = TokenCounter(O200K, "openai")
    for content in ("hello", "hello world", "", "x" * 1000):
        message = msg(content)
        assert counter.count_item(message) == count_item(message, O200K, "openai")
        assert counter.count_item(message) == count_item(message, O200K, "openai")


def test_cache_is_bounded_least_recently_used_first() -> None:
    spy = Spy()
    counter = TokenCounter(spy, "openai", max_items=2)
    a, b, c = msg("a a", id="a"), msg("b b", id="b"), msg("c c", id="c")
    counter.count_item(a)
    counter.count_item(b)
    counter.count_item(msg("a a", id="a2"))  # refreshes "a a" by content
    counter.count_item(c)  # evicts "b b"
    assert counter.cache_info().size == 2
    spy.calls.clear()
    counter.count_item(msg("a a", id="a3"))
    assert spy.calls == []
    counter.count_item(msg("b b", id="b2"))
    assert spy.calls == ["b b"]


def test_unbounded_and_invalid_bounds() -> None:
    counter = TokenCounter(Spy(), "openai", max_items=None)
    for i in range(100):
        counter.count_item(msg(f"w{i}", id=str(i)))
    assert counter.cache_info().size == 100
    with pytest.raises(ConfigError, match="max_items"):
        TokenCounter(Spy(), "openai", max_items=0)
    counter.clear()
    assert counter.cache_info().size == 0


def test_count_text_is_the_fast_path_without_framing() -> None:
    counter = TokenCounter(O200K, "openai")
    assert counter.count_text("hello world") == TokenCount(2, True)
    estimate = TokenCounter(EstimatingTokenizer(O200K, 1.5), "anthropic")
    assert estimate.count_text("hello world") == TokenCount(3, False)


def test_new_factor_applies_to_cached_counts_without_retokenizing() -> None:
    spy = Spy(exact=True)
    counter = TokenCounter(EstimatingTokenizer(spy, 1.0), "anthropic")
    message = msg(" ".join(["w"] * 100))
    assert counter.count_item(message) == TokenCount(100 + 3, False)
    spy.calls.clear()
    counter.set_factor(1.25)
    assert counter.factor == 1.25
    assert counter.count_item(message) == TokenCount(125 + 3, False)
    assert spy.calls == []


def test_factor_validation() -> None:
    with pytest.raises(ConfigError, match="positive finite"):
        TokenCounter(EstimatingTokenizer(O200K, 1.2), "anthropic").set_factor(0.0)
    with pytest.raises(ConfigError, match="exact"):
        TokenCounter(O200K, "openai").set_factor(1.1)


def test_tally_request_splits_raw_and_fixed() -> None:
    counter = TokenCounter(EstimatingTokenizer(O200K, 1.3), "anthropic")
    items = [msg("hello world", id="1"), msg("The quick brown fox", id="2")]
    spec = ToolSpec(name="f", description="g", parameters={})
    tally = counter.tally_request(items, [spec])
    raw_text = O200K.count("hello world") + O200K.count("The quick brown fox")
    raw_tool = O200K.count('{"name":"f","description":"g","parameters":{}}')
    assert tally.raw == raw_text + raw_tool
    assert tally.fixed == 3 + 3 + 346 + 3  # two messages, tool-use prompt, reply priming
    assert tally.exact is False
    # Each item is rounded up on its own: at most one token per term above the whole.
    whole = tally.total(1.3).tokens
    assert whole <= counter.count_request(items, [spec]).tokens <= whole + 3


def test_tools_are_cached_by_schema() -> None:
    spy = Spy()
    counter = TokenCounter(spy, "openai")
    spec = ToolSpec(name="f", description="Does f.", parameters={"properties": {"a": {}}})
    first = counter.count_tools([spec])
    spy.calls.clear()
    assert counter.count_tools([spec]) == first
    assert spy.calls == []
    assert counter.count_tools([]) == TokenCount(0, True)
