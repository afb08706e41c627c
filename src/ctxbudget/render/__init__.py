"""Renderers: the view → a provider request body, deterministic, plus a verifier that counts it.

Core: may import ``convert``, ``tokens`` and ``session``.

One module per wire format. A renderer never decides what is in the context; it only
serializes the view (stable components first: tools, system, then the conversation).
"""

from ctxbudget.render.anthropic import AnthropicRenderer
from ctxbudget.render.openai_chat import OpenAIChatRenderer
from ctxbudget.render.openai_responses import OpenAIResponsesRenderer
from ctxbudget.render.verify import RenderedCounter

__all__ = [
    "AnthropicRenderer",
    "OpenAIChatRenderer",
    "OpenAIResponsesRenderer",
    "RenderedCounter",
]
