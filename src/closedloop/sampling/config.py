"""Read the ``tail_sampling`` processor section of a collector config into policies.

The collector's YAML is the single source of truth for sampling. Every key is checked:
an unknown or unsupported one is an error naming its path, never silently ignored —
a sampler that quietly disagreed with the collector would be worse than none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import re2
import yaml

from closedloop.sampling import policies as p
from closedloop.sampling.ottl import OttlError, parse

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


class SamplingConfigError(ValueError):
    """The tail_sampling config uses something closedloop cannot decide identically."""


@dataclass(frozen=True)
class SamplerConfig:
    """The processor settings the sampler honours, and its policies."""

    decision_wait_s: float = 30.0
    num_traces: int = 50_000
    sampled_cache_size: int = 0
    non_sampled_cache_size: int = 0
    sample_on_first_match: bool = False
    policies: tuple[p.Policy, ...] = ()

    @property
    def decision_batches(self) -> int:
        """The collector decides on a 1 s tick, ``max(1, floor(decision_wait))`` ticks later."""
        return max(1, int(self.decision_wait_s))


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


def _check_keys(path: str, section: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(section) - allowed
    if unknown:
        raise SamplingConfigError(
            f"{path}: unsupported key(s) {sorted(unknown)}; closedloop's sampler understands "
            f"{sorted(allowed)}."
        )


def _typed(path: str, section: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = section.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SamplingConfigError(f"{path}.{key} must be {kind.__name__}, got {value!r}.")
    return value


def _leaf(path: str, kind: str, section: Mapping[str, Any], name: str) -> p.Policy:
    def keys(*allowed: str) -> None:
        _check_keys(f"{path}.{kind}", section, set(allowed))

    if kind == "always_sample":
        keys()
        return p.AlwaysSample(name)
    if kind == "latency":
        keys("threshold_ms", "upper_threshold_ms")
        return p.Latency(
            name, _typed(path, section, "threshold_ms", int, 0),
            _typed(path, section, "upper_threshold_ms", int, 0),
        )  # fmt: skip
    if kind == "numeric_attribute":
        keys("key", "min_value", "max_value", "invert_match")
        low, high = (
            _typed(path, section, "min_value", int, 0),
            _typed(path, section, "max_value", int, 0),
        )
        if low == 0 and high == 0:
            raise SamplingConfigError(f"{path}: set min_value or max_value (0 means unset).")
        return p.NumericAttribute(
            name, _typed(path, section, "key", str, ""), low, high,
            _typed(path, section, "invert_match", bool, False),
        )  # fmt: skip
    if kind == "probabilistic":
        keys("hash_salt", "sampling_percentage")
        return p.Probabilistic(
            name, _typed(path, section, "sampling_percentage", float, 0.0),
            _typed(path, section, "hash_salt", str, ""),
        )  # fmt: skip
    if kind == "status_code":
        keys("status_codes")
        codes = section.get("status_codes") or []
        if not codes or any(code not in p.STATUS_CODES for code in codes):
            raise SamplingConfigError(f"{path}.status_codes must list OK, ERROR or UNSET.")
        return p.StatusCodeFilter(name, (p.STATUS_CODES[code] for code in codes))
    if kind == "string_attribute":
        keys("key", "values", "enabled_regex_matching", "cache_max_size", "invert_match")
        values = section.get("values") or []
        regex = _typed(path, section, "enabled_regex_matching", bool, False)
        try:
            return p.StringAttribute(
                name, _typed(path, section, "key", str, ""), [str(v) for v in values], regex,
                _typed(path, section, "invert_match", bool, False),
            )  # fmt: skip
        except re2.error as error:
            raise SamplingConfigError(f"{path}.values: bad regex: {error}") from error
    if kind == "boolean_attribute":
        keys("key", "value", "invert_match")
        return p.BooleanAttribute(
            name,
            _typed(path, section, "key", str, ""),
            _typed(path, section, "value", bool, False),
            _typed(path, section, "invert_match", bool, False),
        )
    if kind == "span_count":
        keys("min_spans", "max_spans")
        return p.SpanCount(
            name,
            _typed(path, section, "min_spans", int, 0),
            _typed(path, section, "max_spans", int, 0),
        )
    if kind == "ottl_condition":
        keys("error_mode", "span", "spanevent")
        if section.get("error_mode", "ignore") not in ("ignore", "silent", "propagate"):
            raise SamplingConfigError(f"{path}.error_mode must be ignore, silent or propagate.")
        try:
            span = [parse(text, "span") for text in section.get("span") or []]
            events = [parse(text, "spanevent") for text in section.get("spanevent") or []]
        except OttlError as error:
            raise SamplingConfigError(f"{path}: {error}") from error
        if not span and not events:
            raise SamplingConfigError(f"{path}: give at least one span or spanevent condition.")
        return p.OttlCondition(name, span, events)
    if kind in _UNSUPPORTED_TYPES:
        raise SamplingConfigError(
            f"{path}: policy type {kind!r} is not supported by closedloop's sampler because "
            f"{_UNSUPPORTED_TYPES[kind]}; it could not decide as the collector does."
        )
    raise SamplingConfigError(f"{path}: unknown policy type {kind!r}.")


def _policy(path: str, spec: Any, nested: bool = False) -> p.Policy:
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
        return p.And(name, children) if kind == "and" else p.Drop(name, children)
    if kind == "not":
        _check_keys(f"{path}.not", section, {"not_sub_policy"})
        return p.Not(
            name, _policy(f"{path}.not.not_sub_policy", section.get("not_sub_policy"), True)
        )
    return _leaf(path, kind, section, name)


def sampler_config(section: Mapping[str, Any], path: str = "tail_sampling") -> SamplerConfig:
    """A SamplerConfig from a ``tail_sampling`` processor mapping."""
    _check_keys(path, section, _PROCESSOR_KEYS)
    cache = section.get("decision_cache") or {}
    _check_keys(f"{path}.decision_cache", cache, {"sampled_cache_size", "non_sampled_cache_size"})
    specs = section.get("policies")
    if not isinstance(specs, Sequence) or not specs:
        raise SamplingConfigError(f"{path}.policies must be a non-empty list.")
    policies = tuple(_policy(f"{path}.policies[{i}]", spec) for i, spec in enumerate(specs))
    names = [policy.name for policy in policies]
    if len(set(names)) != len(names):
        raise SamplingConfigError(f"{path}.policies: policy names must be unique, got {names}.")
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
