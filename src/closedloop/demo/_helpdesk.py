"""The simulated ticket system: it learns each ticket's fate days after the bot routed it,
and reports it as outcome feedback on the bot's trace, the way a real helpdesk
integration would (``closedloop.feedback.outcome(trace_id, ...)``).

Time is the demo's simulated clock (see ``_run``): outcomes are queued for the day they
happen and reported when the clock reaches that day, so they arrive late and out of
order with the tickets still being routed.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from closedloop import feedback
from closedloop.demo._scenario import (
    ESCALATE_IF_REOPENED,
    ESCALATE_OTHERWISE,
    FOLLOW_UP_REOPEN,
    Ticket,
    draw,
)

REOPEN_WINDOW_DAYS = 5
"""A ticket still closed this many days after routing is reported as not reopened."""
SOURCE = "helpdesk"


@dataclass(frozen=True)
class _Outcome:
    trace_id: str
    reopened: bool
    escalated: bool


class Helpdesk:
    """Knows which team can solve each ticket: a ticket routed elsewhere bounces back and
    is reopened 1-3 days later; a few well-routed ones are reopened for a follow-up."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._due: list[tuple[int, str, _Outcome]] = []
        self.signals_sent = 0

    @property
    def pending(self) -> int:
        """Outcomes not reported yet."""
        return len(self._due)

    @property
    def last_day(self) -> int:
        """The day the last pending outcome is due (-1 when none is)."""
        return max((day for day, _, _ in self._due), default=-1)

    def routed(self, ticket: Ticket, team: str, trace_id: str) -> None:
        """The bot routed ``ticket`` to ``team`` in trace ``trace_id``: decide its fate."""
        misrouted = team != ticket.kind.team
        follow_up = draw(self._seed, "follow-up", ticket.id) < FOLLOW_UP_REOPEN
        reopened = misrouted or follow_up
        escalate = ESCALATE_IF_REOPENED if reopened else ESCALATE_OTHERWISE
        escalated = draw(self._seed, "escalate", ticket.id) < escalate
        delay = (
            1 + int(draw(self._seed, "delay", ticket.id) * 3) if reopened else REOPEN_WINDOW_DAYS
        )
        heapq.heappush(
            self._due, (ticket.day + delay, ticket.id, _Outcome(trace_id, reopened, escalated))
        )

    def advance(self, today: int) -> None:
        """Report every outcome due by the end of ``today``, in the order they happened."""
        while self._due and self._due[0][0] <= today:
            _, _, outcome = heapq.heappop(self._due)
            feedback.outcome(outcome.trace_id, "ticket_reopened", outcome.reopened, source=SOURCE)
            self.signals_sent += 1
            if outcome.escalated:
                feedback.outcome(outcome.trace_id, "escalated", True, source=SOURCE)
                self.signals_sent += 1
