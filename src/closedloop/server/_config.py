"""``ServeConfig``: what ``closedloop serve`` runs with, checked before anything starts.

Options arrive as the text a user typed, and every mistake is reported as one line that
names the option and the fix (``ServeConfigError``): serve refuses to start rather than
run with a store URL, policy or bound it misread.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from closedloop import _durations as durations
from closedloop._errors import ClosedloopError
from closedloop.server._feedback_settings import FeedbackConfigError, load_api_keys
from closedloop.server._otlp import DEFAULT_MAX_BODY_BYTES
from closedloop.store import DEFAULT_URL
from closedloop.store._connect import location

DEFAULT_PORT: Final = 4318
"""OTLP/HTTP's registered port: where ``closedloop.instrument()`` sends by default."""
DEFAULT_MAX_QUEUE_SPANS: Final = 40_000
"""Span rows held in memory while the store catches up; an insert takes up to half (serve
writes ahead to the spool, so memory holds little more than the insert under way, about
28 MB): twice the exporter's default, as inserts of 20,000 spans cost chDB less per span."""
DEFAULT_MAX_SAMPLER_SPANS: Final = 200_000
"""Ten seconds of decision_wait at 20,000 spans/s; a few hundred MB of spans."""
DEFAULT_MAX_SPOOL_BYTES: Final = 256 * 1024 * 1024
"""The exporter's default on-disk spool bound."""
DEFAULT_MAX_CONCURRENT_REQUESTS: Final = 8
"""Requests decoded at once: each may hold up to twice ``max_body_bytes`` (the body and its
inflated form) plus the decoded spans, so this, not the input rate, bounds their memory.
Python decodes on one core at a time, so more would only queue inside the process."""


def default_workers() -> int:
    """One mapping worker per core serve may run on; none on a single core, where a worker
    only adds the cost of sending its results back. On 2 cores, 200,000 spans of
    ``benchmarks/serve_ingest.py``: 2 workers ~14,900 spans/s end to end, 1 ~12,700,
    none ~13,200 (serve's own process and chDB's threads keep the cores busy meanwhile)."""
    cores = len(os.sched_getaffinity(0))
    return cores if cores > 1 else 0


_SIZE: Final = re.compile(r"(\d+)\s*(KiB|MiB|GiB)?")
_SIZE_UNITS: Final = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, None: 1}


