"""What the instrumentors need besides a tracer: privacy, user counting and pricing.

Built once by ``closedloop.instrument()`` (or from environment variables when the
instrumentor is loaded by ``opentelemetry-instrument``) and shared by every hook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from closedloop.cost import CostCalculator
from closedloop.instrumentation.users import InteractionCounter, LRUInteractionCounter
from closedloop.privacy import RedactionPipeline, Redactor, UserHasher

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_flag(name: str, default: bool) -> bool:
    """Read a boolean environment variable; an unreadable value is a clear error."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean; use true or false.")


@dataclass
class InstrumentationSettings:
    """Shared, read-mostly configuration for every closedloop hook."""

    capture_content: bool = True
    redactor: RedactionPipeline | None = field(default_factory=RedactionPipeline)
    hasher: UserHasher | None = None
    interactions: InteractionCounter = field(default_factory=LRUInteractionCounter)
    new_user_interactions: int = 10
    costs: CostCalculator = field(default_factory=CostCalculator)

    def __post_init__(self) -> None:
        if self.new_user_interactions < 0:
            raise ValueError(
                "new_user_interactions must be >= 0 (0 marks no user as new), "
                f"got {self.new_user_interactions!r}."
            )

    @classmethod
    def build(
        cls,
        *,
        capture_content: bool | None = None,
        redact: bool = True,
        redactors: Sequence[Redactor] = (),
        user_hash_key: str | bytes | None = None,
        new_user_interactions: int = 10,
        interaction_counter: InteractionCounter | None = None,
        prices: Mapping[str, Mapping[str, object]] | None = None,
    ) -> InstrumentationSettings:
        """Settings from ``instrument()`` arguments, falling back to environment variables.

        ``CLOSEDLOOP_CAPTURE_CONTENT`` and ``CLOSEDLOOP_REDACT`` switch content capture and
        redaction when no argument says otherwise.
        """
        if capture_content is None:
            capture_content = env_flag("CLOSEDLOOP_CAPTURE_CONTENT", True)
        redact = redact and env_flag("CLOSEDLOOP_REDACT", True)
        return cls(
            capture_content=capture_content,
            redactor=RedactionPipeline(extra=redactors) if redact else None,
            hasher=UserHasher(user_hash_key) if user_hash_key is not None else None,
            interactions=interaction_counter or LRUInteractionCounter(),
            new_user_interactions=new_user_interactions,
            costs=CostCalculator(prices),
        )

    def user_hasher(self) -> UserHasher:
        """The hasher, created on first use so apps without user ids never touch a key file."""
        if self.hasher is None:
            self.hasher = UserHasher()
        return self.hasher


_active: InstrumentationSettings | None = None


def activate(settings: InstrumentationSettings | None) -> None:
    """Make ``settings`` the ones feedback and other helpers use (None: back to defaults)."""
    global _active
    _active = settings


def active_settings() -> InstrumentationSettings:
    """The settings of the current instrumentation, or defaults from the environment."""
    global _active
    if _active is None:
        _active = InstrumentationSettings.build()
    return _active
