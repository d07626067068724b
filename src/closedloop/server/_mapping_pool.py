"""Requests decoded and mapped (OTLP -> rows and sampler views) in worker processes.

serve's Python work per span runs under one GIL: measured on 2 cores, Python used one core
whole at about 15,000 spans/s while chDB's threads used a third of the other. Decoding,
validating and mapping a request needs nothing of serve's state, so workers do it and send
back the ``Reception`` (pickled: the rows as bytes, the views as the sampler takes them).
serve's own process keeps the sampler, the exporter and chDB.

Small bodies are mapped in the request's own thread: a round trip to a worker costs more
than their mapping. A worker that dies (killed, out of memory) costs time, never a request:
its request is mapped in serve's process, and the next one starts a new pool (counted,
logged once). ``--forward-otlp`` needs SDK spans, which do not travel between processes:
with it, every request is mapped in serve's process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Final, NamedTuple

from closedloop import _health as health
from closedloop.sampling import AttributesRead
from closedloop.server._garbage import collect_garbage_less
from closedloop.server._otlp import OtlpFormat, decode_request
from closedloop.server._received import Reception, received_spans

logger = logging.getLogger("closedloop.server")

POOL_MIN_BODY_BYTES: Final = 64 * 1024
"""Bodies smaller than this (some 50 spans) are mapped in serve's process."""
PARENT_CHECK_S: Final = 1.0
"""How often a worker checks that serve still runs."""
START_TIMEOUT_S: Final = 30.0
"""How long ``MappingPool.start`` waits for the workers before serve starts anyway."""


class MappingJob(NamedTuple):
    """One request body to decode and map, as a worker gets it."""

    body: bytes
    fmt: OtlpFormat
    content_encoding: str | None
    max_bytes: int
    with_sdk_spans: bool = False
    reads: AttributesRead | None = None
    """The views hold only these attributes (what the policies read); None: all."""


def receive(job: MappingJob) -> Reception:
    """Decode the job's body and map its spans; raises ``OtlpRequestError`` for a request
    refused whole. What a worker runs, and serve's process when it maps a request itself."""
    request = decode_request(job.body, job.fmt, job.content_encoding, max_bytes=job.max_bytes)
    return received_spans(request, with_sdk_spans=job.with_sdk_spans, reads=job.reads)


def _start_worker(serve_pid: int) -> None:
    """A worker's set-up: serve's garbage-collection settings, and an end with serve's
    process however that ends (a worker blocked on its queue outlives a ``kill -9``)."""
    collect_garbage_less()
    threading.Thread(target=_exit_after, args=(serve_pid,), daemon=True).start()


def _answer() -> int:
    """What ``MappingPool.start`` asks a new worker: that it runs, imports done."""
    return os.getpid()


def _exit_after(serve_pid: int) -> None:
    while os.getppid() == serve_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)  # serve is gone: nobody waits for what this worker would map


class MappingPool:
    """``workers`` processes (0: none, everything is mapped in serve's process), started
    by ``start`` or else with the first large request."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self.restarts = 0

    def receive(self, job: MappingJob) -> Reception:
        """``receive`` in a worker when the body is large enough and no SDK spans are
        wanted; in this thread otherwise, and when the pool has broken."""
        executor = None
        if self.workers and not job.with_sdk_spans and len(job.body) >= POOL_MIN_BODY_BYTES:
            executor = self._running()
        if executor is not None:
            try:
                return executor.submit(receive, job).result()
            except BrokenProcessPool as error:
                self._broken(executor, error)
        return receive(job)

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the workers now and wait until they answer: a worker takes a second or two
        to start Python and import the mapping, which the first large request would
        otherwise wait for. Past ``timeout`` (logged) they go on starting in the
        background; one that dies is replaced as ``receive`` replaces it."""
        executor = self._running() if self.workers else None
        if executor is None:
            return
        # one submission per worker: the pool starts a process for each one no idle
        # worker takes, so every worker is started, not only the first
        answers = [executor.submit(_answer) for _ in range(self.workers)]
        try:
            for answer in answers:
                answer.result(timeout=timeout)
        except BrokenProcessPool as error:
            self._broken(executor, error)
        except TimeoutError:
            logger.warning(
                "closedloop serve: mapping workers did not answer within %.0f s; serving "
                "anyway, large requests wait for them",
                timeout,
            )

    def _running(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._closed:
                return None
            if self._executor is None:
                # spawn, not fork: serve's process runs chDB's threads, which fork would copy
                # in whatever state they were in
                self._executor = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(os.getpid(),),
                )
            return self._executor

    def _broken(self, executor: ProcessPoolExecutor, error: BaseException) -> None:
        """Forget a pool whose worker died (the next large request starts another)."""
        with self._lock:
            if self._executor is not executor:
                return  # another request saw it first
            self._executor = None
            self.restarts += 1
        health.record_failure("server.mapping_pool", error)
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers once the requests they map are answered."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=False)


__all__ = ["POOL_MIN_BODY_BYTES", "MappingJob", "MappingPool", "receive"]
