"""closedloop's state in this process, held in one object.

Hooks, feedback, the store's exporter, the sampler and the key files all need a few shared
things: the providers and settings the active instrumentation runs with, the health
counters, the worker for deferred work, the spans of recent calls (for feedback given with
a response object), the tail samplers' summed counts, and what has already been warned
about. They live in one ``Runtime`` so that nothing else in closedloop keeps mutable
module state; ``current()`` is the one process-wide reference, and every change to it
holds its lock.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace

from closedloop._health_counters import Health
from closedloop.instrumentation._deferred import DeferredWork
from closedloop.instrumentation._recent_calls import RecentCalls

if TYPE_CHECKING:  # settings import privacy, whose key files use the runtime
    from closedloop.instrumentation._settings import InstrumentationSettings
    from closedloop.sampling._metrics import SamplerTotals

DEFAULT_SHUTDOWN_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Instrumentation:
    """What the active instrumentation runs with (set while the SDK is instrumented)."""

    settings: InstrumentationSettings
    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    # How long ``uninstrument()`` waits for the provider to flush.
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S


class Runtime:
    """Everything closedloop changes at run time; see the module docstring."""

    def __init__(self) -> None:
        # Re-entrant: instrument() holds it while the instrumentor records itself here.
        self.lock = threading.RLock()
        self.health = Health()
        self.deferred = DeferredWork(self.health)
        self.instrumentation: Instrumentation | None = None
        # Settings for feedback when nothing is instrumented, built once from the environment.
        self.default_settings: InstrumentationSettings | None = None
        self.recent_calls = RecentCalls()
        self._sampler_totals: SamplerTotals | None = None
        self._seen: set[Hashable] = set()

    def tracer_provider(self) -> trace.TracerProvider:
        """The active instrumentation's provider, else the global one (for feedback spans)."""
        active = self.instrumentation
        return active.tracer_provider if active is not None else trace.get_tracer_provider()

    def sampler_totals(self) -> SamplerTotals:
        """Every tail sampler's published counts, summed: what the sampler metrics report.

        Made on first use (a sampler's tick or the metrics' collection): sampling is an
        extra, which the core does not import.
        """
        totals = self._sampler_totals
        if totals is None:
            from closedloop.sampling._metrics import SamplerTotals

            with self.lock:
                if self._sampler_totals is None:
                    self._sampler_totals = SamplerTotals()
                totals = self._sampler_totals
        return totals

    def first_time(self, marker: Hashable) -> bool:
        """True the first time ``marker`` is seen in this process (warn-once messages)."""
        with self.lock:
            if marker in self._seen:
                return False
            self._seen.add(marker)
            return True


_RUNTIME = Runtime()


def current() -> Runtime:
    """The process's runtime."""
    return _RUNTIME
