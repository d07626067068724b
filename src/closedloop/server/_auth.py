"""Who may send feedback: servers with an API key, browsers with a signed feedback token.

A key is matched against every configured key with ``hmac.compare_digest`` on SHA-256
digests (equal lengths, no early exit), so response time says nothing about how close a
guess was. A token is checked by ``closedloop.feedback.verify`` (signature, expiry) and
then against the request: the trace and span it was issued for and the names it allows.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from closedloop._errors import ClosedloopError
from closedloop.feedback import ExpiredToken, FeedbackGrant, InvalidToken, verify
from closedloop.feedback._targets import Target


class FeedbackRefused(ClosedloopError):
    """A feedback request the endpoint answers with ``status`` and ``message``; ``field``
    names the body field at fault, ``headers`` go on the response (Retry-After...)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


class ApiKeys:
    """The configured keys, as digests; ``match`` names which one a request presented."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [_digest(key) for key in sorted(keys)]

    def match(self, presented: str | None) -> int | None:
        """The index of the key ``presented`` is, or None. Every configured key is compared,
        so the time taken does not depend on which key (if any) matched."""
        if presented is None:
            return None
        digest = _digest(presented)
        found = None
        for index, known in enumerate(self._digests):
            if hmac.compare_digest(known, digest):
                found = index
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def bearer_key(authorization: str) -> str | None:
    """The key in ``Bearer <key>`` (scheme in any case, whitespace around ignored)."""
    scheme, _, key = authorization.strip().partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


def verified(token: str, *, key: bytes, now: float) -> FeedbackGrant:
    """The grant of a genuine, unexpired token (surrounding whitespace ignored), else 401."""
    try:
        return verify(token.strip(), key=key, now=now)
    except ExpiredToken as error:
        raise FeedbackRefused(
            401, f"{error}; the page needs a fresh token from its server", field="token"
        ) from None
    except InvalidToken as error:
        raise FeedbackRefused(
            401, f"{error}; send the token closedloop.feedback.token() issued", field="token"
        ) from None


def target_for(grant: FeedbackGrant, target: Target, name: str) -> Target:
    """Where feedback ``name`` about ``target`` is recorded under ``grant``: on the token's
    span when the request names none. A genuine token still gives nothing (403) for
    another trace or span, or for a name it does not list."""
    if grant.trace_id != target.trace_id_hex:
        raise FeedbackRefused(
            403,
            "the token was issued for another trace; send the trace_id it names",
            field="trace_id",
        )
    token_span = int(grant.span_id, 16) if grant.span_id else None
    if target.span_id not in (None, token_span):
        where = f"span {grant.span_id}" if grant.span_id else "the whole trace"
        raise FeedbackRefused(
            403,
            f"the token was issued for {where}; leave span_id out or send that one",
            field="span_id",
        )
    if name not in grant.names:
        raise FeedbackRefused(
            403,
            f"the token does not allow feedback {name!r}; it allows "
            f"{', '.join(sorted(grant.names))}",
            field="name",
        )
    return Target(target.trace_id, token_span)


def replay_key(token: str, name: str) -> str:
    """What marks ``token`` as used for ``name``: a token may send each of its names once.

    The token's text is unique (it signs a random nonce, and ``verify`` accepts one spelling
    only), so its digest stands for the nonce without decoding the payload again."""
    return hashlib.sha256(f"{token.strip()}\n{name}".encode()).hexdigest()[:32]
