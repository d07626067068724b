"""Browser-safe feedback tokens: signed, expiring permission to send feedback on one call.

A web page cannot hold an API key, so the server that made the LLM call hands the page a token
naming exactly which call it is about and which feedback it may send; the feedback endpoint
checks it before recording anything::

    # server, when rendering the answer
    html = f'<div data-feedback-token="{closedloop.feedback.token(response)}">...'

    # feedback endpoint, for a request from that page
    grant = closedloop.feedback.verify(request_token, "thumbs")  # raises InvalidToken
    closedloop.feedback.thumbs(grant.target, up=True)

A token is ``<payload>.<signature>``, both base64url without padding. The payload is the compact
JSON array ``[version, trace_id, span_id or null, sorted names, expiry, nonce]``; the signature
is HMAC-SHA256 over the encoded payload, keyed with a key derived from the secret so that a
secret shared with another HMAC use (such as user hashing) cannot be abused to forge tokens.
Tokens are not encrypted: anyone holding one can read the trace id and names.

The secret comes from the caller, from ``CLOSEDLOOP_FEEDBACK_TOKEN_KEY``, or from a key file
generated once per machine next to the user hash key file. Tokens made with the key file only
verify on the same machine, which is why using it warns.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace

from closedloop.feedback.targets import resolve
from closedloop.privacy.keys import KeySpec, resolve_key

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

_VERSION = 1
_SIGNATURE_BYTES = 32
_NONCE_BYTES = 8
# Far above any real token (about 200 characters); bounds the work done on untrusted input.
_MAX_TOKEN_LENGTH = 4096
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
# The signing key is HMAC(secret, this label): domain separation from other uses of a secret.
_KEY_LABEL = b"closedloop feedback token v1"


class InvalidToken(ValueError):
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


# --- key resolution -----------------------------------------------------------------------


def key_file_path() -> Path:
    """The per-machine key file, in the same directory as the user hash key file."""
    return KEY_SPEC.key_file_path()


def _signature(key: str | bytes | None, payload: str) -> bytes:
    secret, _ = resolve_key(KEY_SPEC, key, stacklevel=3)  # warn the caller of token() / verify()
    signing_key = hmac.digest(secret, _KEY_LABEL, hashlib.sha256)
    return hmac.digest(signing_key, payload.encode("ascii"), hashlib.sha256)


# --- encoding -----------------------------------------------------------------------------


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str, part: str) -> bytes:
    """Strict base64url: the alphabet only, no padding, and the one canonical spelling.

    Without padding the last character can carry unused low bits; accepting several
    spellings of the same bytes would make distinct tokens verify alike, so only the
    spelling ``_encode`` produces is accepted.
    """
    if not _BASE64URL.fullmatch(text):
        raise InvalidToken(f"malformed token: {part} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken(f"malformed token: {part} is not base64url") from None
    if _encode(raw) != text:
        raise InvalidToken(f"malformed token: {part} is not canonical base64url")
    return raw


# --- creation -----------------------------------------------------------------------------


def _ttl_seconds(ttl: float | datetime.timedelta) -> float:
    if isinstance(ttl, datetime.timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        seconds = float(ttl)
    else:
        raise ValueError(f"ttl must be seconds or a timedelta, got {ttl!r}")
    limit = MAX_TTL.total_seconds()
    if not math.isfinite(seconds) or not 0 < seconds <= limit:
        raise ValueError(
            f"ttl must be positive and at most {MAX_TTL.days} days ({limit:.0f} s), got {ttl!r}"
        )
    return seconds


def _names(names: Iterable[str]) -> list[str]:
    if isinstance(names, (str, bytes)):
        raise ValueError(
            f"names must be a collection of feedback names, not one string: use names=({names!r},)"
        )
    try:
        items = list(names)
    except TypeError:
        raise ValueError(
            f"names must be an iterable of strings, got {type(names).__name__}"
        ) from None
    if not items:
        raise ValueError("names must allow at least one feedback name")
    for name in items:
        if not isinstance(name, str) or not name:
            raise ValueError(f"names must be non-empty strings, got {name!r}")
    return sorted(set(items))


def _now(now: float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise ValueError(f"now must be finite epoch seconds, got {now!r}")
    return float(now)


def token(
    target: Any,
    names: Iterable[str] = DEFAULT_NAMES,
    ttl: float | datetime.timedelta = 3600,
    *,
    key: str | bytes | None = None,
    now: float | None = None,
) -> str:
    """A signed token allowing feedback ``names`` on ``target`` for ``ttl`` (seconds or timedelta).

    ``target`` is anything ``closedloop.feedback.record`` accepts. The token expires on the
    whole second at or after ``now + ttl``; every call makes a different token. It is
    URL- and HTML-attribute-safe: base64url characters and one ``.``.
    """
    resolved = resolve(target)
    allowed = _names(names)
    expires_at = math.ceil(_now(now) + _ttl_seconds(ttl))
    span_id = trace.format_span_id(resolved.span_id) if resolved.span_id else None
    fields = [
        _VERSION,
        resolved.trace_id_hex,
        span_id,
        allowed,
        expires_at,
        _encode(secrets.token_bytes(_NONCE_BYTES)),
    ]
    body = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    payload = _encode(body.encode("utf-8"))
    result = f"{payload}.{_encode(_signature(key, payload))}"
    if len(result) > _MAX_TOKEN_LENGTH:
        raise ValueError(
            f"names are too many or too long: the token would be {len(result)} characters, "
            f"over the {_MAX_TOKEN_LENGTH} that verify() accepts"
        )
    return result


# --- verification -------------------------------------------------------------------------


def _grant(fields: Any) -> FeedbackGrant:
    if not isinstance(fields, list) or not fields:
        raise InvalidToken("malformed token: payload is not a field list")
    version = fields[0]
    if type(version) is not int or version != _VERSION:
        raise InvalidToken(f"malformed token: unsupported version {version!r}")
    if len(fields) != 6:
        raise InvalidToken("malformed token: wrong number of fields")
    _, trace_id, span_id, names, expires_at, nonce = fields
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
    if type(expires_at) is not int:
        raise InvalidToken("malformed token: expiry is not whole epoch seconds")
    if not isinstance(nonce, str) or not nonce:
        raise InvalidToken("malformed token: missing nonce")
    return FeedbackGrant(trace_id, span_id, frozenset(names), float(expires_at))


def verify(
    token: str,
    name: str | None = None,
    *,
    key: str | bytes | None = None,
    now: float | None = None,
) -> FeedbackGrant:
    """The grant a genuine, unexpired token gives, or :class:`InvalidToken` saying why not.

    With ``name``, also require that the token allows that feedback name. The signature is
    checked before the payload is parsed, so forged input never reaches the JSON parser.
    Messages never include the key or the token. :class:`ExpiredToken` (a subclass) means
    the token was genuine but is at or past its expiry.
    """
    current = _now(now)
    if not isinstance(token, str):
        raise InvalidToken(f"malformed token: expected a str, got {type(token).__name__}")
    if len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidToken("malformed token: too long")
    parts = token.split(".")
    if len(parts) != 2:
        raise InvalidToken("malformed token: expected <payload>.<signature>")
    payload, signature_text = parts
    raw_payload = _decode(payload, "payload")
    signature = _decode(signature_text, "signature")
    if len(signature) != _SIGNATURE_BYTES:
        raise InvalidToken("malformed token: signature has the wrong length")
    if not hmac.compare_digest(signature, _signature(key, payload)):
        raise InvalidToken("bad signature")
    try:
        fields = json.loads(raw_payload.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError both are
        raise InvalidToken("malformed token: payload is not JSON") from None
    grant = _grant(fields)
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
