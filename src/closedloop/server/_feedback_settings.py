"""The feedback endpoint's configuration, checked when the server starts.

A mistake here (a key too short to resist guessing, an origin a browser never sends) would
otherwise show up as every browser request failing, or as an endpoint anyone can write to;
``FeedbackConfigError`` says which setting and how to fix it, without echoing a key.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from closedloop._errors import ClosedloopError

API_KEYS_ENV_VAR: Final = "CLOSEDLOOP_API_KEYS"
"""Comma-separated API keys for server-side feedback callers."""
MIN_API_KEY_LENGTH: Final = 16

_NEW_KEY = "e.g. the output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
# Visible ASCII without the comma that separates keys in the environment variable: what an
# Authorization header carries unchanged.
_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
# What a browser sends as Origin: scheme://host[:port], no path, no trailing slash.
_ORIGIN = re.compile(r"https?://[a-z0-9.\-\[\]:]+")


class FeedbackConfigError(ClosedloopError, ValueError):
    """The feedback endpoint's configuration is unusable; the message names the fix."""


@dataclass(frozen=True)
class Rate:
    """A token bucket: up to ``burst`` requests at once, refilled at ``per_second``."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_second) and self.per_second > 0) or self.burst < 1:
            raise FeedbackConfigError(
                f"rate {self.per_second!r}/s with burst {self.burst!r}: both must be positive "
                "(e.g. Rate(per_second=5, burst=20))"
            )


@dataclass(frozen=True)
class FeedbackEndpointSettings:
    """What ``feedback_routes`` needs: who may send feedback, from where, how often.

    ``nonce_file`` records used browser tokens so that a restart does not reopen them;
    ``token_key`` verifies them (None: ``CLOSEDLOOP_FEEDBACK_TOKEN_KEY`` or the per-machine
    key file, as ``feedback.verify`` resolves it). ``key_rate`` limits each API key,
    ``address_rate`` each remote address sending tokens or bad keys. ``clock`` (epoch
    seconds) drives token expiry, rate limits and the default feedback time.
    """

    nonce_file: Path
    api_keys: frozenset[str] = frozenset()
    token_key: str | bytes | None = None
    cors_origins: frozenset[str] = frozenset()
    key_rate: Rate = Rate(per_second=50.0, burst=200)
    address_rate: Rate = Rate(per_second=2.0, burst=30)
    max_rate_keys: int = 10_000
    max_nonces: int = 100_000
    max_body_bytes: int = 64 * 1024
    busy_retry_after_s: int = 1
    service_name: str = "closedloop-serve"
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        for key in self.api_keys:
            if len(key) < MIN_API_KEY_LENGTH:
                raise FeedbackConfigError(
                    f"an API key is {len(key)} characters; use at least {MIN_API_KEY_LENGTH} "
                    f"random ones, {_NEW_KEY}"
                )
            if not _KEY.fullmatch(key):
                raise FeedbackConfigError(
                    "an API key has spaces, commas or non-ASCII characters, which an "
                    f"Authorization header does not carry reliably; {_NEW_KEY}"
                )
        for origin in self.cors_origins:
            if not _ORIGIN.fullmatch(origin):
                raise FeedbackConfigError(
                    f"CORS origin {origin!r} is not what a browser sends as Origin: write "
                    "scheme://host[:port] in lower case, with no path or trailing slash "
                    "(e.g. https://app.example.com), one per allowed site"
                )
        for name in ("max_rate_keys", "max_nonces", "max_body_bytes", "busy_retry_after_s"):
            if getattr(self, name) < 1:
                raise FeedbackConfigError(f"{name}={getattr(self, name)!r} must be at least 1")


def load_api_keys(
    *, env: Mapping[str, str] | None = None, file: Path | None = None
) -> frozenset[str]:
    """The API keys from ``CLOSEDLOOP_API_KEYS`` (comma-separated) in ``env`` (default: the
    process environment) and from ``file`` (one per line; blank lines and ``#`` comments
    skipped). Surrounding whitespace is dropped: it is never part of a key."""
    variables = os.environ if env is None else env
    keys = {key.strip() for key in variables.get(API_KEYS_ENV_VAR, "").split(",")}
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise FeedbackConfigError(
                f"cannot read the API key file {file}: {error}; write one key per line"
            ) from error
        keys.update(line.strip() for line in text.splitlines() if not line.lstrip().startswith("#"))
    keys.discard("")
    return frozenset(keys)
