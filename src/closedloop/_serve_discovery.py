"""Where a running ``closedloop serve`` answers, for CLI commands on the chDB store it holds.

chDB lets one process open a store directory. serve, once listening, writes ``serve.json``
into the directory of the store it holds — written whole (a temporary file, then
``os.replace``) — and removes it when it stops; a CLI command that finds the store held
reads it to ask serve instead. A file left by a serve that was killed names a dead process
or a port nobody listens on, and is ignored; so is one whose pid and port were reused since
(by another serve, or any local service): the file holds a random ``instance`` token that
only the serve that wrote it answers on ``GET /api/instance``, and a reader checks it
before sending anything else. Nothing here imports the server's packages: the CLI reads
the file with the ``cli`` and ``store`` extras alone.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import secrets
import urllib.request
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Final

from closedloop import __version__
from closedloop.store._connect import location

FILE_NAME: Final = "serve.json"
PROBE_TIMEOUT_S: Final = 2.0
"""How long a reader waits for serve's instance token before calling the file stale."""
INSTANCE_PATH: Final = "/api/instance"
INSTANCE: Final = secrets.token_urlsafe(16)
"""This process's token: the serve in it writes it to ``serve.json`` and answers it on
``INSTANCE_PATH``, so a reader knows it talks to that serve and not whoever took its port."""
LOCAL_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""No ``HTTP_PROXY``: serve is on this machine, and its API key is for serve alone."""
_WILDCARDS: Final = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}
"""serve bound to every interface is reached on loopback (``::`` is IPv6 only: Python's
``create_server`` sets ``IPV6_V6ONLY``)."""

logger = logging.getLogger("closedloop.server")


@dataclass(frozen=True)
class ServeAdvert:
    """What ``serve.json`` holds: where serve answers, and who wrote it."""

    url: str
    pid: int
    started_at: str
    version: str
    loopback: bool
    """Bound to loopback only: its ``/api/`` needs no API key then."""
    instance: str
    """``INSTANCE`` of the serve that wrote the file."""


def advert_path(store_url: str) -> Path | None:
    """``serve.json`` of the chDB store ``store_url`` names; None for a ClickHouse server,
    which any number of processes open at once."""
    store_location, _ = location(store_url)
    if not store_location.startswith("chdb://"):
        return None
    return Path(store_location.removeprefix("chdb://")) / FILE_NAME


def advertise(store_url: str, host: str, port: int, *, loopback: bool) -> Path | None:
    """Write ``serve.json`` for serve listening on ``host:port``; the path, for
    ``withdraw``. A file that cannot be written is logged, not raised: serve runs on, and
    CLI commands say the store is held."""
    path = advert_path(store_url)
    if path is None:
        return None
    advert = ServeAdvert(
        url=f"http://{_url_host(_WILDCARDS.get(host, host))}:{port}",
        pid=os.getpid(),
        started_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        version=__version__,
        loopback=loopback,
        instance=INSTANCE,
    )
    temporary = path.with_name(f".{FILE_NAME}.{advert.pid}.tmp")
    try:
        temporary.write_text(json.dumps(asdict(advert)), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("cannot write %s (CLI commands will not find serve): %s", path, error)
        return None
    return path


def withdraw(path: Path | None) -> None:
    """Remove what ``advertise`` wrote (nothing when it wrote nothing)."""
    if path is None:
        return
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        logger.warning("cannot remove %s (CLI commands will find it stale): %s", path, error)


def find_serve(store_url: str) -> ServeAdvert | None:
    """The serve that holds the chDB store ``store_url`` names, if one answers there: its
    process is alive and its URL answers the file's instance token. None otherwise (no
    file, an unreadable one, or one a killed serve left)."""
    path = advert_path(store_url)
    if path is None:
        return None
    advert = _read(path)
    if advert is None or not _alive(advert.pid) or not _answers(advert):
        return None
    return advert


def _read(path: Path) -> ServeAdvert | None:
    try:
        written = json.loads(path.read_text(encoding="utf-8"))
        advert = ServeAdvert(**{field.name: written[field.name] for field in fields(ServeAdvert)})
    except (OSError, ValueError, TypeError, KeyError):  # fields a newer serve adds are ignored
        return None
    well_formed = (
        isinstance(advert.pid, int)
        and advert.pid > 0
        and isinstance(advert.url, str)
        and isinstance(advert.loopback, bool)
        and isinstance(advert.instance, str)
    )
    return advert if well_formed else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _answers(advert: ServeAdvert) -> bool:
    """Whether the URL answers the advert's instance token (no credentials are sent)."""
    request = urllib.request.Request(advert.url + INSTANCE_PATH, method="GET")
    try:
        with LOCAL_OPENER.open(request, timeout=PROBE_TIMEOUT_S) as response:
            answer = json.loads(response.read(4096))
    except (OSError, ValueError):  # URLError, HTTPError, a reset, a timeout, not JSON
        return False
    return isinstance(answer, dict) and answer.get("instance") == advert.instance


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
