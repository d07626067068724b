"""Example traffic for the compose deployment: real openai calls and their feedback, over OTLP.

A support bot's conversations against the local OpenAI-compatible server
(``closedloop.testing``, no API key), traced by ``closedloop.instrument()`` and sent over
OTLP/HTTP to a collector (or ``closedloop serve``), so Grafana shows data within a minute.
Each call gets the feedback a real app would send later: thumbs, ratings, outcomes, safety
verdicts, escalations. Configured by environment:

- ``CLOSEDLOOP_OTLP_ENDPOINT``: OTLP/HTTP base URL (default ``http://localhost:4318``)
- ``CLOSEDLOOP_DEMO_REQUESTS``: stop after this many requests (default 0: no limit)
- ``CLOSEDLOOP_DEMO_DURATION_S``: stop after this many seconds (default 0: no limit)
- ``CLOSEDLOOP_DEMO_RATE``: requests per second (default 2)
- ``CLOSEDLOOP_DEMO_SEED``: seed of the random choices (default 7)

``docker compose --profile demo up`` runs it in the app image against the collector.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from dataclasses import dataclass

import openai

import closedloop
import closedloop.feedback
from closedloop.testing import OpenAICompatibleServer

SERVICE = "support-bot-demo"
BATCH = 1000
"""Requests per local server: it records every request, so a fresh one bounds memory."""
QUESTIONS = (
    "Where is my order 1234?",
    "Can I get a refund for a damaged item?",
    "How long does shipping to Berlin take?",
    "My password reset email never arrives, help",
    "Cancel my subscription please, reach me at ann@example.com",
    "Why was I charged twice this month?",
)


@dataclass(frozen=True)
class Settings:
    """What to send, where, and for how long (from the environment)."""

    endpoint: str
    requests: int
    duration_s: float
    rate: float
    seed: int

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            endpoint=env.get("CLOSEDLOOP_OTLP_ENDPOINT", "http://localhost:4318"),
            requests=int(env.get("CLOSEDLOOP_DEMO_REQUESTS", "0")),
            duration_s=float(env.get("CLOSEDLOOP_DEMO_DURATION_S", "0")),
            rate=float(env.get("CLOSEDLOOP_DEMO_RATE", "2")),
            seed=int(env.get("CLOSEDLOOP_DEMO_SEED", "7")),
        )


def one_request(client: openai.OpenAI, rng: random.Random, n: int) -> None:
    """One user turn: an LLM call (sometimes streamed, sometimes failing), then feedback."""
    version = "v4" if rng.random() < 0.3 else "v3"
    with closedloop.context(
        user_id=f"customer-{rng.randrange(200)}",
        conversation_id=f"conv-{n // 3}",
        turn=n % 3 + 1,
        prompt_name="support",
        prompt_version=version,
    ):
        messages = [
            {"role": "system", "content": "You are a concise support assistant."},
            {"role": "user", "content": rng.choice(QUESTIONS)},
        ]
        if rng.random() < 0.03:
            with contextlib.suppress(openai.RateLimitError):
                client.chat.completions.create(model="error-429", messages=messages)
            return
        if rng.random() < 0.4:
            for _ in client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, stream=True
            ):
                pass
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        trace_id = closedloop.current_trace_id()
    if trace_id is not None:
        send_feedback(trace_id, rng, better=version == "v4")


def send_feedback(trace_id: str, rng: random.Random, *, better: bool) -> None:
    """What users and the app report about a call; v4 does a little better, so the
    dashboards have a difference to show."""
    success = 0.8 if better else 0.65
    if rng.random() < 0.5:
        closedloop.feedback.record(trace_id, "thumbs", rng.random() < success + 0.1)
    if rng.random() < 0.2:
        closedloop.feedback.record(trace_id, "rating", rng.randint(3 if better else 2, 5))
    closedloop.feedback.outcome(trace_id, "task_succeeded", rng.random() < success)
    if rng.random() < 0.1:
        closedloop.feedback.outcome(trace_id, "ticket_reopened", rng.random() < 0.3)
    if rng.random() < 0.08:
        closedloop.feedback.outcome(trace_id, "escalated", True)
    if rng.random() < 0.05:
        closedloop.feedback.record(trace_id, "safety", label=rng.choice(("low", "medium")))


def run(settings: Settings) -> int:
    """Send traffic until the request or time limit; returns the number of requests."""
    provider = closedloop.instrument(
        service_name=SERVICE, endpoint=settings.endpoint, stream_usage="always"
    )
    rng = random.Random(settings.seed)
    deadline = time.monotonic() + settings.duration_s if settings.duration_s > 0 else None
    sent = 0

    def more() -> bool:
        if settings.requests and sent >= settings.requests:
            return False
        return deadline is None or time.monotonic() < deadline

    try:
        while more():
            with OpenAICompatibleServer() as server:
                client = openai.OpenAI(base_url=server.base_url, api_key="demo", max_retries=0)
                for _ in range(BATCH):
                    if not more():
                        break
                    one_request(client, rng, sent)
                    sent += 1
                    if sent % 100 == 0:
                        print(f"{SERVICE}: {sent} requests sent to {settings.endpoint}")
                    time.sleep(1 / settings.rate)
    finally:
        provider.force_flush()
        closedloop.uninstrument()
    return sent


def main() -> None:
    settings = Settings.from_env()
    print(f"{SERVICE}: sending to {settings.endpoint} at {settings.rate} requests/s", flush=True)
    sent = run(settings)
    print(f"{SERVICE}: done, {sent} requests", file=sys.stderr)


if __name__ == "__main__":
    main()
