"""Browser-safe feedback tokens: signed, expiring permission to send feedback on one call.

A web page cannot hold an API key, so the server that made the LLM call hands the page a token
naming exactly which call it is about and which feedback it may send; the feedback endpoint
checks it before recording anything::

    # server, when rendering the answer
    html = f'<div data-feedback-token="{closedloop.feedback.token(response)}">...'

    # feedback endpoint, for a request from that page
    grant = closedloop.feedback.verify(request_token, "thumbs")  # raises InvalidToken
    closedloop.feedback.thumbs(grant.target, up=True)

Signing, encoding and the issue time are itsdangerous' ``URLSafeTimedSerializer``: the token is
``<payload>.<issued at>.<signature>``, the payload the compact JSON array
``[trace_id, span_id or null, sorted names, lifetime in seconds, nonce]``, the signature
HMAC-SHA256 under a key derived from the secret and this format's salt (so a secret shared
with another HMAC use, such as user hashing, cannot forge tokens, and tokens of another
format version do not verify). Tokens are not encrypted: anyone holding one can read the
trace id and names.

The secret comes from the caller, from ``CLOSEDLOOP_FEEDBACK_TOKEN_KEY``, or from a key file
generated once per machine next to the user hash key file. Tokens made with the key file only
verify on the same machine, which is why using it warns.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadData, BadPayload, BadSignature, TimestampSigner
from itsdangerous import URLSafeTimedSerializer as _Serializer
from itsdangerous.encoding import base64_decode, base64_encode
from opentelemetry import trace

from closedloop._errors import ClosedloopError
from closedloop._validation import finite_number, require_non_empty_str, require_type
from closedloop.feedback._targets import FeedbackTarget, resolve
from closedloop.privacy._keys import KeySpec, resolve_key

__all__ = [
    "DEFAULT_NAMES",
    "KEY_ENV_VAR",
    "KEY_SPEC",
    "MAX_TTL",
    "ExpiredToken",
    "FeedbackGrant",
    "InvalidToken",
    "key_file_path",
    "token",
    "verify",
]

KEY_ENV_VAR = "CLOSEDLOOP_FEEDBACK_TOKEN_KEY"
KEY_SPEC = KeySpec(
    purpose="feedback token key",
    argument="key",
    env_var=KEY_ENV_VAR,
    file_name="feedback_token_key",
    consequence="feedback tokens only verify on this machine, so an app served by several "
    "machines or containers rejects them.",
)
DEFAULT_NAMES = ("thumbs", "rating", "comment")
MAX_TTL = datetime.timedelta(days=30)

# The format version lives in the salt: a token of another version fails its signature.
_SALT = "closedloop feedback token v2"
_NONCE_BYTES = 8
# Far above any real token (about 200 characters); bounds the work done on untrusted input.
_MAX_TOKEN_LENGTH = 4096
# itsdangerous' decoder skips characters outside the alphabet and ignores the unused low bits
# of a last base64 character; checking the shape first keeps every token one exact spelling.
# (The issue time is empty at the epoch's first second: itsdangerous strips leading zeros.)
_SHAPE = re.compile(r"\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.([A-Za-z0-9_-]+)")
# Issue times are whole seconds, so a lifetime rounded up to the expiry can exceed MAX_TTL by 1.
_MAX_LIFETIME_S = int(MAX_TTL.total_seconds()) + 1
# The latest clock reading token() and verify() accept: a token issued then still expires
# within what a datetime holds (before the year 10000).
_LATEST_NOW_S = (
    datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc).timestamp()
    - _MAX_LIFETIME_S
)


class InvalidToken(ClosedloopError, ValueError):
    """The token is malformed, forged, expired, or does not allow the requested feedback."""


class ExpiredToken(InvalidToken):
    """The token was genuine but its time is up."""

    def __init__(self, message: str, expires_at: float) -> None:
        super().__init__(message)
        self.expires_at = expires_at


@dataclass(frozen=True)
class FeedbackGrant:
    """What a verified token allows: feedback ``names`` on one call, until ``expires_at``."""

    trace_id: str
    span_id: str | None
    names: frozenset[str]
    expires_at: float

    @property
    def target(self) -> str:
        """``trace_id:span_id`` (or the trace id), as ``closedloop.feedback.record`` takes."""
        return f"{self.trace_id}:{self.span_id}" if self.span_id else self.trace_id


def key_file_path() -> Path:
    """The per-machine key file, in the same directory as the user hash key file."""
    return KEY_SPEC.key_file_path()


class _Signer(TimestampSigner):
    """This format's signer: HMAC-SHA256 under HMAC(secret, salt), timestamps from ``now``
    (the caller's clock, so expiry is testable)."""

    default_digest_method = staticmethod(hashlib.sha256)
    default_key_derivation = "hmac"

    def __init__(self, secret_key: list[bytes], salt: bytes | None, *, now: float) -> None:
        super().__init__(secret_key, salt=salt)
        self._now = now

    def get_timestamp(self) -> int:
        return math.floor(self._now)


def _serializer(key: str | bytes | None, now: float) -> _Serializer:
    """The serializer for ``key``; resolving it may warn, at the caller of token()/verify()."""
    secret, _ = resolve_key(KEY_SPEC, key, stacklevel=3)
    return _Serializer(secret, salt=_SALT, signer=_Signer, signer_kwargs={"now": now})


# --- creation -----------------------------------------------------------------------------


def _ttl_seconds(ttl: float | datetime.timedelta) -> float:
    fix = "pass seconds or a timedelta."
    require_type("ttl", ttl, (datetime.timedelta, int, float), fix)
    if isinstance(ttl, datetime.timedelta):
        seconds = ttl.total_seconds()
    else:
        seconds = finite_number("ttl", ttl, fix)
    limit = MAX_TTL.total_seconds()
    if not 0 < seconds <= limit:
        raise ValueError(
            f"ttl must be positive and at most {MAX_TTL.days} days ({limit:.0f} s), got {ttl!r}"
        )
    return seconds


def _names(names: Iterable[str]) -> list[str]:
    if isinstance(names, (str, bytes)):
        raise TypeError(
            f"names must be a collection of feedback names, not one string: use names=({names!r},)"
        )
    require_type("names", names, Iterable, "pass a list of feedback names, e.g. ['thumbs'].")
    items = list(names)
    if not items:
        raise ValueError("names must allow at least one feedback name")
    for name in items:
        require_non_empty_str("names[]", name, "pass feedback names as non-empty text.")
    return sorted(set(items))


def _now(now: float | None) -> float:
    if now is None:
        return time.time()
    seconds = finite_number("now", now, "pass epoch seconds, e.g. time.time().")
    if not 0 <= seconds <= _LATEST_NOW_S:
        raise ValueError(
            f"now={now!r} is not epoch seconds between 0 and {_LATEST_NOW_S:.0f} (9999-12-01); "
            "pass epoch seconds, e.g. time.time()."
        )
    return seconds


def token(
    target: FeedbackTarget,
    names: Iterable[str] = DEFAULT_NAMES,
    ttl: float | datetime.timedelta = 3600,
    *,
    key: str | bytes | None = None,
    now: float | None = None,
) -> str:
    """A signed token allowing feedback ``names`` on ``target`` for ``ttl`` (seconds or timedelta).

    ``target`` is anything ``closedloop.feedback.record`` accepts. The token expires on the
    whole second at or after ``now + ttl``; every call makes a different token. It is
    URL- and HTML-attribute-safe: base64url characters and dots.
    """
    resolved = resolve(target)
    allowed = _names(names)
    current = _now(now)
    lifetime = math.ceil(current + _ttl_seconds(ttl)) - math.floor(current)
    span_id = trace.format_span_id(resolved.span_id) if resolved.span_id else None
    nonce = base64_encode(secrets.token_bytes(_NONCE_BYTES)).decode("ascii")
    fields = [resolved.trace_id_hex, span_id, allowed, lifetime, nonce]
    result = _serializer(key, current).dumps(fields)
    if len(result) > _MAX_TOKEN_LENGTH:
        raise ValueError(
            f"names are too many or too long: the token would be {len(result)} characters, "
            f"over the {_MAX_TOKEN_LENGTH} that verify() accepts"
        )
    return result


# --- verification -------------------------------------------------------------------------


def _check_shape(token: object) -> str:
    """The token as text in its one canonical spelling, before any key work is done."""
    if not isinstance(token, str):
        raise InvalidToken(f"malformed token: expected a str, got {type(token).__name__}")
    if len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidToken("malformed token: too long")
    shape = _SHAPE.fullmatch(token)
    if shape is None:
        raise InvalidToken("malformed token: expected <payload>.<issued at>.<signature>")
    signature = shape[1]
    try:
        canonical = base64_encode(base64_decode(signature)).decode("ascii") == signature
    except BadData:
        raise InvalidToken("malformed token: signature is not base64url") from None
    if not canonical:
        raise InvalidToken("malformed token: signature is not canonical base64url")
    return token


def _grant(fields: object, issued_at: int) -> FeedbackGrant:
    if not isinstance(fields, list) or not fields:
        raise InvalidToken("malformed token: payload is not a field list")
    if len(fields) != 5:
        raise InvalidToken("malformed token: wrong number of fields")
    trace_id, span_id, names, lifetime, nonce = fields
    if not isinstance(trace_id, str) or not (span_id is None or isinstance(span_id, str)):
        raise InvalidToken("malformed token: ids are not strings")
    target = f"{trace_id}:{span_id}" if span_id is not None else trace_id
    try:
        resolved = resolve(target)
    except ValueError:
        raise InvalidToken("malformed token: invalid trace or span id") from None
    if resolved.trace_id_hex != trace_id or (
        span_id is not None and trace.format_span_id(resolved.span_id or 0) != span_id
    ):
        raise InvalidToken("malformed token: ids are not canonical lowercase hex")
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(name, str) and name for name in names)
    ):
        raise InvalidToken("malformed token: names are not non-empty strings")
    if type(lifetime) is not int or not 0 < lifetime <= _MAX_LIFETIME_S:
        raise InvalidToken("malformed token: lifetime is not whole seconds within MAX_TTL")
    if not isinstance(nonce, str) or not nonce:
        raise InvalidToken("malformed token: missing nonce")
    return FeedbackGrant(trace_id, span_id, frozenset(names), float(issued_at + lifetime))


