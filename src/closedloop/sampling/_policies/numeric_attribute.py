"""``numeric_attribute``: an int attribute within bounds (the collector's
``numeric_tag_filter.go``).

A 0 bound means unset (the int64 extreme) and only int values count: a double or a string
reads as 0, pdata's ``Value.Int()``.
"""

from __future__ import annotations

from closedloop._pdata import int_value
from closedloop.sampling._decision import Decision
from closedloop.sampling._policies._attributes import any_resource_or_span
from closedloop.sampling._policies.base import ReadsOneKey
from closedloop.sampling._trace import Attributes, BufferedTrace

MIN_INT64, MAX_INT64 = -(1 << 63), (1 << 63) - 1


class NumericAttribute(ReadsOneKey):
    def __init__(self, name: str, key: str, min_value: int, max_value: int, invert: bool) -> None:
        super().__init__(name)
        self.key = key
        self.low = min_value if min_value != 0 else MIN_INT64
        self.high = max_value if max_value != 0 else MAX_INT64
        self.invert = invert

    def _in_range(self, attributes: Attributes, _: bool) -> bool:
        return self.key in attributes and self.low <= int_value(attributes[self.key]) <= self.high

    def evaluate(self, trace: BufferedTrace) -> Decision:
        return any_resource_or_span(trace, self._in_range, self.invert)


__all__ = ["NumericAttribute"]
