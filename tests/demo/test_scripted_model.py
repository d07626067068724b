"""The demo's scripted model through the local server's ``responder`` facility: answers
follow the prompt's text (a routing rule lowers misroutes), unknown requests get the
default echo, and a responder that fails is an HTTP 500 the SDK raises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai
import pytest

from closedloop.demo._scenario import KINDS, ScriptedModel, tickets
from closedloop.testing import OpenAICompatibleServer

PLAIN = "Route the ticket. Answer billing, accounts, technical or shipping."
RULED = PLAIN + " Refunds for cancelled orders go to billing."


def _client(server: OpenAICompatibleServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)


def _route(client: openai.OpenAI, system: str, text: str) -> str:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": text}],
    )
    return reply.choices[0].message.content or ""


def test_a_rule_in_the_prompt_lowers_misroutes() -> None:
    refund = next(kind for kind in KINDS if kind.rule == "refunds for cancelled orders")
    batch = [
        ticket
        for ticket in tickets(1, first_id=1, count=600, first_day=1, days=7, customers=100)
        if ticket.kind is refund
    ]
    with OpenAICompatibleServer(responder=ScriptedModel(1, batch)) as server:
        client = _client(server)
        wrong = {
            system: sum(_route(client, system, t.text) != refund.team for t in batch) / len(batch)
            for system in (PLAIN, RULED)
        }
    assert wrong[PLAIN] == pytest.approx(refund.misroute, abs=0.12)
    assert wrong[RULED] == pytest.approx(refund.misroute_with_rule, abs=0.1)


def test_unknown_requests_get_the_echo() -> None:
    with OpenAICompatibleServer(responder=ScriptedModel(1, [])) as server:
        assert _route(_client(server), PLAIN, "hello") == "Echo: hello"


def test_responses_api_and_usage_follow_the_scripted_text() -> None:
    def responder(request: Mapping[str, Any]) -> str:
        return "shipping team"

    with OpenAICompatibleServer(responder=responder) as server:
        reply = _client(server).responses.create(model="gpt-4o-mini", input="where is it?")
    assert reply.output_text == "shipping team"
    assert reply.usage is not None and reply.usage.output_tokens == 2


def test_a_failing_responder_is_a_500() -> None:
    def responder(request: Mapping[str, Any]) -> str:
        raise LookupError("no script for this")

    with (
        OpenAICompatibleServer(responder=responder) as server,
        pytest.raises(openai.InternalServerError, match="LookupError"),
    ):
        _route(_client(server), PLAIN, "hi")
