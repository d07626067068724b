"""API keys and tokens: OpenAI, AWS, GitHub and Slack keys, JWTs and ``Bearer`` credentials."""

from __future__ import annotations

import re

from closedloop.privacy._redaction._candidates import CandidateRedactor
from closedloop.privacy._redaction.base import TextRange

_WORD_START = r"(?<![\w-].)"  # placed after the first character: it starts a word
_BEARER_TOKEN = r"[ \t]+(?![A-Z]?[a-z]+(?![\w\-.~+/=]))[\w\-.~+/]{16,}=*"  # not a plain word
_SECRETS = re.compile(
    rf"s{_WORD_START}k-[\w-]{{20,}}"  # OpenAI: sk-..., sk-proj-..., sk-svcacct-...
    rf"|A{_WORD_START}(?:KIA|SIA)[A-Z0-9]{{16}}(?![A-Za-z0-9])"  # AWS access key id
    rf"|g{_WORD_START}(?:h[pousr]_[A-Za-z0-9]{{36,}}|ithub_pat_\w{{22,}})"  # GitHub tokens
    rf"|x{_WORD_START}ox[abposr]-[A-Za-z0-9-]{{10,}}"  # Slack
    rf"|e{_WORD_START}yJ[\w-]+\.eyJ[\w-]+\.[\w-]*"  # JWT: header.payload.signature
    rf"|B{_WORD_START}(?:earer|EARER){_BEARER_TOKEN}"  # Authorization: Bearer <token>
    rf"|b{_WORD_START}earer{_BEARER_TOKEN}",
    re.ASCII,
)
_BEARER = len("Bearer")


def _has_secret_hint(text: str) -> bool:
    # A substring every secret above contains; each test runs at memchr-like speed.
    return (
        "_" in text
        or "sk-" in text
        or "IA" in text
        or "xox" in text
        or "eyJ" in text
        or "earer" in text
        or "EARER" in text
    )


def _secret_spans(match: re.Match[str]) -> tuple[TextRange]:
    start, end = match.span()
    if match.string[start] in "Bb":  # keep the "Bearer" scheme, replace only the token
        token = match.group()[_BEARER:].lstrip(" \t")
        return ((end - len(token), end),)
    return ((start, end),)


redact_secrets = CandidateRedactor(
    "secrets", _SECRETS, "<SECRET>", _secret_spans, precheck=_has_secret_hint
)
