"""``serve(config)``: bind, open the pipeline, serve until SIGTERM or SIGINT, drain, close.

The order is what makes failures readable and shutdown safe. The port is bound and the
store opened before uvicorn starts, so a port in use or a store another process holds is
one ``ClosedloopError`` for the CLI to print, not a traceback from inside the server.
On a signal uvicorn stops accepting and finishes the requests it has; only then is the
pipeline closed (sampler drained, exporter flushed, store closed), so no request is
acknowledged after its spans could still be written.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import time
from types import FrameType
from typing import Final

import uvicorn

from closedloop import __version__
from closedloop._errors import ClosedloopError
from closedloop._serve_discovery import advertise, withdraw
from closedloop.server._app import create_app
from closedloop.server._config import ServeConfig
from closedloop.server._garbage import collect_garbage_less
from closedloop.server._logs import log_event
from closedloop.server._pipeline import Pipeline
from closedloop.store._connect import location

logger = logging.getLogger("closedloop.server")

GRACEFUL_SHUTDOWN_S: Final = 30
"""Longest uvicorn waits for requests in progress once a stop is asked for."""
_BACKLOG: Final = 2048  # uvicorn's default


class ServeError(ClosedloopError, RuntimeError):
    """serve could not start (e.g. the port is in use)."""


class _Stop:
    """SIGTERM and SIGINT outside uvicorn's own handling, before it runs (while the store
    opens) and after it returns (while the pipeline closes): they only note the request,
    since neither may end the process before the pipeline is closed."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


class _Server(uvicorn.Server):
    """uvicorn's server, except that a repeated SIGINT does not abandon the requests in
    progress: uvicorn would cancel them, answering a 500 that OTLP exporters do not retry,
    so their spans would be lost. ``kill -9`` still stops serve at once."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            log_event(
                logger,
                logging.WARNING,
                "serve.stop.repeated",
                signal=signal.Signals(sig).name,
                effect="serve still finishes its requests, drains and flushes; kill -9 stops "
                "it at once",
            )
        self.should_exit = True


def serve(config: ServeConfig) -> None:
    """Run the backend in this process until SIGTERM or SIGINT; returns after a clean stop.

    Raises ``ServeError`` when the port cannot be bound, ``StoreLockedError`` when another
    process holds the chDB store, and the store's and the policy's own errors. Logging is
    the caller's: ``closedloop serve`` sets up JSON lines on stderr first."""
    stop = _Stop()
    listener = _listen(config.host, config.port)
    try:
        pipeline = Pipeline(config)
    except BaseException:
        listener.close()
        raise
    app = create_app(pipeline, config)
    collect_garbage_less()
    started = time.monotonic()
    advert = None
    try:
        if not pipeline.forwards:  # forwarding needs SDK spans, which workers do not make
            app.state.receiver.mapping.start()
        _log_start(config, listener.getsockname()[1], pipeline)
        advert = advertise(
            config.store_url, config.host, listener.getsockname()[1], loopback=config.loopback
        )
        if not stop.requested:
            server = _Server(
                uvicorn.Config(
                    app,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                    server_header=False,
                    timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                )
            )
            server.run(sockets=[listener])
    finally:
        withdraw(advert)  # uvicorn answers no more: CLI commands must not ask it
        listener.close()
        app.state.receiver.mapping.close()
        pipeline.close()
        log_event(
            logger,
            logging.INFO,
            "serve.stop",
            uptime_s=round(time.monotonic() - started, 3),
            responses=app.state.receiver.response_counts(),
            pipeline=pipeline.stats().as_dict(),
        )


def _log_start(config: ServeConfig, port: int, pipeline: Pipeline) -> None:
    store_location, database = location(config.store_url)  # without credentials
    log_event(
        logger,
        logging.INFO,
        "serve.start",
        version=__version__,
        url=f"http://{_url_host(config.host)}:{port}",
        port=port,
        store=store_location,
        database=database,
        spool=pipeline.spool_directory,
        policy=str(config.policy) if config.policy else "packaged",
        forward_otlp=config.forward_url,
        rescue_every_s=config.rescue_every_s,
        max_body_bytes=config.max_body_bytes,
        max_concurrent_requests=config.max_concurrent_requests,
    )
    if not _loopback(config.host):
        log_event(
            logger,
            logging.WARNING,
            "serve.exposed",
            host=config.host,
            effect="/v1/traces takes spans from anyone who can reach this address",
        )


def _listen(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=_BACKLOG)
    except OSError as error:
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
