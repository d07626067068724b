"""Read the ``tail_sampling`` processor section of a collector config into policies.

The collector's YAML is the single source of truth for sampling. Every key is checked:
an unknown or unsupported one is an error naming its path, never silently ignored —
a sampler that quietly disagreed with the collector would be worse than none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import re2
import yaml
from opentelemetry.trace import StatusCode

from closedloop._errors import ClosedloopError
from closedloop._pdata import STATUS_CODE_NUMBERS
from closedloop._validation import require_non_empty_str, require_type
from closedloop.sampling._ottl import OttlError, parse
from closedloop.sampling._policies import (
    AlwaysSample,
    And,
    BooleanAttribute,
    Drop,
    Latency,
    Not,
    NumericAttribute,
    OttlCondition,
    Policy,
    Probabilistic,
    SpanCount,
    StatusCodeFilter,
    StringAttribute,
)
from closedloop.sampling._policies.base import attributes_read_by
from closedloop.sampling._trace import AttributesRead

PACKAGED_POLICY = "otel-collector.yaml"
"""The package data file ``load()`` reads when given no path."""
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PROCESSOR_KEYS = {
    "decision_wait", "num_traces", "expected_new_traces_per_sec", "decision_cache",
    "sample_on_first_match", "policies",
}  # fmt: skip
_UNSUPPORTED_TYPES = {
    "rate_limiting": "it depends on wall-clock token buckets",
    "bytes_limiting": "it depends on wall-clock token buckets",
    "composite": "it allocates by spans per wall-clock second",
}
_STATUS_CODES = {code.name: STATUS_CODE_NUMBERS[code] for code in StatusCode}
"""``status_codes`` as the collector config names them (UNSET, OK, ERROR)."""
_Value = TypeVar("_Value", int, float, str, bool)


class SamplingConfigError(ClosedloopError, ValueError):
    """The tail_sampling config uses something closedloop cannot decide identically."""


@dataclass(frozen=True)
class SamplerConfig:
    """The processor settings the sampler honours, and its policies."""

    decision_wait_s: float = 30.0
    num_traces: int = 50_000
    sampled_cache_size: int = 0
    non_sampled_cache_size: int = 0
    sample_on_first_match: bool = False
    policies: tuple[Policy, ...] = ()

    def __post_init__(self) -> None:
        # Here, not only in sampler_config: dataclasses.replace(loaded, policies=...), the
        # way an app adds its own policies, builds a SamplerConfig without sampler_config.
        _check_policies(self.policies, "SamplerConfig.policies")

    def attributes_read(self) -> AttributesRead | None:
        """The attribute keys the policies read (a receiver's views may hold only these);
        None when a policy may read any (an app's own ``Policy`` that does not say)."""
        return attributes_read_by(self.policies)

    @property
    def decision_batches(self) -> int:
        """The collector decides on a 1 s tick, ``max(1, floor(decision_wait))`` ticks later."""
        return max(1, int(self.decision_wait_s))


def _check_policies(policies: Any, path: str) -> None:
    """Every policy is a ``Policy`` with a name of its own: the name is what decisions,
    metrics and logged policy errors report."""
    require_type(path, policies, tuple, 'pass a tuple, e.g. (*loaded.policies, Mine("mine")).')
    taken: dict[object, int] = {}
    for index, policy in enumerate(policies):
        where = f"{path}[{index}]"
        require_type(where, policy, Policy, "pass instances of closedloop.sampling.Policy.")
        name = getattr(policy, "name", None)
        require_non_empty_str(
            f"{where}.name",
            name,
            f"give the {type(policy).__name__} a name: Policy.__init__(self, name).",
        )
        if name in taken:
            raise SamplingConfigError(
                f"{where}.name={name!r} is also {path}[{taken[name]}]'s: policy names must be "
                "unique (they say which policy decided); rename one."
            )
        taken[name] = index


def _duration(path: str, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1e9
    text = str(value)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise SamplingConfigError(
            f"{path}: {value!r} is not a duration such as 10s, 500ms or 1m30s."
        )
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _check_keys(path: str, section: Mapping[str, Any], allowed: Set[str]) -> None:
    unknown = set(section) - allowed
    if unknown:
        raise SamplingConfigError(
            f"{path}: unsupported key(s) {sorted(unknown)}; closedloop's sampler understands "
            f"{sorted(allowed)}."
        )


def _typed(
    path: str, section: Mapping[str, Any], key: str, kind: type[_Value], default: _Value
) -> _Value:
    value = section.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SamplingConfigError(f"{path}.{key} must be {kind.__name__}, got {value!r}.")
    return value


_Builder = Callable[[str, Mapping[str, Any], str], Policy]
"""Makes one leaf policy from its path, its (checked) ``<type>:`` section and its name."""


def _always_sample(path: str, section: Mapping[str, Any], name: str) -> Policy:
    return AlwaysSample(name)


def _latency(path: str, section: Mapping[str, Any], name: str) -> Policy:
    return Latency(
        name,
        _typed(path, section, "threshold_ms", int, 0),
        _typed(path, section, "upper_threshold_ms", int, 0),
    )


def _numeric_attribute(path: str, section: Mapping[str, Any], name: str) -> Policy:
    low = _typed(path, section, "min_value", int, 0)
    high = _typed(path, section, "max_value", int, 0)
    if low == 0 and high == 0:
        raise SamplingConfigError(f"{path}: set min_value or max_value (0 means unset).")
    return NumericAttribute(
        name, _typed(path, section, "key", str, ""), low, high,
        _typed(path, section, "invert_match", bool, False),
    )  # fmt: skip


def _probabilistic(path: str, section: Mapping[str, Any], name: str) -> Policy:
    return Probabilistic(
        name,
        _typed(path, section, "sampling_percentage", float, 0.0),
        _typed(path, section, "hash_salt", str, ""),
    )


def _status_code(path: str, section: Mapping[str, Any], name: str) -> Policy:
    codes = section.get("status_codes") or []
    if not codes or any(code not in _STATUS_CODES for code in codes):
        raise SamplingConfigError(f"{path}.status_codes must list OK, ERROR or UNSET.")
    return StatusCodeFilter(name, (_STATUS_CODES[code] for code in codes))


def _string_attribute(path: str, section: Mapping[str, Any], name: str) -> Policy:
    values = section.get("values") or []
    regex = _typed(path, section, "enabled_regex_matching", bool, False)
    try:
        return StringAttribute(
            name, _typed(path, section, "key", str, ""), [str(v) for v in values], regex,
            _typed(path, section, "invert_match", bool, False),
        )  # fmt: skip
    except re2.error as error:
        raise SamplingConfigError(f"{path}.values: bad regex: {error}") from error


def _boolean_attribute(path: str, section: Mapping[str, Any], name: str) -> Policy:
    return BooleanAttribute(
        name,
        _typed(path, section, "key", str, ""),
        _typed(path, section, "value", bool, False),
        _typed(path, section, "invert_match", bool, False),
    )


def _span_count(path: str, section: Mapping[str, Any], name: str) -> Policy:
    return SpanCount(
        name,
        _typed(path, section, "min_spans", int, 0),
        _typed(path, section, "max_spans", int, 0),
    )


def _ottl_condition(path: str, section: Mapping[str, Any], name: str) -> Policy:
    if section.get("error_mode", "ignore") not in ("ignore", "silent", "propagate"):
        raise SamplingConfigError(f"{path}.error_mode must be ignore, silent or propagate.")
    try:
        span = [parse(text, "span") for text in section.get("span") or []]
        events = [parse(text, "spanevent") for text in section.get("spanevent") or []]
    except OttlError as error:
        raise SamplingConfigError(f"{path}: {error}") from error
    if not span and not events:
        raise SamplingConfigError(f"{path}: give at least one span or spanevent condition.")
    return OttlCondition(name, span, events)


_LEAVES: dict[str, tuple[frozenset[str], _Builder]] = {
    "always_sample": (frozenset(), _always_sample),
    "latency": (frozenset({"threshold_ms", "upper_threshold_ms"}), _latency),
    "numeric_attribute": (
        frozenset({"key", "min_value", "max_value", "invert_match"}),
        _numeric_attribute,
    ),
    "probabilistic": (frozenset({"hash_salt", "sampling_percentage"}), _probabilistic),
    "status_code": (frozenset({"status_codes"}), _status_code),
    "string_attribute": (
        frozenset({"key", "values", "enabled_regex_matching", "cache_max_size", "invert_match"}),
        _string_attribute,
    ),
    "boolean_attribute": (frozenset({"key", "value", "invert_match"}), _boolean_attribute),
    "span_count": (frozenset({"min_spans", "max_spans"}), _span_count),
    "ottl_condition": (frozenset({"error_mode", "span", "spanevent"}), _ottl_condition),
}
"""The leaf policy types closedloop decides as the collector does, by YAML ``type``:
the keys each one's section may have, and its builder."""


def _leaf(path: str, kind: str, section: Mapping[str, Any], name: str) -> Policy:
    if kind in _LEAVES:
        keys, build = _LEAVES[kind]
        _check_keys(f"{path}.{kind}", section, keys)
        return build(path, section, name)
    if kind in _UNSUPPORTED_TYPES:
        raise SamplingConfigError(
            f"{path}: policy type {kind!r} is not supported by closedloop's sampler because "
            f"{_UNSUPPORTED_TYPES[kind]}; it could not decide as the collector does."
        )
    raise SamplingConfigError(f"{path}: unknown policy type {kind!r}.")


def _policy(path: str, spec: Any, nested: bool = False) -> Policy:
    if not isinstance(spec, Mapping):
        raise SamplingConfigError(f"{path} must be a mapping with name and type.")
    name = spec.get("name")
    kind = spec.get("type")
    if not isinstance(name, str) or not name:
        raise SamplingConfigError(f"{path}.name must be a non-empty string.")
    if not isinstance(kind, str):
        raise SamplingConfigError(f"{path}.type must be a policy type such as status_code.")
    allowed = {"name", "type"} | ({kind} if kind != "always_sample" else set())
    _check_keys(path, spec, allowed)
    section = spec.get(kind) or {}
    if kind in ("and", "drop"):
        if nested:
            raise SamplingConfigError(f"{path}: {kind} cannot be nested inside another policy.")
        _check_keys(f"{path}.{kind}", section, {f"{kind}_sub_policy"})
        subs = section.get(f"{kind}_sub_policy") or []
        children = [
            _policy(f"{path}.{kind}.{kind}_sub_policy[{i}]", s, True) for i, s in enumerate(subs)
        ]
        return And(name, children) if kind == "and" else Drop(name, children)
    if kind == "not":
        _check_keys(f"{path}.not", section, {"not_sub_policy"})
        return Not(name, _policy(f"{path}.not.not_sub_policy", section.get("not_sub_policy"), True))
    return _leaf(path, kind, section, name)


def sampler_config(section: Mapping[str, Any], path: str = "tail_sampling") -> SamplerConfig:
    """A SamplerConfig from a ``tail_sampling`` processor mapping (``path`` names it in
    errors)."""
    require_type("section", section, Mapping, "pass the tail_sampling mapping of a config.")
    require_type("path", path, str, 'pass the section\'s name, e.g. "tail_sampling".')
    _check_keys(path, section, _PROCESSOR_KEYS)
    cache = section.get("decision_cache") or {}
    _check_keys(f"{path}.decision_cache", cache, {"sampled_cache_size", "non_sampled_cache_size"})
    specs = section.get("policies")
    if not isinstance(specs, Sequence) or not specs:
        raise SamplingConfigError(f"{path}.policies must be a non-empty list.")
    policies = tuple(_policy(f"{path}.policies[{i}]", spec) for i, spec in enumerate(specs))
    _check_policies(policies, f"{path}.policies")
    return SamplerConfig(
        decision_wait_s=_duration(f"{path}.decision_wait", section.get("decision_wait", "30s")),
        num_traces=_typed(path, section, "num_traces", int, 50_000),
        sampled_cache_size=_typed(f"{path}.decision_cache", cache, "sampled_cache_size", int, 0),
        non_sampled_cache_size=_typed(
            f"{path}.decision_cache", cache, "non_sampled_cache_size", int, 0
        ),
        sample_on_first_match=_typed(path, section, "sample_on_first_match", bool, False),
        policies=policies,
    )


def load(path: str | Path | None = None, processor: str = "tail_sampling") -> SamplerConfig:
    """The ``processors.<processor>`` section of a collector YAML file.

    Without a path, the policy packaged with closedloop: a byte-identical copy of
    ``collector/otel-collector.yaml`` (a test keeps them equal), so an installed app decides
    by the one policy without a checkout of this repository.
    """
    require_type("path", path, (str, Path), "pass a collector YAML file path.", optional=True)
    require_type("processor", processor, str, 'pass a processor name, e.g. "tail_sampling".')
    if path is None:
        path = f"closedloop.sampling/{PACKAGED_POLICY}"
        packaged = resources.files("closedloop.sampling").joinpath(PACKAGED_POLICY)
        text = packaged.read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    document = yaml.safe_load(text) or {}
    processors = document.get("processors") or {}
    if processor not in processors:
        found = [name for name in processors if name.split("/")[0] == "tail_sampling"]
        raise SamplingConfigError(
            f"{path}: no processors.{processor} section (tail_sampling processors here: {found})."
        )
    return sampler_config(processors[processor] or {}, f"processors.{processor}")
