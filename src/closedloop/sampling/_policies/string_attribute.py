"""``string_attribute``: a string attribute equal to, or searched by, given values (the
collector's ``string_tag_filter.go``).

Non-strings read as "" (pdata's ``Value.Str()``); on spans, but not on resources, an empty
value never matches. Regexes are RE2 and search unanchored, as Go's ``MatchString``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import re2

from closedloop._pdata import str_value
from closedloop.sampling._decision import Decision
from closedloop.sampling._policies._attributes import any_resource_or_span
from closedloop.sampling._policies.base import ReadsOneKey
from closedloop.sampling._trace import Attributes, BufferedTrace


class StringAttribute(ReadsOneKey):
    def __init__(
        self, name: str, key: str, values: Sequence[str], regex: bool, invert: bool
    ) -> None:
        """Raises ``re2.error`` for a value that is not an RE2 regex (with ``regex``)."""
        super().__init__(name)
        self.key = key
        self.invert = invert
        self._matches: Callable[[str], bool]
        if regex:
            patterns = [re2.compile(value) for value in values]
            self._matches = lambda text: any(pattern.search(text) for pattern in patterns)
        else:
            self._matches = {value for value in values if value}.__contains__

    def _match(self, attributes: Attributes, is_resource: bool) -> bool:
        if self.key not in attributes:
            return False
        text = str_value(attributes[self.key])
        return (is_resource or text != "") and self._matches(text)

    def evaluate(self, trace: BufferedTrace) -> Decision:
        return any_resource_or_span(trace, self._match, self.invert)


__all__ = ["StringAttribute"]
