"""IPv4 addresses are told from other dotted numbers by the pattern alone.

The pattern bounds each octet at 255; this checks it against the plain definition (one to
three digits, leading zeros allowed, at most 255, between non-word characters) on generated
dotted text.
"""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from closedloop.privacy._redaction.ips import redact_ips

# Candidates as the pattern finds them, then kept only if every octet is at most 255.
_CANDIDATE = re.compile(r"\d(?<![\w.].)\d{0,2}(?:\.\d{1,3}){3}(?!\w|\.\d)", re.ASCII)


def reference(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        octets = match.group().split(".")
        return "<IP>" if all(int(octet) <= 255 for octet in octets) else match.group()

    return _CANDIDATE.sub(replace, text)


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789.. a25", max_size=30))
@example("256.1.1.1 1.1.1.256 010.0.0.255 1.2.3.4.5 250.249.199.099")
def test_ipv4_addresses_are_those_with_octets_up_to_255(text: str) -> None:
    assert redact_ips.detect(text)[0] == reference(text)