class ServeConfigError(ClosedloopError, ValueError):
    """An option of ``closedloop serve`` that cannot be used as given."""


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``closedloop serve`` needs; ``from_options`` reads the CLI's text."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    store_url: str = DEFAULT_URL
    policy: Path | None = None
    """A collector YAML with a ``tail_sampling`` processor; None: the packaged policy."""
    forward_otlp: str | None = None
    """An OTLP/HTTP base URL (``/v1/traces`` is appended) that also gets the kept traces."""
    rescue_every_s: float = 30.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_queue_spans: int = DEFAULT_MAX_QUEUE_SPANS
    max_sampler_spans: int = DEFAULT_MAX_SAMPLER_SPANS
    """Spans the sampler holds for undecided traces; past it the oldest are evicted."""
    max_spool_bytes: int = DEFAULT_MAX_SPOOL_BYTES
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    workers: int = field(default_factory=default_workers)
    """Processes that decode and map large requests; 0: serve's own process does."""
    api_keys: frozenset[str] = frozenset()
    """Keys for ``/v1/feedback`` and, beyond loopback, ``/api/``."""
    cors_origins: frozenset[str] = frozenset()
    """Browser origins allowed to send feedback tokens."""
    state_dir: Path | None = None
    """Where serve keeps its own state (used feedback tokens); None: closedloop's home."""
    prompts_dir: Path | None = None
    """The app's prompt directory (``closedloop.experiments``): the query API and the UI
    show each version's status and traffic share from it; None: not known."""

    @property
    def loopback(self) -> bool:
        """Bound to this machine only: the query API needs no key then (Contract 6)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def embedded(self) -> bool:
        """A chDB store: one process may open it, so serve shares its one connection."""
        return urlsplit(self.store_url).scheme == "chdb"

    @property
    def forward_url(self) -> str | None:
        """The full traces URL for ``forward_otlp``, as the collector's ``otlphttp`` forms it."""
        if self.forward_otlp is None:
            return None
        base = self.forward_otlp.rstrip("/")
        return base if base.endswith("/v1/traces") else f"{base}/v1/traces"

    @classmethod
    def from_options(
        cls,
        *,
        host: str = "127.0.0.1",
        port: str = str(DEFAULT_PORT),
        store: str | None = None,
        policy: str | None = None,
        forward_otlp: str | None = None,
        rescue_every: str = "30s",
        max_body_bytes: str = str(DEFAULT_MAX_BODY_BYTES),
        max_queue_spans: str = str(DEFAULT_MAX_QUEUE_SPANS),
        max_sampler_spans: str = str(DEFAULT_MAX_SAMPLER_SPANS),
        max_spool_bytes: str = str(DEFAULT_MAX_SPOOL_BYTES),
        max_concurrent_requests: str = str(DEFAULT_MAX_CONCURRENT_REQUESTS),
        workers: str | None = None,
        api_key_file: str | None = None,
        cors_origins: Sequence[str] = (),
        state_dir: str | None = None,
        prompts: str | None = None,
    ) -> ServeConfig:
        """A config from the command line's option values; ``ServeConfigError`` names the
        first bad one."""
        if not host.strip():
            raise ServeConfigError("--host is empty: pass an interface such as 127.0.0.1.")
        return cls(
            host=host.strip(),
            port=_port(port),
            store_url=_store_url(store or DEFAULT_URL),
            policy=_policy(policy),
            forward_otlp=_forward_otlp(forward_otlp),
            rescue_every_s=_duration("--rescue-every", rescue_every),
            max_body_bytes=_size("--max-body-bytes", max_body_bytes),
            max_queue_spans=_count("--max-queue-spans", max_queue_spans),
            max_sampler_spans=_count("--max-sampler-spans", max_sampler_spans),
            max_spool_bytes=_size("--max-spool-bytes", max_spool_bytes),
            max_concurrent_requests=_count("--max-concurrent-requests", max_concurrent_requests),
            workers=default_workers() if workers is None else _count("--workers", workers, 0),
            api_keys=_api_keys(api_key_file),
            cors_origins=frozenset(origin.strip() for origin in cors_origins),
            state_dir=Path(state_dir) if state_dir else None,
            prompts_dir=_prompts_dir(prompts),
        )


def _prompts_dir(text: str | None) -> Path | None:
    if not text:
        return None
    path = Path(text)
    if not path.is_dir():
        raise ServeConfigError(f"--prompts {text}: no such directory; pass the prompt files' one.")
    return path


def _api_keys(path: str | None) -> frozenset[str]:
    try:
        return load_api_keys(file=Path(path) if path else None)
    except FeedbackConfigError as error:
        raise ServeConfigError(f"--api-key-file: {error}") from None


def _port(text: str) -> int:
    value = text.strip()
    if not value.isdigit() or int(value) > 65535:
        raise ServeConfigError(
            f"--port {text!r} is not a port number: pass 0-65535 (0 picks a free port)."
        )
    return int(value)


def _store_url(url: str) -> str:
    try:
        location(url)
    except ValueError as error:
        raise ServeConfigError(f"--store: {error}") from None
    return url


def _policy(path: str | None) -> Path | None:
    if path is None:
        return None
    policy = Path(path)
    if not policy.is_file():
        raise ServeConfigError(
            f"--policy {path!r} is not a file: pass a collector YAML with a tail_sampling "
            "processor, or leave it out for the packaged policy."
        )
    return policy


def _forward_otlp(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServeConfigError(
            f"--forward-otlp {url!r} is not an OTLP/HTTP URL: pass e.g. http://jaeger:4318."
        )
    return url


def _duration(option: str, text: str) -> float:
    value = durations.seconds(text)
    if value is None or value <= 0:
        raise ServeConfigError(
            f"{option} {text!r} is not a positive duration: pass e.g. 30s, 5m or 500ms."
        )
    return value


def _size(option: str, text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    size = int(match[1]) * _SIZE_UNITS[match[2]] if match else 0
    if size < 1:
        raise ServeConfigError(
            f"{option} {text!r} is not a positive size: pass bytes, e.g. 20971520 or 20MiB."
        )
    return size


def _count(option: str, text: str, minimum: int = 1) -> int:
    value = text.strip()
    if not value.isdigit() or int(value) < minimum:
        raise ServeConfigError(f"{option} {text!r} is not a whole number >= {minimum}.")
    return int(value)


__all__ = ["ServeConfig", "ServeConfigError"]
