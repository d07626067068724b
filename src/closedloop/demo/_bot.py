"""The support app under test: it triages each ticket with one ``openai`` call, as an app
instrumented with closedloop would, and keeps the trace id with the ticket for the
helpdesk's later feedback."""

from __future__ import annotations

from typing import Any

import openai
from opentelemetry import trace

import closedloop
from closedloop.demo._scenario import PRODUCT, Ticket
from closedloop.experiments import PromptRegistry

PROMPT = "triage"


class SupportBot:
    """Routes tickets with the prompt version the registry picks for the ticket's
    customer (sticky: a customer keeps one version while the shares stay)."""

    def __init__(self, client: openai.OpenAI, registry: PromptRegistry) -> None:
        self._client = client
        self._registry = registry
        self._tracer = trace.get_tracer("closedloop.demo")

    def triage(self, ticket: Ticket) -> tuple[str, str]:
        """The team the model routed ``ticket`` to, and the trace id of the request.

        The request span carries the ticket's topic: the kind of ticket the analysis
        groups the feedback by."""
        attributes = {"support.ticket.id": ticket.id, "support.ticket.topic": ticket.kind.topic}
        variables = {"product": PRODUCT, "ticket": ticket.text}
        with (
            self._tracer.start_as_current_span("triage ticket", attributes=attributes),
            closedloop.context(user_id=ticket.customer, request_id=ticket.id),
            self._registry.select(PROMPT, unit=ticket.customer, variables=variables) as choice,
        ):
            parameters: dict[str, Any] = dict(choice.parameters)
            reply = self._client.chat.completions.create(
                model=choice.model, messages=choice.messages, **parameters
            )
            trace_id = closedloop.current_trace_id()
        if trace_id is None:  # instrument() runs first: every request has a trace
            raise RuntimeError("no trace id: closedloop.instrument() was not called")
        return (reply.choices[0].message.content or "").strip().lower(), trace_id
