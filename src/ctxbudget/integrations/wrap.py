"""``ctxbudget.wrap(client, manager)``: a drop-in SDK client whose calls are managed.

Before each call the manager takes in what is new in the caller's messages and prepares
the request (compacted, cache breakpoints placed); after it, the reply and the billed
usage are recorded (calibration, cost, cache reconciliation). Transient errors are
retried with exponential backoff (or the provider's ``retry-after``), then the fallback
models are tried; a provider "context too long" error makes the manager compact harder
and retry once. The model's calls of the ``recall`` tool (offered by the wrapper) are
answered in hidden rounds (:mod:`~ctxbudget.integrations.recall`). Sync and async clients
share one driver: a generator that yields what to do (call, sleep) and is run by a small
sync or async loop.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctxbudget.billing.usage import Usage
from ctxbudget.errors import UsageError
from ctxbudget.integrations.apis import (
    ADAPTERS,
    Adapter,
    Collector,
    classify_error,
    retry_after,
    shrunk_limit,
)
from ctxbudget.integrations.history import HistorySync
from ctxbudget.integrations.recall import (
    MAX_RECALL_ROUNDS,
    RecallOffer,
    answer_messages,
    is_recall_call,
    joining_answers,
    reply_calls,
    without_recall,
)
from ctxbudget.integrations.spending import CallSpend
from ctxbudget.integrations.streams import AsyncManagedStream, ManagedStream

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager
    from ctxbudget.spend.guard import SpendGuard

__all__ = ["RetryPolicy", "wrap"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How transient provider errors are retried."""

    retries: int = 2
    """Retries per model after the first attempt."""
    backoff: float = 0.5
    """First wait (seconds); doubles on each retry."""
    max_backoff: float = 20.0
    """Longest wait (seconds), whatever the provider asks."""
    fallback_models: tuple[str, ...] = ()
    """Models tried, in order, when retries on the requested model are used up."""

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        asked = retry_after(exc)
        base = self.backoff * (2**attempt)
        return float(min(self.max_backoff, max(base, asked or 0.0)))


@dataclass(frozen=True, slots=True)
class _Call:
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class _Outcome:
    response: Any = None
    error: BaseException | None = None


@dataclass(slots=True)
class _Tries:
    """What one caller's call learned, kept across its recall rounds."""

    models: list[str]
    """The models still to try, the one that answered last first."""
    input_limit: int | None = None
    """A tighter input limit after the provider said a request was too long."""
    overflowed: bool = False
    """The provider said so once already (a second time reaches the caller)."""


