"""E-mail addresses, found outwards from each "@".

Every address has an "@", found at memchr speed. The local part is read backwards from it
and the domain forwards, so each character is looked at a bounded number of times: a regex
searched around each "@" would rescan the same characters for every "@" nearby, and try
every start in a run of local-part characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from closedloop.privacy.redaction._candidates import BuiltInRedactor
from closedloop.privacy.redaction.base import Span, replace_spans

_LOCAL_PART = re.compile(r"[\w.%+-]+", re.ASCII)  # matched on the reversed text before "@"
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])")
# An "@" (found at memchr speed: the lookbehind comes after it) with a local-part character
# before it and a domain after it; finding only those skips text that is mostly "@" signs.
_AT = re.compile(r"@(?<=[\w.%+-]@)(?=[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2})", re.ASCII)
# RFC 5321 caps the local part at 64 characters and the domain at 255.
_MAX_LOCAL, _MAX_DOMAIN = 64, 255


class EmailRedactor(BuiltInRedactor):
    """Replaces e-mail addresses with ``<EMAIL>``."""

    __slots__ = ()

    def __call__(self, text: str) -> tuple[str, int]:
        if "@" not in text:
            return text, 0
        return replace_spans(text, self._spans(text), "<EMAIL>")

    @staticmethod
    def _spans(text: str) -> Iterator[Span]:
        done = 0  # where the last address ended: the next one starts there at the earliest
        for at_sign in _AT.finditer(text):
            at = at_sign.start()
            if at < done:
                continue
            local = _LOCAL_PART.match(text[max(done, at - _MAX_LOCAL) : at][::-1])
            domain = local and _DOMAIN.match(text, at + 1, at + 1 + _MAX_DOMAIN)
            if domain:
                yield at - local.end(), domain.end()
                done = domain.end()


redact_emails = EmailRedactor("emails")
