"""The shadow runner's hourly cost cap: USD spent in the current clock hour.

A fixed window, not a sliding one: spending counts per clock hour (hours since the epoch,
so UTC hours) and restarts from 0 when the next hour begins. Reading whether the cap is
reached is one clock read and two comparisons, cheap enough for the user's path; a
sliding window would keep every call's cost and time. The price of simplicity: across an
hour boundary up to twice the cap can be spent within 60 minutes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_HOUR_S = 3600


class HourlyBudget:
    """Spent USD per clock hour against ``cap_usd`` (None: no cap); thread-safe."""

    def __init__(self, cap_usd: float | None, clock: Callable[[], float]) -> None:
        self._cap = cap_usd
        self._clock = clock
        self._lock = threading.Lock()
        self._hour = self._hour_now()
        self._spent = 0.0

    def _hour_now(self) -> int:
        return int(self._clock() // _HOUR_S)

    def exhausted(self) -> bool:
        """True while this hour's spending has reached the cap (read without the lock:
        a stale answer only moves one call across the boundary)."""
        if self._cap is None:
            return False
        return self._spent >= self._cap and self._hour == self._hour_now()

    def spend(self, usd: float) -> None:
        with self._lock:
            self._roll()
            self._spent += usd

    def spent(self) -> float:
        """USD spent so far in the current hour."""
        with self._lock:
            self._roll()
            return self._spent

    def _roll(self) -> None:
        hour = self._hour_now()
        if hour != self._hour:
            self._hour, self._spent = hour, 0.0
