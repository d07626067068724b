"""The walk every attribute policy shares: each span's resource, then its attributes.

The collector's ``hasResourceOrSpanWithCondition`` and its inverted form
(``internal/sampling/util.go``); the matcher is told which of the two it looks at, because
``string_attribute`` treats an empty value differently on a resource.
"""

from __future__ import annotations

from collections.abc import Callable

from closedloop.sampling._decision import Decision
from closedloop.sampling._policies.base import sampled_if
from closedloop.sampling._trace import Attributes, BufferedTrace

Matcher = Callable[[Attributes, bool], bool]
"""Whether attributes match; the flag says they are the resource's."""


def any_resource_or_span(trace: BufferedTrace, matches: Matcher, invert: bool) -> Decision:
    """SAMPLED on the first match (NOT_SAMPLED on it when inverted)."""
    for span in trace.spans:
        for attributes, is_resource in ((span.resource, True), (span.attributes, False)):
            if matches(attributes, is_resource):
                return Decision.NOT_SAMPLED if invert else Decision.SAMPLED
    return sampled_if(invert)


__all__ = ["Matcher", "any_resource_or_span"]