def verify(
    token: str,
    name: str | None = None,
    *,
    key: str | bytes | None = None,
    now: float | None = None,
) -> FeedbackGrant:
    """The grant a genuine, unexpired token gives, or :class:`InvalidToken` saying why not.

    With ``name``, also require that the token allows that feedback name. The signature is
    checked before the payload is decoded, so forged input never reaches the JSON parser.
    Messages never include the key or the token. :class:`ExpiredToken` (a subclass) means
    the token was genuine but is at or past its expiry. The token and ``name`` usually come
    from a request, so anything wrong with them is an :class:`InvalidToken`, never a
    ``TypeError``.
    """
    current = _now(now)
    checked = _check_shape(token)
    try:
        fields, issued = _serializer(key, current).loads(checked, return_timestamp=True)
    except BadPayload:
        raise InvalidToken("malformed token: payload is not JSON") from None
    except BadSignature:
        raise InvalidToken("bad signature") from None
    grant = _grant(fields, int(issued.timestamp()))
    if current >= grant.expires_at:
        expired = datetime.datetime.fromtimestamp(grant.expires_at, datetime.timezone.utc)
        raise ExpiredToken(
            f"expired token: it expired at {expired.isoformat()} "
            f"({current - grant.expires_at:.0f} s ago)",
            grant.expires_at,
        )
    if name is not None and (not isinstance(name, str) or name not in grant.names):
        raise InvalidToken(
            f"token does not allow feedback {name!r}; it allows {', '.join(sorted(grant.names))}"
        )
    return grant
