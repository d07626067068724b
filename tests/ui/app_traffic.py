"""A small support app as a separate process, for the UI tests: the ``openai`` SDK calls
closedloop's local OpenAI-compatible server, ``closedloop.instrument()`` sends the spans
to serve over OTLP, the prompt registry routes each user to triage v3 or v4, and the
simulated ticket system reports outcomes by call id, a few of them late (after sampling
dropped their traces, so serve's rescue brings them back). v4 misroutes fewer tickets, so the
two versions have different reopen rates. Seeded: the same run every time.

Run: ``python tests/ui/app_traffic.py SERVE_URL PROMPTS_DIR TICKETS``; prints what it sent
as JSON. A process of its own, so the instrumentation's global state stays out of pytest.
"""

from __future__ import annotations

import json
import random
import sys
import time

import openai

import closedloop
import closedloop.feedback as fb
from closedloop.experiments import PromptRegistry
from closedloop.testing import OpenAICompatibleServer

REOPEN_RATE = {"v3": 0.35, "v4": 0.10}
USERS = 120
PRODUCTS = ("billing", "shipping", "login")
LATE_S = 3.0
"""Outcomes reported this long after the last call: the sampler (1 s) has decided."""


def main(serve_url: str, prompts: str, tickets: int) -> None:
    rng = random.Random(14)
    # new users' traces are always kept: only a customer's first call counts as new here
    provider = closedloop.instrument(
        "support-triage", endpoint=serve_url, capture_content=True, new_user_interactions=1
    )
    registry = PromptRegistry(prompts, poll_interval_s=None)
    sent = {"calls": 0, "errors": 0, "outcomes": 0, "thumbs": 0}
    late: list[tuple[str, bool]] = []

    def report(call: str, reopened: bool) -> None:
        fb.outcome(call, "ticket_reopened", reopened)
        fb.outcome(call, "task_succeeded", not reopened)
        sent["outcomes"] += 1
        if rng.random() < 0.1:
            fb.outcome(call, "escalated", True)

    with OpenAICompatibleServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        for n in range(tickets):
            user = f"customer-{rng.randrange(USERS)}"
            ticket = f"My {rng.choice(PRODUCTS)} problem number {n} needs help"
            variables = {"ticket": ticket}
            with (
                closedloop.context(user_id=user),
                registry.select("triage", unit=user, variables=variables) as choice,
            ):
                failing = rng.random() < 0.04
                model = "error-429" if failing else choice.model
                sent["calls"] += 1
                try:
                    reply = client.chat.completions.create(model=model, messages=choice.messages)
                except openai.RateLimitError:
                    sent["errors"] += 1
                    continue
            call = fb.call_id(reply)
            reopened = rng.random() < REOPEN_RATE[choice.version]
            if rng.random() < 0.2:  # no outcome yet: sampling may drop the trace
                if rng.random() < 0.5:
                    late.append((call, reopened))
                continue
            report(call, reopened)
            if rng.random() < 0.3:
                fb.thumbs(call, up=not reopened, source="web")
                sent["thumbs"] += 1
        provider.force_flush()  # type: ignore[attr-defined]
        time.sleep(LATE_S)  # past the sampler's decision: the rescue brings these back
        for call, reopened in late:
            report(call, reopened)
    provider.shutdown()  # type: ignore[attr-defined]
    print(json.dumps(sent))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
