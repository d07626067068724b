"""One prompt compiled for routing: everything ``select`` needs, computed at load.

The request path is a keyed hash, a tuple index and one ``format_map`` per message: the
owner of every bucket, each version's templates and its context attributes are prepared
once per (re)load, so choosing costs a few microseconds whatever the file holds.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn, cast

from opentelemetry.util.types import AttributeValue

from closedloop.experiments._prompt_errors import PromptVariablesError
from closedloop.experiments._prompt_spec import PromptSpec, PromptVersion
from closedloop.experiments._routing import BUCKETS, keyed_hasher
from closedloop.experiments._selection import Selection, SelectionScope
from closedloop.instrumentation import _attributes as attr

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

_NO_VARIABLES: Mapping[str, object] = {}


class _Arm:
    """A version ready to serve: its templates and the span attributes it sets."""

    __slots__ = ("attributes", "templates", "version")

    def __init__(self, version: PromptVersion) -> None:
        self.version = version
        self.templates = tuple((message.role, message.template) for message in version.messages)
        self.attributes: Mapping[str, AttributeValue] = {
            attr.PROMPT_NAME: version.prompt,
            attr.PROMPT_VERSION: version.name,
            attr.EXPERIMENT: version.experiment,
            attr.VARIANT: version.status,
        }

    def selection(
        self, variables: Mapping[str, object], shadows: tuple[Selection, ...]
    ) -> Selection:
        messages = [
            {"role": role, "content": template.format_map(variables)}
            for role, template in self.templates
        ]
        return Selection(self.version, cast("list[ChatCompletionMessageParam]", messages), shadows)


class Router:
    """Chooses a version of one prompt for a unit; see :mod:`._routing` for the rule."""

    __slots__ = ("_declared", "_hasher", "_owners", "_shadows", "spec")

    def __init__(self, spec: PromptSpec) -> None:
        self.spec = spec
        self._declared = frozenset(spec.variables)
        self._hasher = keyed_hasher(spec.experiment)
        owners: list[_Arm | None] = [None] * BUCKETS
        for version in spec.versions:
            if version.buckets is not None:
                arm = _Arm(version)
                owners[version.buckets.start : version.buckets.stop] = [arm] * len(version.buckets)
        self._owners = cast("tuple[_Arm, ...]", tuple(owners))  # the ranges cover every bucket
        self._shadows = tuple(_Arm(version) for version in spec.with_status("shadow"))

    def select(self, unit: str, variables: Mapping[str, object] | None) -> SelectionScope:
        if not isinstance(unit, str) or not unit:
            _bad_unit(unit)  # raises; never shows the unit itself
        if variables is None:
            variables = _NO_VARIABLES
        if variables.keys() != self._declared:
            raise self._variables_error(variables)
        hasher = self._hasher.copy()
        hasher.update(unit.encode())
        arm = self._owners[int.from_bytes(hasher.digest(), "big") % BUCKETS]
        shadows = (
            tuple(shadow.selection(variables, ()) for shadow in self._shadows)
            if self._shadows
            else ()
        )
        return SelectionScope(arm.selection(variables, shadows), arm.attributes)

    def _variables_error(self, variables: Mapping[str, object]) -> PromptVariablesError:
        missing = sorted(self._declared - variables.keys())
        unknown = sorted(variables.keys() - self._declared)
        problems = []
        if missing:
            problems.append(f"lack {', '.join(missing)}")
        for name in unknown:
            close = difflib.get_close_matches(name, self._declared, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"have {name}, which {self.spec.path} does not declare{hint}")
        declared = ", ".join(self.spec.variables) or "none"
        return PromptVariablesError(
            f"select({self.spec.name!r}): variables {' and '.join(problems)}; pass exactly the "
            f"variables the file declares ({declared}), so every version can render"
        )


def _bad_unit(unit: object) -> NoReturn:
    fix = "pass the id that keeps one person on one version, e.g. unit=str(user_id)"
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a str, not {type(unit).__name__}; {fix}")
    raise ValueError(f"unit is empty; {fix}")
