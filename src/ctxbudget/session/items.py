"""The provider-neutral data model: items, their parts, and the components they belong to.

An :class:`Item` is one unit of context (one provider message, or one tool schema list...).
Its content is a tuple of typed parts. Items are frozen: a compaction never edits an item,
it appends a record that hides or replaces it (see the log), so the original always
stays recallable.

Fields a provider sends that this model has no name for are kept verbatim in
``provider_details`` so converting a message in and back out is lossless.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, Literal, TypeAlias

__all__ = [
    "Component",
    "ComponentKind",
    "DocumentPart",
    "ImagePart",
    "Item",
    "Part",
    "ReasoningPart",
    "Role",
    "TextPart",
    "ToolCallPart",
    "ToolResultPart",
    "ToolSpec",
    "content_key",
    "item_from_dict",
    "item_text",
    "item_to_dict",
    "part_text",
]

Role: TypeAlias = Literal["system", "developer", "user", "assistant", "tool"]
"""Who speaks. ``tool`` is OpenAI's tool-result role; Anthropic results are ``user`` items."""


class Component(StrEnum):
    """The layer of the context an item is accounted to (and budgeted under)."""

    SYSTEM = "system"
    """System / developer instructions."""
    TOOLS = "tools"
    """Tool (function) schemas offered to the model."""
    EXAMPLES = "examples"
    """Few-shot examples."""
    KNOWLEDGE = "knowledge"
    """Retrieved documents."""
    MEMORY = "memory"
    """Long-term memory injected into the prompt."""
    HISTORY = "history"
    """The conversation: user and assistant turns."""
    TOOL_RESULTS = "tool_results"
    """Outputs of tool calls (observations)."""
    WORKING = "working"
    """Working layer: the current task, plan, re-injected constraints, active skills."""
    SCRATCHPAD = "scratchpad"
    """Reasoning / thinking carried in the context."""


class ComponentKind(StrEnum):
    """How a component may be treated when space runs short."""

    FIXED = "fixed"
    """Never touched; reaches the model verbatim."""
    PROTECTED = "protected"
    """Removed only as the last resort."""
    PRUNABLE = "prunable"
    """Fair game for every compaction strategy."""


def _details() -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class TextPart:
    """Plain text."""

    text: str
    """The text, verbatim."""
    provider_details: dict[str, Any] = field(default_factory=_details)
    """Provider fields with no name here (e.g. ``cache_control``, ``annotations``)."""
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagePart:
    """An image, by URL or inline base64 data."""

    url: str | None = None
    """Where the image is (http(s) or data: URL), if given by reference."""
    data: str | None = None
    """Base64 data, if given inline."""
    media_type: str | None = None
    """MIME type, e.g. ``image/png``."""
    detail: str | None = None
    """OpenAI's ``detail`` (low / high / auto)."""
    provider_details: dict[str, Any] = field(default_factory=_details)
    kind: Literal["image"] = "image"


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentPart:
    """A document (PDF, plain text...) attached to a message."""

    data: str | None = None
    """Base64 data or plain text (see ``media_type``)."""
    url: str | None = None
    """Where the document is, if given by reference."""
    media_type: str | None = None
    """MIME type, e.g. ``application/pdf`` or ``text/plain``."""
    title: str | None = None
    """Human title, if any."""
    provider_details: dict[str, Any] = field(default_factory=_details)
    kind: Literal["document"] = "document"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallPart:
    """The model asks for a tool to run."""

    id: str
    """Call id that its result refers back to (OpenAI ``call_id``, Anthropic ``tool_use.id``)."""
    name: str
    """Tool name."""
    arguments: str
    """Arguments as the JSON text the model produced (kept raw; may be invalid JSON)."""
    provider_details: dict[str, Any] = field(default_factory=_details)
    kind: Literal["tool_call"] = "tool_call"

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON, or the raw text if it is not valid JSON."""
        try:
            return json.loads(self.arguments)
        except ValueError:
            return self.arguments


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResultPart:
    """What a tool returned for one call."""

    call_id: str
    """The id of the :class:`ToolCallPart` this answers."""
    content: str | tuple[TextPart | ImagePart | DocumentPart, ...]
    """A plain string, or a sequence of parts when the provider sent a list."""
    is_error: bool | None = None
    """Anthropic's ``is_error``; ``None`` when the source did not say."""
    provider_details: dict[str, Any] = field(default_factory=_details)
    kind: Literal["tool_result"] = "tool_result"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasoningPart:
    """Model reasoning / thinking carried in the context."""

    text: str = ""
    """Readable reasoning (Anthropic ``thinking``, OpenAI reasoning summary text)."""
    signature: str | None = None
    """Anthropic's signature, which must be sent back unchanged."""
    redacted_data: str | None = None
    """Opaque data of a redacted thinking block (Anthropic ``redacted_thinking``)."""
    encrypted_content: str | None = None
    """Opaque encrypted reasoning (OpenAI Responses ``encrypted_content``)."""
    provider_details: dict[str, Any] = field(default_factory=_details)
    kind: Literal["reasoning"] = "reasoning"


