"""IPv6 and IPv4 addresses, both replaced with ``<IP>``."""

from __future__ import annotations

import ipaddress
import re

from closedloop.privacy._redaction._candidates import (
    RedactorChain,
    SubstitutingRedactor,
    placeholder_if,
)
from closedloop.privacy._redaction._zones import Zones

# A superset of IPv6 text (full, compressed, IPv4-suffixed); ``ipaddress`` decides.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}|(?=::))(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\.\d{1,3}){3})?"
    r"(?![\w:]|\.\w)",
    re.ASCII,
)
# Every IPv6 form has two colons at most four hex digits apart ("::" or ":db8:"); starting
# with a literal, this finds them at memchr speed, unlike the full pattern.
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")

# An octet is one to three digits, leading zeros allowed, up to 255: the lookbehind (after
# the digits, so it sees all of them) turns down 256-999, and since an octet must end at a "."
# or the address's end, no shorter match takes its place. So ``re.sub`` replaces on its own.
_OCTET_END = r"(?<![3-9][0-9]{2}|2[6-9][0-9]|25[6-9])"
_IPV4 = re.compile(
    rf"[0-9](?<![\w.].)[0-9]{{0,2}}{_OCTET_END}(?:\.[0-9]{{1,3}}{_OCTET_END}){{3}}"
    r"(?!\w|\.[0-9])",
    re.ASCII,
)
_DIGIT_DOT_DIGIT = re.compile(r"\.(?<=\d\.)\d", re.ASCII)


def _may_hold_ipv6(text: str, digits: int, others: int, shape: bytes) -> bool:
    return ":" in text and _IPV6_HINT.search(text) is not None


def _ipv6_valid(address: str) -> bool:
    if address == "::":  # the unspecified address: a C++ scope operator far more often
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


_IPV4_MIN_DIGITS = 4


def _may_hold_ipv4(text: str, digits: int, others: int, shape: bytes) -> bool:
    return digits >= _IPV4_MIN_DIGITS and _DIGIT_DOT_DIGIT.search(text) is not None


# IPv6 first: the IPv4 pattern would otherwise take the suffix of "::ffff:192.0.2.1".
redact_ips = RedactorChain(
    "ips",
    SubstitutingRedactor(
        "ipv6", _IPV6, placeholder_if(_ipv6_valid, "<IP>"), precheck=_may_hold_ipv6
    ),
    SubstitutingRedactor(
        "ipv4",
        _IPV4,
        "<IP>",
        precheck=_may_hold_ipv4,
        min_digits=_IPV4_MIN_DIGITS,
        # An address holds a digit, "." and a digit: "0.0" in a text's shape. Its first
        # octet may have two more digits before it; the rest is digits and dots.
        zones=Zones(b"0.0", b"[0.]*", before=2),
    ),
)
