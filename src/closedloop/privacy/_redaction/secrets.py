"""API keys and tokens: OpenAI, AWS, GitHub and Slack keys, JWTs and ``Bearer`` credentials.

Each kind of secret holds a literal that text without one lacks ("sk-", "eyJ", ...), so a
text is searched only for the kinds whose literal it holds, with a pattern made of just
those (compiled once per combination): one kind is found at the speed of its literal
rather than by trying every "s" or "e" of the prose, and without a ``Bearer`` credential
every match is replaced whole, by ``re`` alone. Leaving out alternatives that cannot match
changes nothing that the pattern of all of them finds.
"""

from __future__ import annotations

import re
from functools import lru_cache

from closedloop.privacy._redaction._candidates import BuiltInRedactor

# Placed after a secret's literal start (of ``n`` characters): the secret starts a word.
_WORD_START = r"(?<![\w-].{{{n}}})"
_BEARER_TOKEN = r"[ \t]+(?![A-Z]?[a-z]+(?![\w\-.~+/=]))[\w\-.~+/]{16,}=*"  # not a plain word


def _kind(literal: str, rest: str) -> str:
    return f"{re.escape(literal)}{_WORD_START.format(n=len(literal))}{rest}"


# A substring a secret holds, after a character of it that prose rarely has (or "" if it has
# none): a one-character test runs at memchr speed, some twenty times faster than a longer
# one, so text without that character costs next to nothing.
_Hint = tuple[str, str]
# (the hints one of which every such secret holds, its alternatives), in the order of the
# pattern of all of them; each alternative starts with a literal.
_KINDS: tuple[tuple[tuple[_Hint, ...], tuple[str, ...]], ...] = (
    ((("-", "sk-"),), (_kind("sk-", r"[\w-]{20,}"),)),  # OpenAI: sk-..., sk-proj-, sk-svcacct-
    (  # AWS access key id
        (("K", "AKIA"), ("S", "ASIA")),
        (
            _kind("AKIA", r"[A-Z0-9]{16}(?![A-Za-z0-9])"),
            _kind("ASIA", r"[A-Z0-9]{16}(?![A-Za-z0-9])"),
        ),
    ),
    (  # GitHub tokens
        (("", "_"),),
        (_kind("gh", r"[pousr]_[A-Za-z0-9]{36,}"), _kind("github_pat_", r"\w{22,}")),
    ),
    ((("x", "xox"),), (_kind("xox", r"[abposr]-[A-Za-z0-9-]{10,}"),)),  # Slack
    ((("J", "eyJ"),), (_kind("eyJ", r"[\w-]+\.eyJ[\w-]+\.[\w-]*"),)),  # JWT
    (  # Authorization: Bearer <token>
        (("", "earer"), ("R", "EARER")),
        (
            _kind("Bearer", _BEARER_TOKEN),
            _kind("BEARER", _BEARER_TOKEN),
            _kind("bearer", _BEARER_TOKEN),
        ),
    ),
)
_BEARER = len("Bearer")
_PLACEHOLDER = "<SECRET>"


@lru_cache(maxsize=len(_KINDS) ** 2 * 4)
def _pattern(kinds: tuple[int, ...]) -> re.Pattern[str]:
    """The alternatives of ``kinds`` (indices into ``_KINDS``), in order."""
    return re.compile("|".join(alt for kind in kinds for alt in _KINDS[kind][1]), re.ASCII)


def _secret_replacement(match: re.Match[str]) -> str:
    secret = match.group()
    if secret[0] in "Bb":  # keep the "Bearer" scheme, replace only the token
        token = secret[_BEARER:].lstrip(" \t")
        return secret[: len(secret) - len(token)] + _PLACEHOLDER
    return _PLACEHOLDER


class SecretRedactor(BuiltInRedactor):
    """Replaces secrets with ``<SECRET>`` (a ``Bearer`` credential keeps its scheme)."""

    __slots__ = ()

    def detect(self, text: str) -> tuple[str, int]:
        kinds = tuple(index for index, (hints, _) in enumerate(_KINDS) if _holds(text, hints))
        if not kinds:
            return text, 0
        pattern = _pattern(kinds)
        if kinds[-1] == len(_KINDS) - 1:  # a Bearer credential keeps its scheme
            redacted, count = pattern.subn(_secret_replacement, text)
        else:
            redacted, count = pattern.subn(_PLACEHOLDER, text)
        return (redacted, count) if count else (text, 0)


def _holds(text: str, hints: tuple[_Hint, ...]) -> bool:
    return any(rare in text and hint in text for rare, hint in hints)


_ALL_HINTS = tuple(hint for hints, _ in _KINDS for hint in hints)


def _has_secret_hint(text: str, digits: int, others: int, shape: bytes) -> bool:
    # ``_holds(text, _ALL_HINTS)`` spelt out: a generator costs more than short text's tests.
    return (
        "_" in text
        or "earer" in text
        or ("-" in text and "sk-" in text)
        or ("K" in text and "AKIA" in text)
        or ("S" in text and "ASIA" in text)
        or ("x" in text and "xox" in text)
        or ("J" in text and "eyJ" in text)
        or ("R" in text and "EARER" in text)
    )


redact_secrets = SecretRedactor("secrets", _has_secret_hint, reads_counts=False)