class _Managed:
    """One wrapped API method bound to one manager."""

    def __init__(
        self,
        manager: ContextManager,
        adapter: Adapter,
        create: Any,
        policy: RetryPolicy,
        *,
        spend: SpendGuard | None = None,
        recall: bool = True,
    ) -> None:
        self.manager = manager
        self.adapter = adapter
        self.create = create
        self.policy = policy
        self.history = HistorySync(manager, adapter.format)
        self.spend = CallSpend(spend, manager) if spend is not None else None
        self.recall = RecallOffer(manager, adapter.provider, recall)

    def drive(self, kwargs: dict[str, Any]) -> Generator[_Call | _Sleep, _Outcome, Any]:
        """The managed call, as a sequence of actions for the sync or async loop."""
        messages, system, tools, options = self.adapter.split(kwargs)
        stream = bool(options.get("stream"))
        hide = self.adapter.prepare_stream(options) if stream else False
        tools, answering = self.recall.tools(tools, stream=stream)
        self.history.sync(messages, system=system, tools=tools)
        models = [options.pop("model", None) or self.manager.model.name]
        models += [m for m in self.policy.fallback_models if m not in models]
        tries = _Tries(models)
        rounds = 0
        while True:
            response = yield from self._send(tries, options)
            if stream:
                return self._stream(response, hide)
            reply, usage = self.adapter.reply(response), self.adapter.usage(response)
            calls = reply_calls(reply, self.adapter.format) if answering else []
            recalls = [c for c in calls if is_recall_call(c)]
            if not recalls or rounds >= MAX_RECALL_ROUNDS:
                self._record(reply, usage)
                return response
            self._bill(usage)
            answers = self.recall.answers(recalls)
            fmt = self.adapter.format
            if len(recalls) < len(calls):  # the caller's tools too: hand those back
                self.history.record_reply(reply)
                self.history.record_hidden(*joining_answers(answers, fmt))
                return without_recall(response, fmt)
            self.history.record_hidden([*reply, *answer_messages(answers, fmt)])
            rounds += 1

    def _send(
        self, tries: _Tries, options: dict[str, Any]
    ) -> Generator[_Call | _Sleep, _Outcome, Any]:
        """One model call: prepared, retried, moved to the fallback models; its response."""
        last: BaseException | None = None
        for index, requested in enumerate(tries.models):
            model, attempt = requested, 0
            while True:
                body = self.manager.prepare(
                    self.adapter.provider, input_limit=tries.input_limit, **options, model=model
                )
                if self.spend is not None:
                    cheaper = self.spend.reserve(model, options)
                    if cheaper is not None:  # a 'switch' limit: prepare for that model
                        model = cheaper
                        continue
                outcome = yield _Call(body)
                if outcome.error is None:
                    del tries.models[:index]  # a recall round starts from the model that answered
                    return outcome.response
                if self.spend is not None:
                    self.spend.release()
                kind = classify_error(outcome.error)
                if kind == "overflow" and not tries.overflowed:
                    tries.overflowed = True
                    tries.input_limit = shrunk_limit(self.manager, outcome.error, options)
                    continue
                if kind != "transient":
                    raise outcome.error
                last = outcome.error
                if attempt >= self.policy.retries:
                    break  # next model
                yield _Sleep(self.policy.delay(attempt, outcome.error))
                attempt += 1
        if last is None:  # cannot happen: the loop only ends after an error
            raise UsageError("no model to call")
        raise last

    def _stream(self, response: Any, hide: bool) -> Any:
        collector = Collector(self.adapter)
        if inspect.isasyncgen(response) or hasattr(response, "__aiter__"):
            return AsyncManagedStream(response, collector, self._record, hide)
        return ManagedStream(response, collector, self._record, hide)

    def _bill(self, usage: Usage | None) -> None:
        """Settle the call's spend reservation and reconcile its prepared request."""
        if self.spend is not None:
            self.spend.settle(usage)
        if usage is not None:
            self.manager.observe_usage(usage)

    def _record(self, reply: list[dict[str, Any]], usage: Usage | None) -> None:
        self._bill(usage)
        self.history.record_reply(reply)


def _sync_method(managed: _Managed) -> Callable[..., Any]:
    def create(**kwargs: Any) -> Any:
        steps = managed.drive(kwargs)
        action = next(steps)
        while True:
            if isinstance(action, _Sleep):
                time.sleep(action.seconds)
                outcome = _Outcome()
            else:
                try:
                    outcome = _Outcome(response=managed.create(**action.body))
                except Exception as exc:  # the driver decides: retry, compact, or re-raise
                    outcome = _Outcome(error=exc)
            try:
                action = steps.send(outcome)
            except StopIteration as stop:
                return stop.value

    return create


def _async_method(managed: _Managed) -> Callable[..., Any]:
    async def create(**kwargs: Any) -> Any:
        steps = managed.drive(kwargs)
        action = next(steps)
        while True:
            if isinstance(action, _Sleep):
                await asyncio.sleep(action.seconds)
                outcome = _Outcome()
            else:
                try:
                    outcome = _Outcome(response=await managed.create(**action.body))
                except Exception as exc:  # the driver decides: retry, compact, or re-raise
                    outcome = _Outcome(error=exc)
            try:
                action = steps.send(outcome)
            except StopIteration as stop:
                return stop.value

    return create


class _Proxy:
    """The wrapped object with some attributes replaced; everything else passes through."""

    def __init__(self, target: Any, overrides: dict[str, Any]) -> None:
        self._target = target
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._target, name)


