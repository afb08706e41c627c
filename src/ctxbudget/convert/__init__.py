"""Lossless conversion between provider wire formats and the neutral item model.

Core: may import ``session`` and ``errors`` only.

``to_X(from_X(messages)) == messages`` for every format; converting across formats keeps
the meaning (tool calls stay answered, system prompts stay system) but not provider-only
fields. See :mod:`ctxbudget.convert.request` for whole request bodies.
"""

from ctxbudget.convert.anthropic import (
    from_anthropic,
    from_anthropic_tools,
    to_anthropic,
    to_anthropic_tools,
)
from ctxbudget.convert.openai_chat import (
    from_openai_chat,
    from_openai_chat_tools,
    to_openai_chat,
    to_openai_chat_tools,
)
from ctxbudget.convert.openai_responses import (
    from_openai_responses,
    from_openai_responses_tools,
    to_openai_responses,
    to_openai_responses_tools,
)
from ctxbudget.convert.request import (
    Format,
    Request,
    detect_format,
    read_request,
    write_request,
)

__all__ = [
    "Format",
    "Request",
    "detect_format",
    "from_anthropic",
    "from_anthropic_tools",
    "from_openai_chat",
    "from_openai_chat_tools",
    "from_openai_responses",
    "from_openai_responses_tools",
    "read_request",
    "to_anthropic",
    "to_anthropic_tools",
    "to_openai_chat",
    "to_openai_chat_tools",
    "to_openai_responses",
    "to_openai_responses_tools",
    "write_request",
]
