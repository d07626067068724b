"""``status_code``: traces with a span of a listed status (the collector's ``status_code.go``)."""

from __future__ import annotations

from collections.abc import Iterable

from closedloop.sampling._decision import Decision
from closedloop.sampling._policies.base import ReadsNoAttribute, sampled_if
from closedloop.sampling._trace import BufferedTrace


class StatusCodeFilter(ReadsNoAttribute):
    def __init__(self, name: str, codes: Iterable[int]) -> None:
        """``codes`` are OTLP numbers (``closedloop._pdata.STATUS_CODE_NUMBERS``)."""
        super().__init__(name)
        self.codes = frozenset(codes)

    def evaluate(self, trace: BufferedTrace) -> Decision:
        return sampled_if(any(span.status in self.codes for span in trace.spans))


__all__ = ["StatusCodeFilter"]