Part: TypeAlias = (
    TextPart | ImagePart | DocumentPart | ToolCallPart | ToolResultPart | ReasoningPart
)

_PART_TYPES: dict[str, type[Any]] = {
    "text": TextPart,
    "image": ImagePart,
    "document": DocumentPart,
    "tool_call": ToolCallPart,
    "tool_result": ToolResultPart,
    "reasoning": ReasoningPart,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One unit of context: usually one provider message."""

    id: str
    """Stable id within a session; compaction records and ``recall`` refer to it."""
    role: Role
    """Who speaks."""
    component: Component
    """The layer this item is accounted and budgeted under."""
    parts: tuple[Part, ...]
    """The content, in order."""
    name: str | None = None
    """OpenAI's optional participant ``name``."""
    pinned: bool = False
    """Reaches the model verbatim; no strategy may touch it."""
    protected: bool = False
    """Removed only as the last resort."""
    exchange_id: str | None = None
    """Groups an assistant turn's tool calls with all their results (never split)."""
    provider_details: dict[str, Any] = field(default_factory=_details)
    """Message-level provider fields with no name here, kept for lossless round trips."""
    tool_calls: tuple[ToolCallPart, ...] = field(init=False, repr=False, compare=False)
    """The tool calls this item makes (derived from ``parts``)."""
    tool_results: tuple[ToolResultPart, ...] = field(init=False, repr=False, compare=False)
    """The tool results this item carries (derived from ``parts``)."""

    def __post_init__(self) -> None:
        # Derived once: strategies ask for them on every pass over the view.
        calls = tuple(p for p in self.parts if isinstance(p, ToolCallPart))
        results = tuple(p for p in self.parts if isinstance(p, ToolResultPart))
        object.__setattr__(self, "tool_calls", calls)
        object.__setattr__(self, "tool_results", results)

    def with_(self, **changes: Any) -> Item:
        """A copy with some fields changed (items are frozen)."""
        return replace(self, **changes)


def part_text(part: Part) -> str:
    """The readable text of one part (what a tokenizer or a relevance scorer sees)."""
    if isinstance(part, TextPart):
        return part.text
    if isinstance(part, ReasoningPart):
        return part.text
    if isinstance(part, ToolCallPart):
        return f"{part.name}({part.arguments})"
    if isinstance(part, ToolResultPart):
        if isinstance(part.content, str):
            return part.content
        return "\n".join(part_text(p) for p in part.content)
    if isinstance(part, DocumentPart):
        if part.media_type == "text/plain":
            return part.data or ""
        return part.title or ""
    return ""


def item_text(item: Item) -> str:
    """All readable text of an item, parts joined by newlines."""
    return "\n".join(t for t in (part_text(p) for p in item.parts) if t)


def _plain(value: Any) -> Any:
    """Dataclass → JSON-ready value (parts become dicts with their ``kind``)."""
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.init}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    return value


def item_to_dict(item: Item) -> dict[str, Any]:
    """A JSON-ready dict of an item; :func:`item_from_dict` reads it back exactly."""
    result: dict[str, Any] = _plain(item)
    return result


def _part_from_dict(data: dict[str, Any]) -> Part:
    kind = data.get("kind")
    cls = _PART_TYPES.get(str(kind))
    if cls is None:
        from ctxbudget.errors import ConversionError

        raise ConversionError(
            f"unknown part kind {kind!r}; expected one of {sorted(_PART_TYPES)}", path="part"
        )
    values = dict(data)
    if cls is ToolResultPart and isinstance(values.get("content"), list):
        values["content"] = tuple(_part_from_dict(p) for p in values["content"])
    part: Part = cls(**values)
    return part


def item_from_dict(data: dict[str, Any]) -> Item:
    """Read an item written by :func:`item_to_dict`."""
    values = dict(data)
    values["component"] = Component(values["component"])
    values["parts"] = tuple(_part_from_dict(p) for p in values["parts"])
    return Item(**values)


def content_key(item: Item) -> str:
    """A hash of everything that decides an item's token count (role, name, parts).

    Used to count each distinct content once; ids, flags and component do not enter.
    """
    payload = json.dumps(
        [item.role, item.name, _plain(item.parts)],
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
        default=str,
    )
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """A tool (function) offered to the model, provider-neutral."""

    name: str
    """Tool name."""
    description: str | None = None
    """What the tool does, as the model reads it."""
    parameters: dict[str, Any] = field(default_factory=_details)
    """JSON Schema of the arguments (OpenAI ``parameters``, Anthropic ``input_schema``)."""
    provider_details: dict[str, Any] = field(default_factory=_details)
    """Fields with no name here (``strict``, ``cache_control``, ``type`` of built-in tools...)."""
