"""The call registry: which span produced a response, stream or raw response object."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
import wrapt
from opentelemetry.trace import SpanContext

from closedloop._runtime import current
from closedloop.instrumentation._recent_calls import RecentCalls, span_context_of

LIMIT = 10_000  # "the last 10,000 calls", as the error messages promise


@pytest.fixture
def recent_calls() -> RecentCalls:
    """A registry of its own: the process's one (the runtime's) is left alone."""
    return RecentCalls()


def context(n: int) -> SpanContext:
    return SpanContext(trace_id=n, span_id=n, is_remote=False)


class Payload:
    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Payload) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


class Proxy(wrapt.ObjectProxy):
    """Like the instrumentation's stream proxies: compares and hashes as what it wraps."""


def test_registered_object_resolves_to_its_span(recent_calls):
    stream = Proxy(Payload("a"))
    recent_calls.register(stream, context(1))
    assert recent_calls.span_context_of(stream) == context(1)
    assert recent_calls.span_context_of(Proxy(Payload("b"))) is None


def test_objects_are_told_apart_by_identity_not_equality(recent_calls):
    first, second = Proxy(Payload("same")), Proxy(Payload("same"))
    assert first == second and hash(first) == hash(second)
    recent_calls.register(first, context(1))
    recent_calls.register(second, context(2))
    assert recent_calls.span_context_of(first) == context(1)
    assert recent_calls.span_context_of(second) == context(2)
    assert recent_calls.span_context_of(first.__wrapped__) is None


def test_registering_does_not_keep_the_object_alive(recent_calls):
    stream = Proxy(Payload("gone"))
    recent_calls.register(stream, context(3))
    alive = weakref.ref(stream)
    del stream
    gc.collect()
    assert alive() is None


def test_a_new_object_at_a_dead_objects_address_is_not_taken_for_it(recent_calls):
    stream = Payload("old")
    address = id(stream)
    recent_calls.register(stream, context(4))
    del stream
    gc.collect()
    newcomers = [Payload("new") for _ in range(1000)]
    reused = [obj for obj in newcomers if id(obj) == address]
    assert reused, "CPython reuses the freed address for an object of the same type"
    assert recent_calls.span_context_of(reused[0]) is None


def test_objects_without_weak_references_are_held_within_the_bound(recent_calls):
    response = (1, "not weak-referenceable")
    with pytest.raises(TypeError):
        weakref.ref(response)
    recent_calls.register(response, context(5))
    assert recent_calls.span_context_of(response) == context(5)
    for n in range(LIMIT):
        recent_calls.register((n, "filler"), context(6))
    assert recent_calls.span_context_of(response) is None


def test_the_oldest_objects_are_forgotten_beyond_the_bound(recent_calls):
    kept = [Payload(str(n)) for n in range(LIMIT + 1)]
    for n, obj in enumerate(kept):
        recent_calls.register(obj, context(n + 1))
    assert recent_calls.span_context_of(kept[0]) is None
    assert recent_calls.span_context_of(kept[1]) == context(2)
    assert recent_calls.span_context_of(kept[-1]) == context(LIMIT + 1)


def test_response_ids_resolve_plain_response_objects(recent_calls):
    class Response:
        id = "chatcmpl-registry-test"

    recent_calls.remember("chatcmpl-registry-test", context(7))
    assert recent_calls.span_context_for("chatcmpl-registry-test") == context(7)
    assert recent_calls.span_context_of(Response()) == context(7)
    assert recent_calls.span_context_for("chatcmpl-unknown") is None


def test_registering_from_many_threads_loses_nothing(recent_calls):
    objects = [[Payload(f"{t}-{n}") for n in range(500)] for t in range(8)]
    barrier = threading.Barrier(len(objects))

    def run(mine: list[Payload], base: int) -> None:
        barrier.wait()
        for n, obj in enumerate(mine):
            recent_calls.register(obj, context(base + n + 1))

    workers = [
        threading.Thread(target=run, args=(mine, t * 1000)) for t, mine in enumerate(objects)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for t, mine in enumerate(objects):
        for n, obj in enumerate(mine):
            assert recent_calls.span_context_of(obj) == context(t * 1000 + n + 1)


def test_feedback_resolves_through_the_runtimes_registry():
    stream = Proxy(Payload("runtime"))
    assert span_context_of(stream) is None
    current().recent_calls.register(stream, context(8))
    assert span_context_of(stream) == context(8)
