"""E-mail addresses."""

from __future__ import annotations

import re

from closedloop.privacy.redaction._candidates import CandidateRedactor, entire_match

_EMAIL = re.compile(
    r"[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])", re.ASCII
)

# Searched only around each "@": RFC 5321 caps the local part at 64 characters and the domain
# at 255. The bounded window also keeps the unanchored local-part scan cheap.
redact_emails = CandidateRedactor(
    "emails", _EMAIL, "<EMAIL>", entire_match, anchor="@", reach=(64, 256)
)
