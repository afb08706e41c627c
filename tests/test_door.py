"""The door: what no provider accepts is refused (or repaired as stated), never logged.

Each bad input of ``docs/bad-input.md`` (API part) is tried here: the error names the
message and the field, the batch leaves no trace, and the next ``prepare`` works. Then the
way back (``retract``), and Anthropic bodies whose roles alternate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _valid import check_both_providers
from ctxbudget import ContextManager
from ctxbudget.engine.door import UNANSWERED_NOTE
from ctxbudget.errors import ContextOverflow, ConversionError, UsageError
from ctxbudget.session.items import item_text

SURROGATE = json.loads('"name-\\ud83d.txt"')  # a lone surrogate, as json.loads gives it


def call(call_id: str, name: str = "read_file") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def asks(*ids: str) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [call(i) for i in ids]}


def result(call_id: str, text: str = "ok") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def manager(**settings: Any) -> ContextManager:
    mgr = ContextManager("gpt-4o", **settings)
    mgr.extend([{"role": "system", "content": "You fix bugs."}, {"role": "user", "content": "go"}])
    return mgr


def refused(mgr: ContextManager, messages: list[dict[str, Any]], *expected: str) -> str:
    before = len(mgr.log)
    with pytest.raises(ConversionError) as caught:
        mgr.extend(messages)
    assert len(mgr.log) == before  # nothing of the batch entered
    for text in expected:
        assert text in str(caught.value)
    check_both_providers(mgr)
    return str(caught.value)


# -- refused ---------------------------------------------------------------------------------


def test_a_lone_surrogate_is_refused_at_its_field() -> None:
    mgr = manager()
    message = refused(
        mgr, [{"role": "user", "content": f"open {SURROGATE}"}], "messages[0].content", "Unicode"
    )
    assert "repair=True" in message
    refused(
        mgr,
        [
            asks("c1"),
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [{"type": "text", "text": SURROGATE}],
            },
        ],
        "messages[1].content[0].text",
    )


def test_a_surrogate_in_an_imported_item_is_refused_too() -> None:
    mgr = manager()
    donor = ContextManager("gpt-4o")
    (item,) = donor.extend([{"role": "user", "content": "fine"}])
    bad = item.with_(id="imported-1", parts=(item.parts[0].__class__(text=SURROGATE),))
    with pytest.raises(ConversionError, match="Unicode"):
        mgr.extend([bad])
    check_both_providers(mgr)


def test_nesting_past_the_limit_is_refused_without_recursion() -> None:
    deep: Any = "leaf"
    for _ in range(5_000):
        deep = {"k": deep}
    mgr = manager()
    refused(mgr, [{"role": "user", "content": "x", "metadata": deep}], "nested more than")


def test_a_result_without_its_call_is_refused() -> None:
    mgr = manager()
    refused(mgr, [result("nope")], "messages[0]", "'nope'", "no earlier message")
    mgr.extend([asks("c1"), result("c1")])
    refused(mgr, [result("c1")], "already has its result")


def test_a_call_id_twice_in_one_turn_is_refused() -> None:
    mgr = manager()
    refused(mgr, [asks("c1", "c1")], "'c1'", "twice in one turn")
    mgr.extend([asks("c2")])
    refused(mgr, [asks("c2")], "calls ['c2'] are unanswered")


def test_a_message_while_calls_are_unanswered_is_refused() -> None:
    mgr = manager()
    mgr.extend([asks("a", "b"), result("a")])
    message = refused(mgr, [{"role": "user", "content": "and?"}], "messages[0]", "['b']")
    assert "append their results first" in message
    mgr.extend([result("b"), {"role": "user", "content": "and?"}])
    check_both_providers(mgr)


def test_an_empty_call_id_is_refused() -> None:
    refused(manager(), [asks("")], "empty id")


def test_a_batch_is_all_or_nothing() -> None:
    mgr = manager()
    refused(mgr, [asks("c1"), result("c1"), result("c9")], "messages[2]")
    mgr.extend([asks("c1"), result("c1")])  # the ids of the refused batch are free
    check_both_providers(mgr)


def test_a_single_message_dict_to_extend_says_so() -> None:
    with pytest.raises(UsageError, match="single dict; use append"):
        manager().extend({"role": "user", "content": "hi"})  # type: ignore[arg-type]


def test_a_non_dict_message_names_its_index() -> None:
    with pytest.raises(ConversionError, match=r"messages\[1\]: expected a message object"):
        manager().extend([{"role": "user", "content": "hi"}, "hello"])  # type: ignore[list-item]


# -- repaired (repair=True) ------------------------------------------------------------------


def test_repair_replaces_surrogates_with_the_replacement_character() -> None:
    mgr = manager(repair=True)
    (item,) = mgr.append({"role": "user", "content": f"open {SURROGATE}"})
    assert item_text(item) == "open name-\ufffd.txt"
    check_both_providers(mgr)


def test_repair_answers_unanswered_calls_with_a_marked_error() -> None:
    mgr = manager(repair=True)
    mgr.extend([asks("a", "b"), result("a")])
    items = mgr.append({"role": "user", "content": "never mind, do this instead"})
    placeholder, user = items
    assert placeholder.role == "tool"
    assert [(r.call_id, r.content, r.is_error) for r in placeholder.tool_results] == [
        ("b", UNANSWERED_NOTE, True)
    ]
    assert user.role == "user"
    check_both_providers(mgr)


def test_repair_renames_a_repeated_id_and_its_result_follows() -> None:
    mgr = manager(repair=True)
    (first,) = mgr.append(asks("c1", "c1"))
    ids = [c.id for c in first.tool_calls]
    assert ids == ["c1", "c1_dup2"]
    mgr.extend([result("c1"), result("c1")])
    check_both_providers(mgr)


def test_an_answered_calls_id_used_again_is_renamed_for_anthropic() -> None:
    """OpenAI accepts a repeat of an earlier, answered call's id; Anthropic refuses two
    tool_use blocks of one id in a request, so the repeat is renamed (stated) by default."""
    mgr = manager()
    mgr.extend([asks("c1"), result("c1"), asks("c1"), result("c1", "second")])
    body = mgr.prepare("anthropic")
    uses = [
        b["id"]
        for m in body["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_use"
    ]
    assert uses == ["c1", "c1_dup2"]
    check_both_providers(mgr)


# -- the way back ----------------------------------------------------------------------------


def test_retract_takes_back_the_last_items_and_they_stay_recallable() -> None:
    mgr = manager()
    mgr.extend([asks("c1"), result("c1")])
    before = mgr.prepare("openai")["messages"]
    wrong = mgr.extend([{"role": "user", "content": "a message the provider refused"}])
    taken = mgr.retract(1)
    assert [i.id for i in taken] == [wrong[0].id]
    assert mgr.prepare("openai")["messages"] == before
    assert mgr.recall(wrong[0].id) == wrong[0]
    assert mgr.log.records()[-1].strategy == "retract"
    mgr.append({"role": "user", "content": "the corrected message"})
    check_both_providers(mgr)


def test_retracted_calls_free_their_ids_and_reopen_their_calls() -> None:
    mgr = manager()
    mgr.extend([asks("c1"), result("c1", "first try")])
    mgr.retract(1)  # the result: c1 is open again
    refused(mgr, [{"role": "user", "content": "x"}], "['c1'] are unanswered")
    mgr.append(result("c1", "second try"))
    mgr.retract(2)  # the call and its result: c1 is free
    mgr.extend([asks("c1"), result("c1")])
    check_both_providers(mgr)


def test_retract_refuses_what_a_compaction_merged() -> None:
    mgr = ContextManager(
        "gpt-4o", context_window=3_000, max_output_tokens=500, strategies=["sliding_window"]
    )
    mgr.append({"role": "user", "content": "start"})
    for n in range(12):
        mgr.extend([asks(f"c{n}"), result(f"c{n}", f"output {n} " * 60)])
        mgr.prepare()
    assert any(r.strategy == "sliding_window" for r in mgr.log.records())
    mgr.retract(2)  # the last exchange is still as appended
    with pytest.raises(UsageError, match="no longer the end of the context"):
        mgr.retract(20)
    with pytest.raises(UsageError, match="cannot retract 0"):
        mgr.retract(0)


def test_a_retraction_survives_a_resume(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    mgr = ContextManager.open("s1", store, "gpt-4o")
    mgr.extend([{"role": "user", "content": "go"}, asks("c1"), result("c1")])
    mgr.prepare()
    mgr.retract(2)
    expected = mgr.prepare()
    again = ContextManager.open("s1", store)
    assert again.prepare() == expected
    again.extend([asks("c1"), result("c1", "redone")])  # the resumed door knows c1 is free
    check_both_providers(again)


# -- Anthropic roles alternate ---------------------------------------------------------------


def test_consecutive_same_role_turns_are_merged_for_anthropic() -> None:
    mgr = ContextManager("claude-sonnet-4-5")
    mgr.extend(
        [
            {"role": "user", "content": "the task"},
            {"role": "user", "content": [{"type": "text", "text": "and a detail"}]},
            {"role": "assistant", "content": "one"},
            {"role": "assistant", "content": "two"},
        ]
    )
    body = mgr.prepare("anthropic")
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "the task"},
                {"type": "text", "text": "and a detail"},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
    ]
    check_both_providers(mgr)


def test_reasoning_outside_an_assistant_message_is_refused() -> None:
    thinking = {"type": "thinking", "thinking": "hm", "signature": "s"}
    refused(manager(), [{"role": "user", "content": [thinking]}], "reasoning")


def test_a_message_no_compaction_can_shorten_past_the_window_is_refused() -> None:
    """A thinking block keeps its signature, so nothing may cut it: one that alone is past
    the window would make every later request fail."""
    mgr = ContextManager("claude-sonnet-4-5", context_window=8_000, max_output_tokens=1_000)
    mgr.append({"role": "user", "content": "go"})
    thinking = {"type": "thinking", "thinking": "step " * 9_000, "signature": "s"}
    before = len(mgr.log)
    with pytest.raises(ContextOverflow, match="no compaction can shorten"):
        mgr.extend([{"role": "assistant", "content": [thinking]}], format="anthropic")
    assert len(mgr.log) == before
    mgr.append({"role": "user", "content": "word " * 9_000})  # plain text: cut to fit
    check_both_providers(mgr)


def test_a_render_error_names_the_item_not_its_place_in_a_list() -> None:
    """What OpenAI chat cannot take (a document by URL) is refused when that provider is
    asked for, naming the item."""
    mgr = ContextManager("gpt-4o")
    document = {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}
    (item,) = mgr.extend([{"role": "user", "content": [document]}], format="anthropic")
    with pytest.raises(ConversionError, match=rf"item {item.id}\.content: .*by URL"):
        mgr.prepare("openai")
    assert mgr.prepare("anthropic")["messages"][0]["content"][0] == document
