"""Helpers shared by the wire-format converters.

``provider_details`` holds two things: the wire fields we have no name for, kept flat
and verbatim, and, under the reserved key ``"_wire"``, the format they came from plus the
few *hints* needed to write the message back byte-for-byte (e.g. "content was a list").
The format tag is what keeps one provider's fields out of another provider's request:
a writer only emits details tagged with its own format. Parts that come out exactly as
the default writer would produce them carry no details at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from copy import deepcopy
from dataclasses import replace
from typing import Any, NoReturn, TypeVar

from ctxbudget.errors import ConversionError
from ctxbudget.session.items import DocumentPart, Item, Part, TextPart

META = "_wire"
"""Reserved ``provider_details`` key for the source format and round-trip hints."""

Json = dict[str, Any]


def fail(message: str, path: str) -> NoReturn:
    """Raise the one error type every converter raises, naming where."""
    raise ConversionError(message, path=path)


def describe(value: Any) -> str:
    """A short name of a JSON value's type for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def as_object(value: Any, path: str) -> Json:
    """A mapping copied into a plain dict, or a ConversionError."""
    if not isinstance(value, Mapping):
        fail(f"expected an object, got {describe(value)}", path)
    return dict(value)


def as_array(value: Any, path: str) -> list[Any]:
    """A list or tuple as a list (a string is not accepted), or a ConversionError."""
    if not isinstance(value, list | tuple):
        fail(f"expected an array, got {describe(value)}", path)
    return list(value)


def pop_str(obj: Json, key: str, path: str) -> str:
    """Remove and return a required string field."""
    if key not in obj:
        fail(f"missing required field {key!r}", path)
    value = obj.pop(key)
    if not isinstance(value, str):
        fail(f"expected a string, got {describe(value)}", f"{path}.{key}")
    return value


def pop_opt_str(obj: Json, key: str, path: str) -> str | None:
    """Remove and return an optional string; absent or null stays where it is (kept verbatim)."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        fail(f"expected a string or null, got {describe(value)}", f"{path}.{key}")
    del obj[key]
    return value


def details(fmt: str, extras: Mapping[str, Any], path: str, **hints: Any) -> Json:
    """``provider_details`` from unknown wire fields and round-trip hints (``None`` = unset).

    Empty when there is nothing to keep, so plain parts stay plain.
    """
    if META in extras:
        fail(f"the field name {META!r} is reserved by ctxbudget", path)
    out = deepcopy(dict(extras))  # items never share mutable state with the caller
    set_hints = {k: deepcopy(v) for k, v in hints.items() if v is not None}
    if out or set_hints:
        out[META] = {"format": fmt, **set_hints}
    return out


def item_details(fmt: str, extras: Mapping[str, Any], path: str, **hints: Any) -> Json:
    """Like :func:`details` but always tagged: every item read knows its source format."""
    out = details(fmt, extras, path, **hints)
    out.setdefault(META, {"format": fmt})
    return out


def is_from(provider_details: Mapping[str, Any], fmt: str) -> bool:
    """Whether these details were written when reading ``fmt``."""
    meta = provider_details.get(META)
    return isinstance(meta, Mapping) and meta.get("format") == fmt


P = TypeVar("P", bound=Part)


def add_hints(part: P, fmt: str, **hints: Any) -> P:
    """A copy of ``part`` with more round-trip hints (``None`` = unset)."""
    set_hints = {k: v for k, v in hints.items() if v is not None}
    if not set_hints:
        return part
    kept = dict(part.provider_details)
    kept[META] = {"format": fmt, **kept.get(META, {}), **set_hints}
    return replace(part, provider_details=kept)


def own(provider_details: Mapping[str, Any], fmt: str) -> tuple[Json, Json]:
    """The flat wire fields and hints if they were written by ``fmt``, else two empty dicts.

    Copies, so a written request never shares mutable state with the items.
    """
    meta = provider_details.get(META)
    if not isinstance(meta, Mapping) or meta.get("format") != fmt:
        return {}, {}
    flat = {k: deepcopy(v) for k, v in provider_details.items() if k != META}
    hints = {k: deepcopy(v) for k, v in meta.items() if k != "format"}
    return flat, hints


def opaque(fmt: str, raw: Mapping[str, Any], path: str) -> DocumentPart:
    """A wire block we have no model for, kept whole so it is never dropped."""
    return DocumentPart(provider_details=details(fmt, raw, path, opaque=True))


def is_opaque(provider_details: Mapping[str, Any]) -> bool:
    """Whether these details hold a whole wire block of some format (see :func:`opaque`)."""
    meta = provider_details.get(META)
    return isinstance(meta, Mapping) and bool(meta.get("opaque"))


def opaque_body(part: Part, fmt: str, path: str) -> Json | None:
    """The original block of an opaque part of ``fmt``; None for anything else (another
    format's opaque block is written as text: :func:`foreign_as_text`)."""
    if not is_opaque(part.provider_details):
        return None
    flat, _ = own(part.provider_details, fmt)
    return flat or None


def foreign_as_text(part: P, fmt: str) -> P | TextPart:
    """``part``, or, for an opaque block of another format than ``fmt`` (a web search call,
    a server tool result...), a text part quoting it whole as JSON: rendered for another
    provider it is read as what it was, never dropped and never a request error."""
    if not is_opaque(part.provider_details) or own(part.provider_details, fmt)[0]:
        return part
    meta = part.provider_details[META]
    block = {k: v for k, v in part.provider_details.items() if k != META}
    kind = block.get("type", "block")
    text = json.dumps(block, ensure_ascii=False, sort_keys=True, default=str)
    return TextPart(text=f"[{meta.get('format')} {kind}, kept as JSON: {text}]")


def is_plain_text(parts: Sequence[Part], fmt: str) -> bool:
    """Whether content is one text part with nothing of ``fmt`` to keep (so a bare string)."""
    if len(parts) != 1 or not isinstance(parts[0], TextPart):
        return False
    flat, hints = own(parts[0].provider_details, fmt)
    return not flat and not hints


_DATA_URL = re.compile(r"data:(?P<mt>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)


def split_data_url(url: str) -> tuple[str, str] | None:
    """``(media_type, base64 data)`` of a ``data:`` URL, or None."""
    match = _DATA_URL.fullmatch(url)
    return (match["mt"], match["data"]) if match else None


def data_url(media_type: str, data: str) -> str:
    """A ``data:`` URL of base64 data."""
    return f"data:{media_type};base64,{data}"


def merge(base: Json, extra: Mapping[str, Any] | None) -> Json:
    """``base`` plus the kept fields it does not already set."""
    for key, value in (extra or {}).items():
        base.setdefault(key, value)
    return base


def item_id(prefix: str, start: int, index: int) -> str:
    """The deterministic id of the ``index``-th item read."""
    return f"{prefix}{start + index}"


def text_of(item: Item, path: str) -> list[str]:
    """Texts of an item made only of text parts (system prompts); raises otherwise."""
    out: list[str] = []
    for j, part in enumerate(item.parts):
        if not isinstance(part, TextPart):
            fail(f"expected only text here, got a {part.kind} part", f"{path}.parts[{j}]")
        out.append(part.text)
    return out
