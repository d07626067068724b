"""``--since`` as people type it: an age (``3d``, ``12h``, ``30m``) or an ISO timestamp.

One reading for ``closedloop rescue --since`` and serve's ``POST /api/rescue``, so a rescue
covers the same window whether the CLI opens the store or asks serve to.
"""

from __future__ import annotations

import datetime

from closedloop import _durations as durations
from closedloop._errors import ClosedloopError


class SinceError(ClosedloopError, ValueError):
    """A ``since`` that is neither an age nor an ISO timestamp."""


def since_moment(text: str, now: datetime.datetime | None = None) -> datetime.datetime:
    """The moment ``text`` names: an age before ``now`` (default: now), or an ISO time
    (UTC if it names no zone)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    age = durations.seconds(text, unit_required=True)
    if age is not None:
        return now - datetime.timedelta(seconds=age)
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SinceError(
            f"since={text!r} is neither an age like 3d/12h/30m nor an ISO timestamp"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
