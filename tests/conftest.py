"""Shared fixtures: the local OpenAI-compatible server, real OTel SDK, real openai client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import closedloop
from _support.spans import async_client_for, client_for
from closedloop._health import reset_stats
from closedloop.privacy import UserHasher
from closedloop.testing import OpenAICompatibleServer

HASH_KEY = "test-hash-key"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Key files and stores go to a temp dir, never the developer's home."""
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(tmp_path_factory.mktemp("closedloop-home")))
    monkeypatch.delenv("CLOSEDLOOP_USER_HASH_KEY", raising=False)
    reset_stats()


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


@pytest.fixture
def make_server() -> Iterator[Callable[..., OpenAICompatibleServer]]:
    """Fresh servers (ids restart at 1), to compare instrumented and bare runs exactly."""
    started: list[OpenAICompatibleServer] = []

    def make(**options: Any) -> OpenAICompatibleServer:
        running = OpenAICompatibleServer(**options)
        running.start()
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider


@pytest.fixture
def instrument(provider: TracerProvider) -> Iterator[Callable[..., TracerProvider]]:
    """Call ``closedloop.instrument`` with test defaults; always uninstrumented afterwards."""

    def apply(**options: object) -> TracerProvider:
        options.setdefault("user_hash_key", HASH_KEY)
        # The local server honours stream_options exactly like OpenAI: ask it, as for OpenAI.
        options.setdefault("stream_usage", "always")
        options.setdefault("tracer_provider", provider)
        return closedloop.instrument(**options)  # type: ignore[arg-type]

    yield apply
    closedloop.uninstrument()


@pytest.fixture
def instrumented(instrument: Callable[..., TracerProvider]) -> TracerProvider:
    return instrument()


@pytest.fixture(params=["chdb", "clickhouse-connect"])
def store(request: pytest.FixtureRequest, tmp_path):
    """Both store classes on a fresh directory. ClickHouse server code runs through
    clickhouse-connect's in-process chDB backend: the same client calls as over HTTP."""
    import closedloop.store as cs
    from closedloop.store._schema import SchemaSettings
    from closedloop.store._server_store import ClickHouseServerStore

    if request.param == "chdb":
        opened = cs.connect(f"chdb://{tmp_path}/store")
    else:
        opened = ClickHouseServerStore(SchemaSettings(), dsn=f"chdb://{tmp_path}/store")
        opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def client(server: OpenAICompatibleServer) -> OpenAI:
    return client_for(server)


@pytest.fixture
def async_client(server: OpenAICompatibleServer) -> AsyncOpenAI:
    return async_client_for(server)


@pytest.fixture
def user_hash() -> Callable[[str], str]:
    """The ``user.hash`` that ``instrument`` (keyed with the test key) gives a user id."""
    return UserHasher(HASH_KEY).hash
