"""Content redaction, applied to prompts, outputs and error messages before they reach a span.

Redaction runs on every LLM call, on the app's thread, so each built-in redactor is shaped for
text without PII (the common case): a substring test or a regex that ``re`` can skip through by
its first character rejects the text before any detailed pattern or checksum runs. And whatever
the text holds (a megabyte of digits, a CSV export, a wall of "@"), each costs time linear in its
length: no pattern backtracks over more than a bounded stretch, checksums over long runs of
numbers slide along them, and libphonenumber only sees short windows (see :mod:`.phones`). Every
match is replaced by a typed placeholder such as ``<EMAIL>``; no built-in pattern can match a
placeholder, so redacting already redacted text changes nothing.

One module per entity type (``emails``, ``phones``, ``cards``, ...); :mod:`.pipeline` puts them
in order, and :class:`RegexRedactor` covers identifiers of your own.
"""

from closedloop.privacy._redaction.base import RedactionResult, Redactor
from closedloop.privacy._redaction.cards import redact_cards
from closedloop.privacy._redaction.emails import redact_emails
from closedloop.privacy._redaction.ibans import redact_ibans
from closedloop.privacy._redaction.ips import redact_ips
from closedloop.privacy._redaction.phones import PhoneRedactor
from closedloop.privacy._redaction.pipeline import RedactionPipeline, default_redactors
from closedloop.privacy._redaction.regex import RegexRedactor
from closedloop.privacy._redaction.secrets import redact_secrets
from closedloop.privacy._redaction.ssns import redact_ssns

__all__ = [
    "PhoneRedactor",
    "RedactionPipeline",
    "RedactionResult",
    "Redactor",
    "RegexRedactor",
    "default_redactors",
    "redact_cards",
    "redact_emails",
    "redact_ibans",
    "redact_ips",
    "redact_secrets",
    "redact_ssns",
]