def _method(
    manager: ContextManager,
    api: str,
    create: Any,
    policy: RetryPolicy,
    *,
    spend: SpendGuard | None = None,
    recall: bool = True,
) -> Any:
    managed = _Managed(manager, ADAPTERS[api], create, policy, spend=spend, recall=recall)
    # the SDKs wrap async methods in a sync decorator: look underneath it too
    if inspect.iscoroutinefunction(create) or inspect.iscoroutinefunction(inspect.unwrap(create)):
        return _async_method(managed)
    return _sync_method(managed)


def wrap(
    client: Any,
    manager: ContextManager,
    *,
    retries: int = 2,
    backoff: float = 0.5,
    max_backoff: float = 20.0,
    fallback_models: Sequence[str] = (),
    spend: SpendGuard | None = None,
    recall: bool = True,
) -> Any:
    """``client`` (openai.OpenAI / AsyncOpenAI, anthropic.Anthropic / AsyncAnthropic) managed.

    The result is used exactly like the client; ``chat.completions.create``,
    ``responses.create`` and ``messages.create`` (streaming included) go through
    ``manager``. Keep one manager per conversation. Give the SDK client ``max_retries=0``
    to let the wrapper own retries, or both will retry.

    ``spend``: a :class:`~ctxbudget.spend.SpendGuard` reserves each call's projected cost
    before it is sent (``BudgetExceeded`` when a limit refuses, nothing sent; a ``switch``
    limit moves the call to its cheaper model), settles it with the billed cost when the
    reply or its stream ends, and releases it when the call fails.

    ``recall``: offer the manager's ``recall`` tool (digests and placeholders name the
    original's id, ``recall("m12")``) and answer it inside the wrapper, so the caller's
    loop stays unchanged. It is added to the request's tools (also when the call has
    none), in the provider's format, unless the caller has a tool of its own named
    ``recall``: then ours is not offered and its calls are the caller's. When a plain
    (non-streamed) reply calls only ``recall``, the wrapper records the reply, answers each
    call (``manager.answer_recall``) and calls the model again, at most three such rounds
    per call; the reply after the third is returned as it is (a ``recall`` call in it can
    be answered with ``client.manager.answer_recall(call)``). These hidden turns are in the
    manager's log and in later requests, never in the caller's list, which goes on being
    extended as before. Each round's usage is observed and its spend reservation settled
    like any call's; the response returned is the last round's. A reply that calls
    ``recall`` and the caller's tools too: the recall calls are answered inside, taken out
    of the response object handed back (the caller runs its own tools as usual), and
    recorded with their answers in the log, so every later request pairs each call with
    its result.

    Streamed calls are not answered: the caller has already received the recall call's
    events by the time the wrapper could answer it. They offer the tool only once an
    earlier plain call did: the tool list is the start of the cached prefix, so a client
    mixing streamed and plain calls keeps one list (its first plain call after streamed
    ones adds the tool, one rewrite of the cached prefix), and a client that only streams
    never sees the tool. A recall call in such a stream reaches the caller like any tool
    call (``client.manager.answer_recall(call)`` answers it).
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise UsageError(f"retries must be an int >= 0, got {retries!r}")
    policy = RetryPolicy(
        retries=retries,
        backoff=backoff,
        max_backoff=max_backoff,
        fallback_models=tuple(fallback_models),
    )

    def managed(api: str, create: Any) -> Any:
        return _method(manager, api, create, policy, spend=spend, recall=recall)

    module = type(client).__module__.split(".", 1)[0]
    if module == "openai" or (hasattr(client, "chat") and hasattr(client, "responses")):
        chat = client.chat
        completions = _Proxy(chat.completions, {"create": managed("chat", chat.completions.create)})
        responses = _Proxy(
            client.responses, {"create": managed("responses", client.responses.create)}
        )
        overrides: dict[str, Any] = {
            "chat": _Proxy(chat, {"completions": completions}),
            "responses": responses,
        }
    elif module == "anthropic" or hasattr(client, "messages"):
        messages = _Proxy(client.messages, {"create": managed("messages", client.messages.create)})
        overrides = {"messages": messages}
    else:
        raise UsageError(
            f"cannot wrap {type(client).__name__}: expected an openai.OpenAI/AsyncOpenAI or "
            "anthropic.Anthropic/AsyncAnthropic client"
        )
    overrides["manager"] = manager
    return _Proxy(client, overrides)
