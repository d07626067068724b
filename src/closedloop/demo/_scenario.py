"""The demo's world: the kinds of support ticket, the team that can solve each, and how the
(scripted) model routes them under a given prompt.

This is the only place that decides who gets misrouted. The model reads the rendered
prompt, not a version label: a kind is misrouted less often when the system prompt states
its routing rule, which is what v4 adds. Every number the demo prints is measured
downstream of these choices (serve, the store, its views, ``compare``), never copied from
here.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PRODUCT = "Acme Cloud"
FOLLOW_UP_REOPEN = 0.02
"""Share of well-routed tickets that are reopened anyway (a follow-up question)."""
ESCALATE_IF_REOPENED = 0.4
ESCALATE_OTHERWISE = 0.03


@dataclass(frozen=True)
class Kind:
    """A kind of ticket: the topic the customer picks in the form, the team that can solve
    it, and how often the model sends it elsewhere (``wrong_team``), without and with the
    routing rule (``rule``, a phrase the system prompt must contain) in the prompt."""

    topic: str
    team: str
    weight: float
    bodies: tuple[str, ...]
    misroute: float
    wrong_team: str
    rule: str = ""
    misroute_with_rule: float = 0.0


KINDS: tuple[Kind, ...] = (
    Kind(
        "duplicate charge",
        "billing",
        0.18,
        (
            "I was charged twice for my {plan} plan this month ({amount} each).",
            "My card shows two identical payments of {amount} for invoice {invoice}.",
        ),
        0.04,
        "accounts",
    ),
    Kind(
        "refund, cancelled order",
        "billing",
        0.16,
        (
            "I cancelled order #{order} before it shipped but the refund of {amount} "
            "never arrived.",
            "Order #{order} was cancelled and the courier still tried to deliver it. "
            "Where is my money?",
        ),
        0.60,
        "shipping",
        rule="refunds for cancelled orders",
        misroute_with_rule=0.10,
    ),
    Kind(
        "password reset",
        "accounts",
        0.14,
        (
            "The password reset email never arrives for {email}.",
            "I am locked out after too many password attempts on {email}.",
        ),
        0.05,
        "technical",
    ),
    Kind(
        "SSO login",
        "technical",
        0.14,
        (
            "Nobody in our {plan} workspace can log in through Okta since {weekday}: SAML error.",
            "Single sign-on loops back to the sign-in page for every user of our {plan} workspace.",
        ),
        0.55,
        "accounts",
        rule="single sign-on (sso) login failures",
        misroute_with_rule=0.08,
    ),
    Kind(
        "API error",
        "technical",
        0.12,
        (
            "The orders API answers 502 for about one request in ten since {weekday}.",
            "Webhook deliveries to our endpoint stopped after we rotated the secret.",
        ),
        0.06,
        "accounts",
    ),
    Kind(
        "late delivery",
        "shipping",
        0.14,
        (
            "Order #{order} was due on {weekday} and the tracking has not moved.",
            "The parcel for order #{order} shows delivered but nothing arrived.",
        ),
        0.05,
        "billing",
    ),
    Kind(
        "invoice details",
        "billing",
        0.12,
        (
            "Please change the company address on our invoices to {city}.",
            "Our VAT number changed: invoice {invoice} and the next ones must show it.",
        ),
        0.30,
        "accounts",
    ),
)

_PLANS = ("Starter", "Team", "Business")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_CITIES = ("Lyon", "Porto", "Leipzig", "Turin", "Ghent")


@dataclass(frozen=True)
class Ticket:
    """One ticket as the helpdesk receives it, on simulated ``day``."""

    id: str
    day: int
    customer: str
    kind: Kind
    text: str


def draw(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) fixed by the seed and ``parts``: the same in every
    process and Python version (``hash()`` is salted per process)."""
    key = ":".join(str(part) for part in (seed, *parts)).encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def tickets(
    seed: int, *, first_id: int, count: int, first_day: int, days: int, customers: int
) -> list[Ticket]:
    """``count`` tickets spread evenly over ``days`` days from ``first_day``, each from one
    of ``customers`` customers (who come back: routing is sticky by customer)."""
    rng = random.Random(f"{seed}:tickets:{first_day}")
    weights = [kind.weight for kind in KINDS]
    made = []
    for index in range(count):
        kind = rng.choices(KINDS, weights)[0]
        customer = f"C-{rng.randrange(customers):05d}"
        ticket_id = f"T-{first_id + index:05d}"
        body = rng.choice(kind.bodies).format(
            plan=rng.choice(_PLANS),
            amount=f"${rng.randint(9, 240)}.{rng.randint(0, 99):02d}",
            invoice=f"INV-{rng.randint(1000, 9999)}",
            order=rng.randint(10000, 99999),
            email=f"{customer.lower()}@example.com",
            weekday=rng.choice(_DAYS),
            city=rng.choice(_CITIES),
        )
        made.append(
            Ticket(
                ticket_id, first_day + index * days // count, customer, kind, f"{ticket_id}: {body}"
            )
        )
    return made


class ScriptedModel:
    """The local server's model for the demo (a ``closedloop.testing`` responder): answers
    a triage request with a team, misrouting each kind as often as the prompt it reads
    makes it. Requests about no known ticket get the server's default answer."""

    def __init__(self, seed: int, known: Iterable[Ticket]) -> None:
        self._seed = seed
        self._tickets = {ticket.text: ticket for ticket in known}

    def __call__(self, request: Mapping[str, Any]) -> str | None:
        messages = [m for m in request.get("messages") or [] if isinstance(m, Mapping)]
        ticket = next(
            (
                self._tickets.get(str(m.get("content")))
                for m in reversed(messages)
                if m.get("role") == "user"
            ),
            None,
        )
        if ticket is None:
            return None
        system = " ".join(str(m.get("content")) for m in messages if m.get("role") == "system")
        kind = ticket.kind
        follows_rule = bool(kind.rule) and kind.rule in system.lower()
        chance = kind.misroute_with_rule if follows_rule else kind.misroute
        return kind.wrong_team if draw(self._seed, "route", ticket.id) < chance else kind.team
