"""``closedloop.instrumentation`` is a package like the others: internal but for ``openai``."""

from __future__ import annotations

from closedloop import instrumentation
from closedloop.instrumentation.openai import OpenAIInstrumentor


def test_the_package_has_an_init_that_exports_nothing_and_says_why():
    assert instrumentation.__file__ is not None  # a regular package, not a namespace one
    assert instrumentation.__all__ == []
    assert instrumentation.__doc__ is not None and "openai" in instrumentation.__doc__
    assert OpenAIInstrumentor.__module__ == "closedloop.instrumentation.openai"
