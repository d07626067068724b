"""``ottl_condition``: traces with a span, or a span event, that matches an OTTL condition
(the collector's ``ottl.go``); conditions are parsed by ``closedloop.sampling._ottl``."""

from __future__ import annotations

from collections.abc import Sequence

from closedloop.sampling._decision import Decision
from closedloop.sampling._ottl import Condition
from closedloop.sampling._policies.base import AttributesRead, Policy
from closedloop.sampling._trace import BufferedTrace


class OttlCondition(Policy):
    """Sampled when any span matches any span condition, or any of its events any
    span-event condition (the collector's OR semantics)."""

    def __init__(
        self, name: str, span: Sequence[Condition], spanevent: Sequence[Condition]
    ) -> None:
        super().__init__(name)
        self.span_conditions = tuple(span)
        self.event_conditions = tuple(spanevent)

    def attributes_read(self) -> AttributesRead:
        read = AttributesRead()
        for condition in (*self.span_conditions, *self.event_conditions):
            read |= condition.reads
        return read

    def evaluate(self, trace: BufferedTrace) -> Decision:
        for span in trace.spans:
            if any(condition.matches(span, None) for condition in self.span_conditions):
                return Decision.SAMPLED
            for event in span.events:
                if any(condition.matches(span, event) for condition in self.event_conditions):
                    return Decision.SAMPLED
        return Decision.NOT_SAMPLED


__all__ = ["OttlCondition"]
