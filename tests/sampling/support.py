"""Builders and independent references shared by the sampler's tests.

The reference values for FNV-1a and the probabilistic threshold are computed here from
their specifications, independently of closedloop's code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from closedloop.sampling import (
    BufferedTrace,
    Decision,
    Policy,
    SamplerConfig,
    SpanView,
    TailSampler,
    combine,
    sampler_config,
)

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_CONFIG = ROOT / "collector" / "otel-collector.yaml"
MAX_UINT64 = 2**64 - 1
FEEDBACK_SPAN = "closedloop.feedback"  # docs/architecture.md Contract 2: what makes a span feedback
MS = 1_000_000


# --- independent references -------------------------------------------------------------


def reference_fnv1a_64(data: bytes) -> int:
    """FNV-1a 64, straight from the spec (offset basis, prime, xor-then-multiply)."""
    value = 14695981039346656037
    for byte in data:
        value ^= byte
        value = (value * 1099511628211) % 2**64
    return value


def reference_threshold(percentage: float) -> int:
    """Go: ``big.Float(MaxUint64) * big.NewFloat(pct / 100)`` at 64-bit precision (the
    receiver's), round half to even, then ``Uint64()`` truncating. ``pct / 100`` is a
    float64 division, exactly as Go computes the ratio."""
    numerator, denominator = (percentage / 100).as_integer_ratio()  # exact float64 value
    product = MAX_UINT64 * numerator  # value = product / denominator (a power of two)
    if product <= 0:
        return 0
    shift = product.bit_length() - 64
    if shift > 0:
        quotient, remainder = divmod(product, 1 << shift)
        half = 1 << (shift - 1)
        if remainder > half or (remainder == half and quotient & 1):
            quotient += 1
        product = quotient << shift
    return min(product // denominator, MAX_UINT64)


def reference_probabilistic(trace_id: int, percentage: float, salt: str) -> bool:
    digest = reference_fnv1a_64(salt.encode() + trace_id.to_bytes(16, "big"))
    return digest <= reference_threshold(percentage)


def spread_trace_ids(seed: int) -> Iterator[int]:
    """Well-spread 128-bit trace ids (FNV-1a barely mixes the last bytes of small ints)."""
    k = seed
    while True:
        k += 1
        yield (k * 0x9E3779B97F4A7C15F39CC0605CEDC835) % 2**128 or 1


def first_trace_id(seed: int, wanted: Callable[[int], bool]) -> int:
    return next(trace_id for trace_id in spread_trace_ids(seed) if wanted(trace_id))


def unsampled_by_baseline(seed: int) -> int:
    """A trace id the production config's 15% baseline does NOT sample."""
    return first_trace_id(seed, lambda t: not reference_probabilistic(t, 15, "default-hash-seed"))


def sampled_by_baseline(seed: int) -> int:
    return first_trace_id(seed, lambda t: reference_probabilistic(t, 15, "default-hash-seed"))


# --- builders -----------------------------------------------------------------------------


def view(
    trace_id: int = 1,
    *,
    span_id: int = 1,
    name: str = "span",
    attributes: Mapping[str, Any] | None = None,
    resource: Mapping[str, Any] | None = None,
    status: int = 0,
    start_ns: int = 1_000_000_000,
    end_ns: int = 1_001_000_000,
    kind: int = 1,
    events: Iterable[tuple[str, Mapping[str, Any]]] = (),
) -> SpanView:
    return SpanView(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=0,
        name=name,
        kind=kind,
        start_ns=start_ns,
        end_ns=end_ns,
        status=status,
        flags=1,
        trace_state="",
        attributes=dict(attributes or {}),
        resource=dict(resource or {}),
        events=tuple(events),
    )


def trace(*spans: SpanView) -> BufferedTrace:
    return BufferedTrace(spans[0].trace_id if spans else 1, list(spans))


def config(*policies: dict[str, Any], **processor: Any) -> SamplerConfig:
    """A config of the given policy specs, named p0, p1...; processor settings as keywords."""
    specs = [{"name": f"p{i}", **spec} for i, spec in enumerate(policies)]
    return sampler_config({**processor, "policies": specs})


def policy(kind: str, **section: Any) -> dict[str, Any]:
    """A policy spec of type ``kind`` with its ``kind:`` section."""
    return {"type": kind, kind: section} if section else {"type": kind}


def decide(policies: dict[str, Any] | list[dict[str, Any]], *spans: SpanView) -> Decision:
    """The decision of the policies (as loaded from YAML) on one trace of ``spans``."""
    specs = policies if isinstance(policies, list) else [policies]
    return combine(config(*specs).policies, trace(*spans), False).decision


class Fixed(Policy):
    """An app's own policy that always decides the same."""

    def __init__(self, name: str, decision: Decision) -> None:
        super().__init__(name)
        self.decision = decision

    def evaluate(self, trace: BufferedTrace) -> Decision:
        return self.decision


class Raising(Policy):
    """An app's own policy with a bug: it raises on every trace."""

    def evaluate(self, trace: BufferedTrace) -> Decision:
        raise ZeroDivisionError("a bug in the app's policy")


ERRORS = policy("status_code", status_codes=["ERROR"])
NEVER = policy("probabilistic", sampling_percentage=0)
ERROR_SPAN: dict[str, Any] = {"status": 2}


class FixedIds(IdGenerator):
    """Trace ids from a list (so probabilistic decisions are known), span ids counting up."""

    def __init__(self, trace_ids: Iterable[int]) -> None:
        self._trace_ids = iter(trace_ids)
        self._span_id = 0

    def generate_trace_id(self) -> int:
        return next(self._trace_ids)

    def generate_span_id(self) -> int:
        self._span_id += 1
        return self._span_id


def sdk_provider(
    trace_ids: Iterable[int] = (), resource: Mapping[str, Any] | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A real SDK provider recording finished spans (with known trace ids when given)."""
    exporter = InMemorySpanExporter()
    options: dict[str, Any] = {"resource": Resource.create(dict(resource or {}))}
    if trace_ids:
        options["id_generator"] = FixedIds(trace_ids)
    provider = TracerProvider(**options)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def recording_sampler(cfg: SamplerConfig) -> tuple[TailSampler, list[SpanView]]:
    """A sampler and the list its forwarded spans land in, in order."""
    forwarded: list[SpanView] = []
    return TailSampler(cfg, forwarded.extend), forwarded
