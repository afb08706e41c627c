"""Items: frozen data, lossless dict form, content keys, exchanges and orphans."""

from hypothesis import given
from hypothesis import strategies as st

from ctxbudget.session.exchanges import assign_exchanges, find_orphans
from ctxbudget.session.items import (
    Component,
    ImagePart,
    Item,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    content_key,
    item_from_dict,
    item_text,
    item_to_dict,
)


def _assistant(item_id: str, *call_ids: str) -> Item:
    return Item(
        id=item_id,
        role="assistant",
        component=Component.HISTORY,
        parts=(
            ReasoningPart(text="thinking", signature="sig"),
            *(ToolCallPart(id=c, name="bash", arguments='{"cmd": "ls"}') for c in call_ids),
        ),
    )


def _result(item_id: str, call_id: str) -> Item:
    return Item(
        id=item_id,
        role="tool",
        component=Component.TOOL_RESULTS,
        parts=(ToolResultPart(call_id=call_id, content="ok"),),
    )


def test_item_dict_round_trip_keeps_every_field() -> None:
    item = Item(
        id="m1",
        role="user",
        component=Component.HISTORY,
        parts=(
            TextPart(text="héllo", provider_details={"cache_control": {"type": "ephemeral"}}),
            ImagePart(url="https://example.com/a.png", detail="low"),
            ToolResultPart(call_id="c1", content=(TextPart(text="x"),), is_error=True),
        ),
        pinned=True,
        provider_details={"extra": {"k": 1}},
    )
    assert item_from_dict(item_to_dict(item)) == item


def test_content_key_ignores_id_and_flags_but_not_text() -> None:
    a = Item(id="a", role="user", component=Component.HISTORY, parts=(TextPart(text="x"),))
    assert content_key(a) == content_key(a.with_(id="b", pinned=True))
    assert content_key(a) != content_key(a.with_(parts=(TextPart(text="y"),)))
    assert content_key(a) != content_key(a.with_(role="assistant"))


def test_item_text_joins_parts() -> None:
    item = _assistant("a", "c1")
    assert item_text(item) == 'thinking\nbash({"cmd": "ls"})'


def test_parallel_calls_share_one_exchange() -> None:
    items = assign_exchanges(
        [_assistant("a", "c1", "c2"), _result("r1", "c1"), _result("r2", "c2")]
    )
    assert {i.exchange_id for i in items} == {"x:a"}
    assert not find_orphans(items)


def test_orphans_are_found_both_ways() -> None:
    orphans = find_orphans([_assistant("a", "c1", "c2"), _result("r1", "c1"), _result("r9", "c9")])
    assert orphans.calls_without_result == ("c2",)
    assert orphans.results_without_call == ("c9",)


def test_pending_calls_at_the_tail_are_allowed_only_when_asked() -> None:
    items = [_assistant("a", "c1")]
    assert not find_orphans(items)
    assert find_orphans(items, allow_pending_tail=False).calls_without_result == ("c1",)


@given(st.lists(st.integers(min_value=0, max_value=3), max_size=12))
def test_answered_conversations_have_no_orphans(call_counts: list[int]) -> None:
    items: list[Item] = []
    for turn, count in enumerate(call_counts):
        calls = [f"c{turn}_{k}" for k in range(count)]
        items.append(_assistant(f"a{turn}", *calls))
        items.extend(_result(f"r{turn}_{k}", c) for k, c in enumerate(calls))
    grouped = assign_exchanges(items)
    assert not find_orphans(grouped, allow_pending_tail=False)
    for item in grouped:
        if item.tool_results:
            owner = next(i for i in grouped if i.exchange_id == item.exchange_id)
            assert owner.role == "assistant"
