"""Retrieval: search, rerank, trim to the knowledge budget from the tail; hit rate by the rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget import ContextManager
from ctxbudget.budget.policy import Policy
from ctxbudget.errors import ConfigError, UsageError
from ctxbudget.retrieval import (
    BM25Index,
    BudgetedRetriever,
    Document,
    FunctionSearcher,
    Hit,
    HitRate,
    TurnUsage,
    bm25_rerank,
    used_documents,
)
from ctxbudget.session.items import Component, item_text

DOCS = [
    Document(id="refunds", text="Refunds go back to the original payment method within 7 days."),
    Document(id="baggage", text="Each passenger may check two bags of 23 kilograms for free."),
    Document(id="pets", text="Small pets travel in the cabin in a carrier under the seat."),
    Document(
        id="upgrades", text="Upgrades to business class cost miles or a cash fee.", domain="fares"
    ),
]


def manager(knowledge: int | None = 400) -> ContextManager:
    budgets: dict[str, Any] = {} if knowledge is None else {"knowledge": knowledge}
    policy = Policy.from_dict({"name": "kb", "budgets": budgets})
    mgr = ContextManager(
        "gpt-4o", context_window=16_000, max_output_tokens=1_000, clock=lambda: 0.0, policy=policy
    )
    mgr.set_system("You answer airline questions from the documents given.")
    return mgr


def ask(mgr: ContextManager, text: str) -> None:
    mgr.append({"role": "user", "content": text})


def test_bm25_ranks_by_relevance_and_filters_domains() -> None:
    index = BM25Index(DOCS)
    hits = index.search("how many bags can I check", limit=3)
    assert hits[0].document.id == "baggage"
    assert all(h.score > 0 for h in hits)
    assert [
        h.document.id for h in index.search("upgrade fee miles", limit=5, domains=["fares"])
    ] == ["upgrades"]
    assert index.search("zebra quantum", limit=5) == []
    with pytest.raises(UsageError, match="already indexed"):
        index.add([DOCS[0]])


def test_kept_documents_enter_the_view_as_user_knowledge_items() -> None:
    mgr = manager()
    ask(mgr, "Can I bring my cat in the cabin?")
    retrieval = BudgetedRetriever(BM25Index(DOCS)).retrieve(mgr, "pets cat cabin carrier")
    assert retrieval.ids[0] == "pets"
    items = [i for i in mgr.view.items if i.id in retrieval.item_ids]
    assert items
    assert all(i.component is Component.KNOWLEDGE and i.role == "user" for i in items)
    body = json.dumps(mgr.prepare("openai"))
    assert "Small pets travel in the cabin" in body
    system = mgr.prepare("openai")["messages"][0]
    assert system["role"] == "system"
    assert "Small pets" not in json.dumps(system)  # retrieved text never enters the system role


def test_trimming_keeps_the_longest_prefix_that_fits() -> None:
    big = Document(id="big", text="seat policy details " * 300)
    docs = [DOCS[0], big, DOCS[1]]

    def search(query: str, limit: int) -> list[Document]:
        return docs[:limit]

    mgr = manager(knowledge=400)
    ask(mgr, "question")
    retrieval = BudgetedRetriever(FunctionSearcher(search)).retrieve(mgr, "question")
    assert retrieval.ids == ("refunds",)  # big does not fit: it and all after it are dropped
    assert [h.document.id for h in retrieval.dropped] == ["big", "baggage"]
    assert retrieval.room == 400
    assert mgr.snapshot().row(Component.KNOWLEDGE).used == retrieval.tokens <= 400


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=12),
    budget=st.integers(min_value=0, max_value=600),
    turns=st.integers(min_value=1, max_value=3),
)
def test_retrieval_never_exceeds_the_knowledge_budget(
    sizes: list[int], budget: int, turns: int
) -> None:
    docs = [Document(id=f"d{n}", text="word " * size + f"topic{n}") for n, size in enumerate(sizes)]

    def search(query: str, limit: int) -> list[Document]:
        return docs[:limit]

    mgr = manager(knowledge=budget)
    retriever = BudgetedRetriever(FunctionSearcher(search))
    for turn in range(turns):
        ask(mgr, f"question {turn}")
        retrieval = retriever.retrieve(mgr, "question")
        row = mgr.snapshot().row(Component.KNOWLEDGE)
        assert row.used <= budget
        assert row.used == retrieval.tokens  # the previous turn's documents were taken out
        kept = len(retrieval.kept)
        assert retrieval.ids == tuple(d.id for d in docs[:kept])  # a prefix of the ranking
        if kept < len(docs):  # the first left out would not have fitted
            assert retrieval.dropped[0].document.id == docs[kept].id


def test_unbudgeted_knowledge_uses_the_room_left_and_max_tokens_caps_it() -> None:
    mgr = manager(knowledge=None)
    ask(mgr, "bags")
    usable = mgr.accountant.ledger.allocation.usable
    retrieval = BudgetedRetriever(BM25Index(DOCS), max_tokens=30).retrieve(mgr, "bags check")
    assert retrieval.room == 30
    assert retrieval.tokens <= 30
    assert mgr.total() <= usable


def test_the_previous_turns_documents_are_replaced_and_stay_recallable() -> None:
    mgr = manager()
    retriever = BudgetedRetriever(BM25Index(DOCS))
    ask(mgr, "refund?")
    first = retriever.retrieve(mgr, "refunds payment")
    ask(mgr, "bags?")
    second = retriever.retrieve(mgr, "bags check kilograms")
    view = {i.id for i in mgr.view.items}
    assert not view & set(first.item_ids)
    assert set(second.item_ids) <= view
    assert "Refunds go back" in item_text(mgr.recall(first.item_ids[0]))
    records = [r for r in mgr.log.records() if r.strategy == "retrieval"]
    assert len(records) == 1


def test_rerank_reorders_candidates_before_trimming() -> None:
    def search(query: str, limit: int) -> list[dict[str, Any]]:
        return [{"id": d.id, "text": d.text, "score": 1.0} for d in DOCS][:limit]

    mgr = manager()
    ask(mgr, "pets")
    retriever = BudgetedRetriever(FunctionSearcher(search), reranker=bm25_rerank, max_documents=1)
    assert retriever.retrieve(mgr, "pets carrier cabin").ids == ("pets",)


def test_a_search_function_returning_junk_is_a_clear_error() -> None:
    searcher = FunctionSearcher(lambda q, n: [42], name="my_search")
    with pytest.raises(UsageError, match="my_search returned int at rank 0"):
        searcher.search("q", limit=3)


def test_hit_rate_on_a_scripted_session() -> None:
    """Three turns; the used documents follow the documented rule, the rate is their share."""
    mgr = manager(knowledge=2_000)
    retriever = BudgetedRetriever(BM25Index(DOCS), max_documents=2, window=2)
    script = [
        # (question, query, answer, cited)
        (
            "Refund?",
            "refunds payment bags",
            "Your refund goes back to the original payment method within 7 days.",
            (),
        ),
        ("Bags?", "bags passenger pets", "See [baggage]: two bags are free.", ()),
        ("Cat?", "pets cabin upgrades", "I am not sure, please ask at the desk.", ()),
    ]
    turns = []
    for question, query, answer, cited in script:
        ask(mgr, question)
        retrieval = retriever.retrieve(mgr, query)
        assert len(retrieval.kept) == 2
        turns.append(retriever.mark_used(answer, cited=cited))
        mgr.append({"role": "assistant", "content": answer})
    # turn 1: 'refunds' shares original, method, within, days with the answer (payment is a
    # query term, not counted): used; the other document shares none of them
    assert turns[0].used == ("refunds",)
    assert turns[1].used == ("baggage",)  # cited by id in the text
    assert turns[2].used == ()
    assert turns[0].hit_rate == 0.5
    assert retriever.history == turns
    assert retriever.hit_rate.value == pytest.approx(1 / 4)  # window of 2: turns 2 and 3
    with pytest.raises(UsageError, match="needs a retrieve"):
        retriever.mark_used("again")


def test_the_usage_rule_ignores_the_questions_own_words() -> None:
    doc = Document(id="d1", text="baggage allowance passenger kilograms")
    answer = "About baggage allowance passenger kilograms: unsure."
    assert used_documents(answer, [doc], query="baggage allowance passenger kilograms") == ()
    assert used_documents(answer, [doc]) == ("d1",)
    assert used_documents("nothing", [doc], cited=["d1"]) == ("d1",)
    assert used_documents("see d1-extra", [doc]) == ()  # ids match as whole tokens only
    with pytest.raises(ConfigError, match="min_shared"):
        used_documents("x", [doc], min_shared=0)


def test_hit_rate_window_skips_turns_without_retrieval() -> None:
    rate = HitRate(window=3)
    assert rate.value is None
    rate.add(TurnUsage(retrieved=(), used=()))
    assert rate.value is None
    rate.add(TurnUsage(retrieved=("a", "b"), used=("a",)))
    rate.add(TurnUsage(retrieved=("c",), used=("c",)))
    assert rate.value == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="window"):
        HitRate(window=0)


def test_retrieval_waits_for_pending_tool_results_and_checks_settings() -> None:
    mgr = manager()
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    mgr.append({"role": "assistant", "content": None, "tool_calls": [call]})
    with pytest.raises(UsageError, match="append the results first"):
        BudgetedRetriever(BM25Index(DOCS)).retrieve(mgr, "bags")
    with pytest.raises(ConfigError, match="candidates"):
        BudgetedRetriever(BM25Index(DOCS), candidates=0)
    assert isinstance(BM25Index(DOCS).search("bags", limit=1)[0], Hit)
