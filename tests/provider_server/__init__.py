"""A fake-but-faithful LLM provider for tests: the real SDK clients talk to it over HTTP.

It serves OpenAI Chat Completions and Responses (``/v1/chat/completions``,
``/v1/responses``, ``/v1/responses/input_tokens``) and Anthropic Messages
(``/v1/messages``, ``/v1/messages/count_tokens``), plain and streamed, and bills each call
the way the providers do: its own token counts (o200k for OpenAI, scaled cl100k for
Anthropic, so client estimates must calibrate), OpenAI's automatic 128-token-block prefix
cache and Anthropic's explicit ``cache_control`` breakpoints with 5m/1h TTLs, context
windows, request validation (orphan tool calls/results) and failures on demand.

It is an independent model of the providers: nothing of ctxbudget is used but the
offline encoding loader. One module per wire format; ``_server`` holds the HTTP side.

    with ProviderServer() as server:
        client = openai.OpenAI(api_key="test", base_url=server.openai_base_url)
        ...
        assert server.billed[-1].input_tokens == server.count_input("openai_chat", body)
"""

from ._core import Billed, Reply
from ._server import ProviderServer

__all__ = ["Billed", "ProviderServer", "Reply"]
