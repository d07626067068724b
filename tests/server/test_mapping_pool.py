"""Mapping in worker processes: large requests come back from a real worker exactly as
serve's own process maps them, refusals included; a killed worker costs no request; small
bodies never start one; serve starts its workers before it answers; a serve killed with -9
leaves no worker behind."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _support.traffic import generate_traffic
from _support.waiting import wait_for
from closedloop.server import OtlpFormat, OtlpRequestError
from closedloop.server._mapping_pool import POOL_MIN_BODY_BYTES, MappingJob, MappingPool, receive
from closedloop.server._received import ReceivedSpan, Reception
from server.serving import start
from server.support import protobuf_request, shown

LIMIT = 20 * 1024 * 1024


def job(body: bytes, *, with_sdk_spans: bool = False) -> MappingJob:
    return MappingJob(body, OtlpFormat.PROTOBUF, None, LIMIT, with_sdk_spans)


def large_body(seed: int = 5) -> bytes:
    body = protobuf_request(generate_traffic(60, seed=seed, days=1).spans).SerializeToString()
    assert len(body) >= POOL_MIN_BODY_BYTES
    return body


def workers_of_this_test() -> Callable[[], set[int]]:
    """This process's children started since the call: other fixtures' processes (a
    session's serve) are not this test's workers."""
    others = children(os.getpid())
    return lambda: children(os.getpid()) - others


def children(pid: int) -> set[int]:
    """The live worker processes whose parent is ``pid`` (not multiprocessing's resource
    tracker, which lives as long as its parent)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"resource_tracker" not in command:
            found.add(int(stat.parent.name))
    return found


def summary(reception: Reception) -> list[tuple[str, bytes]]:
    rows = [view.source.row for view in reception.views if isinstance(view.source, ReceivedSpan)]
    assert len(rows) == len(reception.views)
    return [(shown(view), row) for view, row in zip(reception.views, rows, strict=True)]


@pytest.fixture
def pool() -> Iterator[MappingPool]:
    mapping = MappingPool(workers=1)
    yield mapping
    mapping.close()


def test_a_worker_maps_as_serve_does(pool: MappingPool) -> None:
    started = workers_of_this_test()
    body = large_body()
    here = receive(job(body))
    there = pool.receive(job(body))
    assert started(), "no worker process mapped it"
    assert summary(there) == summary(here)
    assert (there.rejected, there.error_message) == (here.rejected, here.error_message)


def test_start_starts_every_worker_before_any_request() -> None:
    started = workers_of_this_test()
    mapping = MappingPool(workers=2)
    try:
        mapping.start()
        workers = started()
        assert len(workers) == 2
        body = large_body()
        assert summary(mapping.receive(job(body))) == summary(receive(job(body)))
        assert started() == workers, "a request started another worker"
    finally:
        mapping.close()
    assert not started()


def test_a_request_refused_in_a_worker_is_refused_with_its_reason(pool: MappingPool) -> None:
    body = large_body()[: POOL_MIN_BODY_BYTES + 10]  # cut inside a span
    with pytest.raises(OtlpRequestError) as here:
        receive(job(body))
    with pytest.raises(OtlpRequestError) as there:
        pool.receive(job(body))
    assert (there.value.status, there.value.reason) == (here.value.status, here.value.reason)
    assert there.value.status == 400


def test_a_killed_worker_costs_no_request(pool: MappingPool) -> None:
    started = workers_of_this_test()
    body = large_body()
    expected = summary(receive(job(body)))
    assert summary(pool.receive(job(body))) == expected
    (worker,) = started()
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: worker not in started(), 10, "the worker did not die")
    assert summary(pool.receive(job(body))) == expected
    assert pool.restarts == 1
    assert summary(pool.receive(job(body))) == expected
    assert started() - {worker}, "no new worker after the restart"


def test_small_bodies_and_sdk_spans_stay_in_serves_process() -> None:
    started = workers_of_this_test()
    mapping = MappingPool(workers=1)
    try:
        small = protobuf_request(generate_traffic(2, seed=5, days=1).spans).SerializeToString()
        assert len(small) < POOL_MIN_BODY_BYTES
        mapping.receive(job(small))
        with_sdk = mapping.receive(job(large_body(), with_sdk_spans=True))
        assert all(
            isinstance(view.source, ReceivedSpan) and view.source.span is not None
            for view in with_sdk.views
        )
        assert not started()
    finally:
        mapping.close()


def test_serve_killed_with_9_leaves_no_worker(tmp_path: Path) -> None:
    serve = start(tmp_path, "--workers=1")
    try:
        workers = children(serve.process.pid)
        assert workers, "serve answers before its mapping worker has started"
        assert serve.post(large_body()).status == 200
        assert children(serve.process.pid) == workers
    finally:
        serve.process.send_signal(signal.SIGKILL)
        serve.process.wait()
    wait_for(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
        30,
        "a mapping worker outlived serve",
    )
