"""The event loop that async shadow calls run on: never the app's.

A shadow call awaited on the app's loop would share its time with the user's requests;
one loop on a daemon thread of its own, started on first use, keeps it off. One loop for
every async shadow call, so an async client used only by shadows keeps its connections
on the loop they were opened on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class LoopTimeout(Exception):
    """The awaitable ran past its timeout and was cancelled."""


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


class BackgroundLoop:
    """Runs awaitables to completion on its own loop thread, for the calling thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, awaitable: Awaitable[T], *, timeout: float) -> T:
        """Await ``awaitable`` on the background loop; block this thread until it is done,
        or cancel it after ``timeout`` seconds (:class:`LoopTimeout`). The task runs in a
        copy of this thread's context (``run_coroutine_threadsafe``)."""
        future = asyncio.run_coroutine_threadsafe(_awaited(awaitable), self._started())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if future.done():  # the awaitable's own TimeoutError
                raise
            future.cancel()
            raise LoopTimeout from None

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._serve, args=(loop,), name="closedloop-shadow-loop", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def close(self, timeout: float | None) -> None:
        """Stop the loop and wait up to ``timeout`` seconds for its thread (a coroutine
        blocking the loop would keep it: it is a daemon)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
