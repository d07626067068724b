"""Privacy: content is redacted before it is set on a span, and user ids are only stored hashed.

Telemetry leaves the process and lives for a long time, so nothing personal should reach it:
:class:`RedactionPipeline` replaces PII and secrets with typed placeholders such as ``<EMAIL>``,
and :class:`UserHasher` turns user ids into keyed HMAC digests.
"""

from closedloop.privacy._hashing import UserHasher
from closedloop.privacy._redaction import (
    PhoneRedactor,
    RedactionPipeline,
    RedactionResult,
    Redactor,
    RegexRedactor,
    default_redactors,
    redact_cards,
    redact_emails,
    redact_ibans,
    redact_ips,
    redact_secrets,
    redact_ssns,
)

__all__ = [
    "PhoneRedactor",
    "RedactionPipeline",
    "RedactionResult",
    "Redactor",
    "RegexRedactor",
    "UserHasher",
    "default_redactors",
    "redact_cards",
    "redact_emails",
    "redact_ibans",
    "redact_ips",
    "redact_secrets",
    "redact_ssns",
]
