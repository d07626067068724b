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

from closedloop.privacy._redaction._candidates import BuiltInRedactor
from closedloop.privacy._redaction.base import TextRange, replace_spans

# Non-ASCII characters that cannot be part of an address in running text: Latin-1
# punctuation and spaces, Greek, Arabic and Devanagari punctuation, general punctuation
# (spaces, dashes, quotes), supplemental and CJK punctuation, full-width punctuation.
_NON_ASCII_STOPS = (
    "\x80-\xbf\xd7\xf7\u037e\u0387\u0589\u060c\u061b\u061f\u06d4\u0964\u0965\u1680"
    "\u2000-\u206f\u2e00-\u2e7f\u3000-\u303f\ufe10-\ufe1f\ufe30-\ufe4f\ufeff"
    "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
)
# Han, Kana and Hangul (with their radicals, strokes, half-width forms and the CJK
# extension planes). Chinese, Japanese and Korean prose has no spaces, so an address in it
# ends where this script class meets the other one (ASCII and the alphabetic scripts):
# "张三先生zhang.san@example.com我们" keeps the prose on both sides.
_EAST_ASIAN = (
    "\u1100-\u11ff\u2e80-\u2fff\u3040-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f"
    "\uac00-\ud7ff\uf900-\ufaff\uff66-\uffdc\U00020000-\U0003ffff"
)
_EAST_ASIAN_CHAR = f"[{_EAST_ASIAN}]"
# Characters of a local part outside East Asian scripts: ASCII letters, digits and the RFC
# 5322 atext symbols !#$%&*+^_`{|}~-. (the apostrophe apart), or non-ASCII but no stop.
# "/", "=" and "?" are atext too, but they delimit URLs and query strings far more often
# than they occur in addresses: "a.png?u=ann@example.com" keeps its URL.
_WEST_LOCAL_CHAR = f"[^\\x00-\\x20\"'(),/:;<=>?@\\[\\\\\\]\\x7f{_NON_ASCII_STOPS}{_EAST_ASIAN}]"
# An apostrophe only between two letters or digits ("john.o'reilly"): a quote next to an
# address in prose ("'bob@example.com'") is no part of it.
_APOSTROPHE = "(?<=[^\\W_])'(?=[^\\W_])"
# Atext symbols that may not start a local part: "`bob@x.io`", "|bob@x.io|", "//bob@x.io".
_NO_LEADING = "!#$&'*^`{|}~"
# Characters of a domain label outside East Asian scripts: ASCII letters, digits and "-", or
# non-ASCII but no stop. A label is all East Asian or none of it.
_WEST_LABEL_CHAR = (
    f"[^\\x00-\\x2c\\x2e-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f{_NON_ASCII_STOPS}{_EAST_ASIAN}]"
)
_LABEL = f"(?:{_WEST_LABEL_CHAR}+|{_EAST_ASIAN_CHAR}+)"
# Any character of a label, for the quick check after an "@".
_LABEL_CHAR = f"[^\\x00-\\x2c\\x2e-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f{_NON_ASCII_STOPS}]"
# A top-level domain: two or more letters (never ASCII digits, so "pkg@1.2.3" is no address),
# in its ASCII form ("xn--fiqs8s") or ASCII letters, which end at the first non-ASCII character
# ("example.jpです"), or non-ASCII (IDN) letters of one script class ("例子.广告", "пример.рф").
_TLD_CHAR = f"(?:[A-Za-z]|(?![\\x00-\\x7f]){_LABEL_CHAR})"
_TLD = (
    "(?:xn--[A-Za-z0-9-]+(?![A-Za-z0-9-])|[A-Za-z]{2,}(?![A-Za-z0-9-])"
    f"|(?:(?![\\x00-\\x7f]){_WEST_LABEL_CHAR}){{2,}}(?!{_WEST_LABEL_CHAR})"
    f"|{_EAST_ASIAN_CHAR}{{2,}}(?!{_EAST_ASIAN_CHAR}))"
)

# Matched on the reversed text before "@": the run of one script class next to the "@".
_LOCAL_PART = re.compile(f"(?:{_WEST_LOCAL_CHAR}|{_APOSTROPHE})+|{_EAST_ASIAN_CHAR}+")
_DOMAIN = re.compile(f"{_LABEL}(?:\\.{_LABEL})*\\.{_TLD}")
# An "@" (found at memchr speed: the lookbehind comes after it) with a local-part character
# before it and a domain after it; finding only those skips text that is mostly "@" signs.
_AT = re.compile(
    f'@(?<=[^\\x00-\\x20"(),:;<>@\\[\\\\\\]\\x7f{_NON_ASCII_STOPS}]@)'
    f"(?={_LABEL_CHAR}+(?:\\.{_LABEL_CHAR}+)*\\.{_TLD_CHAR}{{2}})"
)
# RFC 5321 caps the local part at 64 characters and the domain at 255.
_MAX_LOCAL, _MAX_DOMAIN = 64, 255


class EmailRedactor(BuiltInRedactor):
    """Replaces e-mail addresses with ``<EMAIL>``."""

    __slots__ = ()

    def detect(self, text: str) -> tuple[str, int]:
        return replace_spans(text, self._spans(text), "<EMAIL>")

    @staticmethod
    def _spans(text: str) -> Iterator[TextRange]:
        done = 0  # where the last address ended: the next one starts there at the earliest
        for at_sign in _AT.finditer(text):
            at = at_sign.start()
            if at < done:
                continue
            local = _LOCAL_PART.match(text[max(done, at - _MAX_LOCAL) : at][::-1])
            length = len(local.group().rstrip(_NO_LEADING)) if local else 0
            domain = length and _DOMAIN.match(text, at + 1, at + 1 + _MAX_DOMAIN)
            if domain:
                yield at - length, domain.end()
                done = domain.end()


def _has_at_sign(text: str, digits: int, others: int, shape: bytes) -> bool:
    return "@" in text


redact_emails = EmailRedactor("emails", _has_at_sign, reads_counts=False)
