"""The sessions a proxy serves: one manager per client thread, resumed from the store.

A stored session id names who and what: ``[k.<key>/]<client session>/<thread>-<o|m><n>``
(the proxy key's namespace beyond loopback, the client's session, the thread, observe or
manage, the segment). Every worker finds the same id for the same request, and before
using a manager it holds it checks the store's length: when another worker appended
since, the session is resumed from the store again (from its latest snapshot), so any
worker can serve any session. All of this is synchronous and runs in the proxy's one
bookkeeping thread (:class:`~ctxbudget.proxy.exchange.Exchange`), which also holds a lock
per client thread from its request's sync until its reply is recorded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctxbudget.billing.usage import Usage
from ctxbudget.budget.models import ModelSpec, resolve_model
from ctxbudget.convert.request import Format, requested_output
from ctxbudget.errors import ConfigError, StorageError, UsageError
from ctxbudget.integrations.history import system_text
from ctxbudget.proxy.identity import message_key
from ctxbudget.proxy.sync import MARK, Plan, SyncState, plan
from ctxbudget.store.base import SessionStore

if TYPE_CHECKING:
    from ctxbudget.manager import ContextManager

__all__ = ["ProxySession", "SessionPool", "Settings"]

DEFAULT_WINDOW = 200_000
"""Window assumed for a model the registry does not know and no ``--context-window``
names (an estimate; the session's counts say so)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How a thread's manager is built (the same on every worker, so a resume replays)."""

    managed: bool
    context_window: int | None = None
    policy: str | None = None

    def manager_settings(self) -> dict[str, Any]:
        """``ContextManager`` keyword arguments."""
        out: dict[str, Any] = {"repair": True, "context_window": self.context_window}
        if self.managed:
            if self.policy is not None:
                out["policy"] = self.policy
        else:  # observe: account for what the client sends, never change it
            out["strategies"] = []
            out["presummarize_at"] = None
        return out


@dataclass(slots=True)
class ProxySession:
    """One client thread's segment: its manager and where it stands in the client's list."""

    stored_id: str
    manager: ContextManager
    state: SyncState

    def plan(self, fmt: Format, messages: Sequence[Any], system: Any) -> Plan:
        """How the client's list relates to what this segment holds (``rewrite``: it no
        longer extends it; start a new segment)."""
        return plan(self.state, messages, message_key(system), fmt)

    def sync(
        self,
        step: Plan,
        fmt: Format,
        messages: Sequence[Any],
        system: Any,
        tools: Sequence[Any] | None,
    ) -> None:
        """Append what is new in the client's list, as :meth:`plan` found (not a rewrite)."""
        if step.rewrite:
            raise UsageError("a rewritten list starts a new segment; it cannot be synced")
        manager, state = self.manager, self.state
        with manager.log.batch():
            if step.drop_reply:
                manager.retract(state.reply_items, reason="the client did not keep the reply")
            if state.held == 0 and system is not None and not state.system:
                text = system_text(system)
                if text:
                    manager.set_system(text)
            if tools is not None:
                tools_key = message_key(tools)
                if tools_key != state.tools:
                    manager.set_tools(list(tools))
                    state.tools = tools_key
            new = list(messages[step.start :])
            if new:
                manager.extend(new, format=fmt)
            state.reply_items = 0
            state.system = step.system_key
            if messages:
                state.held = len(messages)
                state.first = message_key(messages[0])
                state.last = message_key(messages[-1])
            self.save()  # with the messages, in one write: the position never lags the log

    def prepare(
        self, provider: Any, options: Mapping[str, Any], input_limit: int | None = None
    ) -> dict[str, Any]:
        """The manager's request for the view (``options`` are the client's other fields;
        ``input_limit``: lower after the provider said the last one was too long, and kept
        for the later ones)."""
        manager = self.manager
        allocation = manager.accountant.ledger.allocation
        asked = requested_output(options, allocation.output_reserve)
        limit = allocation.usable - max(0, asked - allocation.output_reserve)
        if limit < 1:
            raise ConfigError(
                f"the request asks for {asked:,} output tokens, more than the context window "
                f"({manager.model.context_window:,}) leaves for input; lower max_tokens or "
                "raise --context-window"
            )
        if input_limit is not None:
            self.state.input_limit = input_limit
        if self.state.input_limit is not None:
            limit = min(limit, self.state.input_limit)
        return manager.prepare(provider, input_limit=limit, **options)

    def record(
        self,
        fmt: Format,
        reply: Sequence[Mapping[str, Any]],
        usage: Usage | None,
        *,
        joined: Sequence[Mapping[str, Any]] = (),
        joined_format: Format | None = None,
    ) -> None:
        """The model's reply (the client copies it back next; ``joined``: answers of
        recall calls taken out of it, which go with it) and the billed usage."""
        with self.manager.log.batch():
            items = list(self.manager.extend(list(reply), format=fmt)) if reply else []
            if joined:
                items += self.manager.extend(list(joined), format=joined_format or fmt)
            self.state.reply_items = len(items)
            if usage is not None:
                self.manager.observe_usage(usage)
            self.save()

    def record_hidden(
        self, fmt: Format, messages: Sequence[Mapping[str, Any]], usage: Usage | None
    ) -> None:
        """A round the client never sees (a recall call and its answer) and its usage."""
        with self.manager.log.batch():
            self.manager.extend(list(messages), format=fmt)
            if usage is not None:
                self.manager.observe_usage(usage)

    def save(self) -> None:
        """Write the sync position into the log (a mark)."""
        self.manager.log.mark(MARK, self.state.to_json())


