"""IPv6 and IPv4 addresses, both replaced with ``<IP>``."""

from __future__ import annotations

import ipaddress
import re

from closedloop.privacy._redaction._candidates import (
    CandidateRedactor,
    RedactorChain,
    entire_match_if,
)
from closedloop.privacy._redaction.base import digit_count

# A superset of IPv6 text (full, compressed, IPv4-suffixed); ``ipaddress`` decides.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}|(?=::))(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\.\d{1,3}){3})?"
    r"(?![\w:]|\.\w)",
    re.ASCII,
)
# Every IPv6 form has two colons at most four hex digits apart ("::" or ":db8:"); starting
# with a literal, this finds them at memchr speed, unlike the full pattern.
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")

_IPV4 = re.compile(r"\d(?<![\w.].)\d{0,2}(?:\.\d{1,3}){3}(?!\w|\.\d)", re.ASCII)
_DIGIT_DOT_DIGIT = re.compile(r"\.(?<=\d\.)\d", re.ASCII)


def _may_hold_ipv6(text: str) -> bool:
    return _IPV6_HINT.search(text) is not None


def _ipv6_valid(address: str) -> bool:
    if address == "::":  # the unspecified address: a C++ scope operator far more often
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _may_hold_ipv4(text: str) -> bool:
    return digit_count(text) >= 4 and _DIGIT_DOT_DIGIT.search(text) is not None


def _ipv4_valid(address: str) -> bool:
    return all(int(octet) <= 255 for octet in address.split("."))


# IPv6 first: the IPv4 pattern would otherwise take the suffix of "::ffff:192.0.2.1".
redact_ips = RedactorChain(
    "ips",
    CandidateRedactor("ipv6", _IPV6, "<IP>", entire_match_if(_ipv6_valid), precheck=_may_hold_ipv6),
    CandidateRedactor("ipv4", _IPV4, "<IP>", entire_match_if(_ipv4_valid), precheck=_may_hold_ipv4),
)
