"""What the instrumentors need besides a tracer: privacy, user counting, pricing, limits.

Built once by ``closedloop.instrument()`` (or from environment variables when the
instrumentor is loaded by ``opentelemetry-instrument``) and shared by every hook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from closedloop._cost import CostCalculator
from closedloop._runtime import current
from closedloop._validation import (
    require_choice,
    require_non_negative_int,
    require_positive_int,
    require_type,
)
from closedloop.instrumentation._users import InteractionCounter, LRUInteractionCounter
from closedloop.privacy import RedactionPipeline, Redactor, UserHasher

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

StreamUsage = Literal["auto", "always", "never"]
STREAM_USAGE_CHOICES: tuple[StreamUsage, ...] = ("auto", "always", "never")

# Each content attribute (instructions, input messages, output messages, an error message)
# keeps at most this many characters: redaction stays a few milliseconds at worst.
DEFAULT_MAX_CONTENT_CHARS = 65_536


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


# The OTel GenAI instrumentations' switch: booleans, or (newer) where content goes.
OTEL_CAPTURE_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_OTEL_CAPTURE_MODES = {
    "span_only": True,
    "span_and_event": True,
    "event_only": False,  # closedloop records content on spans only
    "no_content": False,
}


def capture_from_environment() -> bool:
    """``CLOSEDLOOP_CAPTURE_CONTENT``, else the standard OTel GenAI variable, else on."""
    if os.environ.get("CLOSEDLOOP_CAPTURE_CONTENT", "").strip():
        return env_flag("CLOSEDLOOP_CAPTURE_CONTENT", True)
    raw = os.environ.get(OTEL_CAPTURE_VARIABLE, "").strip()
    if raw.lower() in _OTEL_CAPTURE_MODES:
        return _OTEL_CAPTURE_MODES[raw.lower()]
    try:
        return env_flag(OTEL_CAPTURE_VARIABLE, True)
    except ValueError:
        modes = ", ".join(m.upper() for m in _OTEL_CAPTURE_MODES)
        raise ValueError(
            f"{OTEL_CAPTURE_VARIABLE}={raw!r} is not understood; use true, false, {modes}."
        ) from None


def _check_redactors(redactors: object) -> None:
    if callable(redactors) and not isinstance(redactors, (list, tuple)):
        raise TypeError(
            f"redactors={redactors!r} is one redactor, not a sequence of them; "
            "pass a list, e.g. redactors=[my_redactor]."
        )
    require_type("redactors", redactors, (list, tuple), "pass a list of callables redactor(text).")
    assert isinstance(redactors, (list, tuple))
    for index, redactor in enumerate(redactors):
        if not callable(redactor):
            raise TypeError(
                f"redactors[{index}]={redactor!r} is not callable; a redactor is a callable "
                "redactor(text) -> (text, count), e.g. RegexRedactor(r'EMP-\\d+', '<EMPLOYEE>')."
            )


def _check_counter(counter: object) -> None:
    if counter is not None and not isinstance(counter, InteractionCounter):
        raise TypeError(
            f"interaction_counter={counter!r} has no increment(user_hash) -> int method; "
            "pass an InteractionCounter such as LRUInteractionCounter(), or leave it out."
        )


def _check_prices(prices: object) -> None:
    fix = (
        "pass a mapping of model name to rates, e.g. "
        "{'my-model': {'input_per_mtok': 0.15, 'output_per_mtok': 0.6}}."
    )
    require_type("prices", prices, Mapping, fix, optional=True)
    if isinstance(prices, Mapping):
        for model, spec in prices.items():
            require_type(f"prices[{model!r}]", spec, Mapping, fix)


@dataclass
class InstrumentationSettings:
    """Shared, read-mostly configuration for every closedloop hook."""

    capture_content: bool = True
    redactor: RedactionPipeline | None = field(default_factory=RedactionPipeline)
    hasher: UserHasher | None = None
    interactions: InteractionCounter = field(default_factory=LRUInteractionCounter)
    new_user_interactions: int = 10
    costs: CostCalculator = field(default_factory=CostCalculator)
    stream_usage: StreamUsage = "auto"
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS

    def __post_init__(self) -> None:
        require_non_negative_int(
            "new_user_interactions",
            self.new_user_interactions,
            "pass a whole number such as 10 (0 marks no user as new).",
        )
        require_choice("stream_usage", self.stream_usage, STREAM_USAGE_CHOICES)
        require_positive_int(
            "max_content_chars", self.max_content_chars, "pass e.g. 65536 characters."
        )

    @classmethod
    def build(
        cls,
        *,
        capture_content: bool | None = None,
        redact: bool | None = None,
        redactors: Sequence[Redactor] = (),
        user_hash_key: str | bytes | None = None,
        new_user_interactions: int = 10,
        interaction_counter: InteractionCounter | None = None,
        prices: Mapping[str, Mapping[str, object]] | None = None,
        stream_usage: StreamUsage = "auto",
        max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS,
    ) -> InstrumentationSettings:
        """Settings from ``instrument()`` arguments, falling back to environment variables.

        ``CLOSEDLOOP_CAPTURE_CONTENT`` (else the standard
        ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``) and ``CLOSEDLOOP_REDACT``
        switch content capture and redaction when no argument says otherwise. Every
        argument is checked here, so a wrong one fails at start-up with the fix instead of
        untracing calls later.
        """
        flag_fix = "pass True or False (or leave it out to read the environment)."
        require_type("capture_content", capture_content, bool, flag_fix, optional=True)
        require_type("redact", redact, bool, flag_fix, optional=True)
        _check_redactors(redactors)
        require_type(
            "user_hash_key",
            user_hash_key,
            (str, bytes),
            "pass a secret string, or set CLOSEDLOOP_USER_HASH_KEY.",
            optional=True,
        )
        if user_hash_key is not None and not user_hash_key:
            raise ValueError(
                "user_hash_key='' is empty; pass a secret string, or leave it out to use "
                "CLOSEDLOOP_USER_HASH_KEY or the per-machine key file."
            )
        _check_counter(interaction_counter)
        _check_prices(prices)
        if capture_content is None:
            capture_content = capture_from_environment()
        if redact is None:
            redact = env_flag("CLOSEDLOOP_REDACT", True)
        return cls(
            capture_content=capture_content,
            redactor=RedactionPipeline(extra=redactors) if redact else None,
            hasher=UserHasher(user_hash_key) if user_hash_key is not None else None,
            interactions=(
                interaction_counter if interaction_counter is not None else LRUInteractionCounter()
            ),
            new_user_interactions=new_user_interactions,
            costs=CostCalculator(prices),
            stream_usage=stream_usage,
            max_content_chars=max_content_chars,
        )

    def user_hasher(self) -> UserHasher:
        """The hasher, created on first use so apps without user ids never touch a key file."""
        if self.hasher is None:
            self.hasher = UserHasher()
        return self.hasher


def active_settings() -> InstrumentationSettings:
    """The active instrumentation's settings, else defaults from the environment."""
    runtime = current()
    with runtime.lock:
        if runtime.instrumentation is not None:
            return runtime.instrumentation.settings
        if runtime.default_settings is None:
            runtime.default_settings = InstrumentationSettings.build()
        return runtime.default_settings
