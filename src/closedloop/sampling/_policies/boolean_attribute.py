"""``boolean_attribute``: a bool attribute with a given value (the collector's
``boolean_tag_filter.go``). Non-bools read as false (pdata's ``Value.Bool()``), so the
string "true" is false, but a missing key is neither."""

from __future__ import annotations

from closedloop._pdata import bool_value
from closedloop.sampling._decision import Decision
from closedloop.sampling._policies._attributes import any_resource_or_span
from closedloop.sampling._policies.base import ReadsOneKey
from closedloop.sampling._trace import Attributes, BufferedTrace


class BooleanAttribute(ReadsOneKey):
    def __init__(self, name: str, key: str, value: bool, invert: bool) -> None:
        super().__init__(name)
        self.key = key
        self.value = value
        self.invert = invert

    def _match(self, attributes: Attributes, _: bool) -> bool:
        return self.key in attributes and bool_value(attributes[self.key]) == self.value

    def evaluate(self, trace: BufferedTrace) -> Decision:
        return any_resource_or_span(trace, self._match, self.invert)


__all__ = ["BooleanAttribute"]
