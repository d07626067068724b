"""Test helpers: a local, deterministic OpenAI-compatible server (stdlib only).

Usage::

    from openai import OpenAI
    from closedloop.testing import OpenAICompatibleServer

    with OpenAICompatibleServer() as server:
        client = OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        messages = [{"role": "user", "content": "hi"}]
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        assert reply.choices[0].message.content == "Echo: hi"

See :mod:`closedloop.testing._server` for the echo, token-counting and error-model rules.
"""

from closedloop.testing._dispatch import Responder
from closedloop.testing._server import OpenAICompatibleServer, RecordedRequest

__all__ = ["OpenAICompatibleServer", "RecordedRequest", "Responder"]
