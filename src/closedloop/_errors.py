"""The one base class of closedloop's own errors.

``except closedloop.ClosedloopError`` catches everything closedloop raises on purpose
(bad configuration, an unusable store, a refused token) and nothing it merely lets
through. A wrong argument type is a plain ``TypeError``; each subclass also derives
from the built-in error it refines, so existing ``except ValueError`` code keeps working.
"""

from __future__ import annotations


class ClosedloopError(Exception):
    """Base of every error closedloop raises on purpose."""
