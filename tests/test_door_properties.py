"""Arbitrary JSON-shaped messages through the door: only our errors, and never a poisoned
session.

Random roles, parts, ids and contents (Unicode with lone surrogates, huge and empty texts,
junk fields) are appended in OpenAI chat and Anthropic form. Whatever happens, nothing but a
``CtxBudgetError`` is raised; a refused message leaves the session as it was; and the next
``prepare()`` for both providers succeeds and is valid: it fits, pairs (a last turn's calls
may still wait for results), encodes as UTF-8, and an Anthropic body alternates roles.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _valid import check_both_providers
from ctxbudget import ContextManager
from ctxbudget.errors import CtxBudgetError

IDS = ["c1", "c2", "toolu_1", "", "c1"]

unicode_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=8),
    st.just(""),
    st.builds(
        lambda w, n: w * n, st.sampled_from(["word ", "😀", "\x00", "é"]), st.integers(1, 40_000)
    ),
)
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | unicode_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(unicode_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def openai_message(draw: st.DrawFn) -> dict[str, Any]:
    role = draw(st.sampled_from(["system", "user", "assistant", "tool", "developer", "robot"]))
    message: dict[str, Any] = {"role": role}
    if draw(st.integers(0, 9)):
        message["content"] = draw(
            st.one_of(
                unicode_text,
                st.none(),
                st.lists(
                    st.one_of(
                        st.builds(lambda t: {"type": "text", "text": t}, unicode_text),
                        st.builds(
                            lambda u: {"type": "image_url", "image_url": {"url": u}}, unicode_text
                        ),
                        st.dictionaries(unicode_text, junk, max_size=2),
                    ),
                    max_size=3,
                ),
            )
        )
    if role == "assistant" and draw(st.booleans()):
        message["tool_calls"] = [
            {
                "id": draw(st.sampled_from(IDS)),
                "type": "function",
                "function": {"name": draw(st.sampled_from(["read", "run"])), "arguments": "{}"},
            }
            for _ in range(draw(st.integers(1, 3)))
        ]
    if role == "tool":
        message["tool_call_id"] = draw(st.sampled_from(IDS))
    if draw(st.integers(0, 5)) == 0:
        message[draw(unicode_text)] = draw(junk)
    return message


@st.composite
def anthropic_message(draw: st.DrawFn) -> dict[str, Any]:
    role = draw(st.sampled_from(["user", "assistant", "system"]))
    block = st.one_of(
        st.builds(lambda t: {"type": "text", "text": t}, unicode_text),
        st.builds(
            lambda i, t: {"type": "tool_use", "id": i, "name": "run", "input": {"cmd": t}},
            st.sampled_from(IDS),
            unicode_text,
        ),
        st.builds(
            lambda i, t: {"type": "tool_result", "tool_use_id": i, "content": t},
            st.sampled_from(IDS),
            unicode_text,
        ),
        st.builds(lambda t: {"type": "thinking", "thinking": t, "signature": "sig"}, unicode_text),
        st.dictionaries(unicode_text, junk, max_size=2),
    )
    content = draw(st.one_of(unicode_text, st.lists(block, max_size=4)))
    return {"role": role, "content": content}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    fmt=st.sampled_from(["openai_chat", "anthropic"]),
    data=st.data(),
    repair=st.booleans(),
)
def test_arbitrary_messages_never_poison_a_session(fmt: str, data: Any, repair: bool) -> None:
    mgr = ContextManager("gpt-4o", context_window=30_000, max_output_tokens=2_000, repair=repair)
    mgr.append({"role": "user", "content": "the task"})
    message = openai_message() if fmt == "openai_chat" else anthropic_message()
    for _ in range(data.draw(st.integers(1, 8))):
        batch = data.draw(st.lists(message, min_size=1, max_size=3))
        before = len(mgr.log)
        try:
            mgr.extend(batch, format=fmt)  # type: ignore[arg-type]
        except CtxBudgetError:
            assert len(mgr.log) == before  # refused: nothing of the batch entered
        check_both_providers(mgr)
