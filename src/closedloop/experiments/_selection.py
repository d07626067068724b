"""What ``registry.select`` hands the app: the version to call, rendered, inside a context.

``select`` returns a context manager, not the selection itself: the prompt name, version,
experiment and variant must tag the spans of *this* request and no other. Setting them
without a ``with`` block would leave them in the ContextVar after the request, so the
next request on the same worker thread (or a task started later) would carry the wrong
version into its metrics. With ``with registry.select(...) as choice:`` the tags are
undone when the block ends, and forgetting the ``with`` fails at once (the manager has no
``messages``) instead of silently mis-tagging traffic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.util.types import AttributeValue

from closedloop.experiments._prompt_spec import PromptVersion
from closedloop.instrumentation._context import CallContext, LayerScope, _current

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam


@dataclass(frozen=True, slots=True)
class Selection:
    """The version chosen for a unit, with its messages rendered for this request.

    Pass it to the call as ``client.chat.completions.create(model=choice.model,
    messages=choice.messages, **choice.parameters)``. ``shadows`` are the prompt's shadow
    versions rendered with the same variables, for the shadow runner. The unit is not
    kept: nothing here can tell whose request it was.
    """

    served: PromptVersion
    messages: list[ChatCompletionMessageParam]  # a fresh list per call: the app may extend it
    shadows: tuple[Selection, ...]

    @property
    def prompt(self) -> str:
        return self.served.prompt

    @property
    def version(self) -> str:
        return self.served.name

    @property
    def experiment(self) -> str:
        return self.served.experiment

    @property
    def variant(self) -> str:
        """The arm this version serves in: ``production``, ``testing`` or ``shadow``.

        Distinct from ``version``: a version's traffic as a candidate and after its
        promotion stay apart in the metrics."""
        return self.served.status

    @property
    def model(self) -> str:
        return self.served.model

    @property
    def parameters(self) -> Mapping[str, object]:
        return self.served.parameters


class SelectionScope(LayerScope[Selection]):
    """``with`` (or ``async with``) it to get the :class:`Selection` and tag every span
    inside the block."""

    __slots__ = ("_attributes", "_selection")

    def __init__(self, selection: Selection, attributes: Mapping[str, AttributeValue]) -> None:
        super().__init__()
        self._selection = selection
        self._attributes = attributes

    def __enter__(self) -> Selection:
        if self._token is not None:
            raise RuntimeError("this selection is already active; call select() again instead")
        # A layer built directly from attributes checked at load: closedloop.context() would
        # re-check the same four constants on every request, costing more than the routing.
        parent = _current.get()
        if parent is None:
            layer = CallContext(None, None, (), self._attributes)
        else:
            merged = {**parent.attributes, **self._attributes}
            layer = CallContext(parent, parent.user_id, parent.tools, merged)
        self._push(layer)
        return self._selection