Opener = Callable[..., "ContextManager"]


class SettingsChanged(StorageError):
    """A stored segment was recorded under other proxy settings (window, policy, mode)."""

    def __init__(self, stored_id: str) -> None:
        super().__init__(
            f"session {stored_id!r} was recorded with other proxy settings; it goes on in a "
            "new segment"
        )


class SessionPool:
    """The managers of the threads this worker served lately, refreshed from the store."""

    def __init__(
        self, store: SessionStore, opener: Opener, settings: Settings, *, keep: int = 256
    ) -> None:
        self.store = store
        self.opener = opener
        """``ContextManager.open`` (passed in: this layer never imports the manager)."""
        self.settings = settings
        self.keep = keep
        """How many idle threads stay in memory (the rest are resumed when they return)."""
        self._open: OrderedDict[str, ProxySession] = OrderedDict()
        self._segment: dict[str, int] = {}

    def session(
        self, thread_id: str, model: str, provider: str, meta: Mapping[str, Any]
    ) -> ProxySession:
        """The current segment of ``thread_id`` (created with ``meta`` when new)."""
        segment = self._segment.get(thread_id) or self._latest(thread_id)
        self._segment[thread_id] = segment
        try:
            return self._load(thread_id, segment, model, provider, meta)
        except SettingsChanged:  # the proxy restarted with other settings: go on in a new one
            return self.next_segment(thread_id, model, provider, meta)

    def next_segment(
        self, thread_id: str, model: str, provider: str, meta: Mapping[str, Any]
    ) -> ProxySession:
        """A new, empty segment of ``thread_id`` (the client rewrote its history)."""
        segment = self._latest(thread_id) + 1
        while self.store.info(self._id(thread_id, segment)) is not None:
            segment += 1
        self._segment[thread_id] = segment
        return self._load(thread_id, segment, model, provider, meta)

    def forget(self, session: ProxySession) -> None:
        """Drop a manager whose log no longer matches the store (reload it next time)."""
        self._open.pop(session.stored_id, None)

    def _manager_settings(self, spec: ModelSpec | str) -> dict[str, Any]:
        """The manager's settings (JSON values, recorded in the session's metadata)."""
        settings = self.settings.manager_settings()
        window = self.settings.context_window
        if window is not None:  # the output reserve must leave room for input
            full = spec if isinstance(spec, ModelSpec) else resolve_model(spec)
            settings["max_output_tokens"] = min(full.max_output_tokens, window // 4)
        return settings

    def _id(self, thread_id: str, segment: int) -> str:
        mode = "m" if self.settings.managed else "o"
        return f"{thread_id}-{mode}{segment}"

    def _latest(self, thread_id: str) -> int:
        segment = 1
        while self.store.info(self._id(thread_id, segment + 1)) is not None:
            segment += 1
        return segment

    def _load(
        self, thread_id: str, segment: int, model: str, provider: str, meta: Mapping[str, Any]
    ) -> ProxySession:
        stored_id = self._id(thread_id, segment)
        held = self._open.get(stored_id)
        info = self.store.info(stored_id)
        if held is not None and info is not None and info.events == len(held.manager.log):
            self._open.move_to_end(stored_id)
            return held
        recorded = str(info.meta.get("model") or model) if info is not None else model
        spec = _spec(recorded, provider, self.settings.context_window)
        settings = self._manager_settings(spec)
        if info is None:
            created = {"model": model, **meta, "segment": segment, "settings": settings}
            self.store.create(stored_id, created)
        elif info.meta.get("settings", settings) != settings:
            raise SettingsChanged(stored_id)
        try:
            manager = self.opener(stored_id, self.store, spec, **settings)
        except UsageError as exc:
            raise StorageError(f"session {stored_id!r} cannot be resumed: {exc}") from exc
        session = ProxySession(stored_id, manager, SyncState.from_json(manager.log.mark_of(MARK)))
        self._open[stored_id] = session
        self._open.move_to_end(stored_id)
        while len(self._open) > self.keep:
            _, old = self._open.popitem(last=False)
            old.manager.close()
        return session


def _spec(model: str, provider: str, window: int | None) -> ModelSpec | str:
    """The model, or a stand-in with an estimated window when the registry lacks it."""
    try:
        resolve_model(model)
    except ConfigError:
        tokenizer = "o200k_base" if provider.startswith("openai") else "estimate:cl100k_base"
        return ModelSpec(
            name=model,
            provider="anthropic" if provider == "anthropic" else "openai",
            context_window=window or DEFAULT_WINDOW,
            max_output_tokens=min(32_000, (window or DEFAULT_WINDOW) // 4),
            tokenizer=tokenizer,
        )
    return model
