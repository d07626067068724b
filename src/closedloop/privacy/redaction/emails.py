"""E-mail addresses, internationalised ones included, found outwards from each "@".

Every address has an "@", found at memchr speed. The local part is read backwards from it
and the domain forwards, so each character is looked at a bounded number of times: a regex
searched around each "@" would rescan the same characters for every "@" nearby, and try
every start in a run of local-part characters.

RFC 6531 allows any non-ASCII character in the local part and IDNA any letter in a domain
label ("josé.müller@beispiel.de", "用户@例子.广告"), so both take every non-ASCII character
except spaces and punctuation, which end an address in prose: "«zoë@bücher.de»",
"用户@例子.广告。".
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from closedloop.privacy.redaction._candidates import BuiltInRedactor
from closedloop.privacy.redaction.base import Span, replace_spans

# Non-ASCII characters that cannot be part of an address in running text: Latin-1
# punctuation and spaces, Greek, Arabic and Devanagari punctuation, general punctuation
# (spaces, dashes, quotes), supplemental and CJK punctuation, full-width punctuation.
_NON_ASCII_STOPS = (
    "\x80-\xbf\xd7\xf7\u037e\u0387\u0589\u060c\u061b\u061f\u06d4\u0964\u0965\u1680"
    "\u2000-\u206f\u2e00-\u2e7f\u3000-\u303f\ufe10-\ufe1f\ufe30-\ufe4f\ufeff"
    "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
)
# Characters of a local part: ASCII letters, digits and ._%+-, or non-ASCII but no stop.
_LOCAL_CHAR = (
    f"[^\\x00-\\x24\\x26-\\x2a\\x2c\\x2f\\x3a-\\x40\\x5b-\\x5e\\x60\\x7b-\\x7f{_NON_ASCII_STOPS}]"
)
# Characters of a domain label: ASCII letters, digits and "-", or non-ASCII but no stop.
_LABEL_CHAR = f"[^\\x00-\\x2c\\x2e-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f{_NON_ASCII_STOPS}]"
# A top-level domain: two or more letters (never ASCII digits, so "pkg@1.2.3" is no address),
# non-ASCII (IDN) or in its ASCII form ("xn--fiqs8s").
_TLD_CHAR = f"(?:[A-Za-z]|(?![\\x00-\\x7f]){_LABEL_CHAR})"
_TLD = f"(?:xn--[A-Za-z0-9-]+|{_TLD_CHAR}{{2,}})"

_LOCAL_PART = re.compile(f"{_LOCAL_CHAR}+")  # matched on the reversed text before "@"
_DOMAIN = re.compile(f"{_LABEL_CHAR}+(?:\\.{_LABEL_CHAR}+)*\\.{_TLD}(?!{_LABEL_CHAR})")
# An "@" (found at memchr speed: the lookbehind comes after it) with a local-part character
# before it and a domain after it; finding only those skips text that is mostly "@" signs.
_AT = re.compile(f"@(?<={_LOCAL_CHAR}@)(?={_LABEL_CHAR}+(?:\\.{_LABEL_CHAR}+)*\\.{_TLD_CHAR}{{2}})")
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
