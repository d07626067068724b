"""CLI commands asking a running ``closedloop serve`` to do what they would do on the store
(``POST /api/rescue``, ``POST /api/sql``), with the standard library's HTTP client.

serve bound beyond loopback wants an API key: the client sends ``CLOSEDLOOP_API_KEY`` as
``Authorization: Bearer``, and only then (a key is not handed to a port that needs none).
"""

from __future__ import annotations

import datetime
import json
import os
import urllib.error
import urllib.request
from typing import Any, Final

from closedloop._errors import ClosedloopError
from closedloop._serve_discovery import ServeAdvert
from closedloop.store import RescueResult, StoreError
from closedloop.store._readonly_sql import SqlRefused, SqlResult

API_KEY_VARIABLE: Final = "CLOSEDLOOP_API_KEY"
REQUEST_TIMEOUT_S: Final = 300.0
"""A statement over a large store may take minutes; a serve that hangs longer is broken."""
_DIRECT: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""No ``HTTP_PROXY``: serve is on this machine, and its API key is for serve alone."""


class ServeRequestError(ClosedloopError, RuntimeError):
    """serve did not answer, refused the credentials, or answered something unexpected."""


class ServeClient:
    """The admin routes of the serve ``advert`` describes."""

    def __init__(self, advert: ServeAdvert) -> None:
        self.advert = advert

    def rescue(self, since: datetime.datetime | None) -> RescueResult:
        body = {"since": since.isoformat()} if since else {}
        answer = self._post("/api/rescue", body, refused=ServeRequestError)
        try:
            return RescueResult(traces=int(answer["traces"]), spans=int(answer["spans"]))
        except (KeyError, TypeError, ValueError):
            raise self._unexpected(f"its rescue answer {answer!r}") from None

    def sql(self, query: str) -> SqlResult:
        answer = self._post("/api/sql", {"query": query}, refused=SqlRefused)
        try:
            return SqlResult.from_json(answer)
        except ValueError:
            raise self._unexpected("its SQL answer") from None

    def _post(self, path: str, body: dict[str, Any], *, refused: type[ClosedloopError]) -> Any:
        """serve's JSON answer; a 400 (serve's message) as ``refused``."""
        request = urllib.request.Request(
            self.advert.url + path,
            data=json.dumps(body).encode(),
            headers=self._headers(),
            method="POST",
        )
        try:
            with _DIRECT.open(request, timeout=REQUEST_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            message = _message(error.read())
            failure = refused(message) if error.code == 400 else self._refusal(error.code, message)
            raise failure from None
        except (OSError, ValueError) as error:  # URLError, a reset, a timeout, bad JSON
            raise ServeRequestError(
                f"closedloop serve (pid {self.advert.pid}) holds the store but did not answer "
                f"at {self.advert.url}: {getattr(error, 'reason', error)}; check its log, or "
                "stop it and run this again"
            ) from None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(API_KEY_VARIABLE, "").strip()
        if key and not self.advert.loopback:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _refusal(self, status: int, message: str) -> ClosedloopError:
        if status == 401:
            given = bool(os.environ.get(API_KEY_VARIABLE, "").strip())
            return ServeRequestError(
                f"closedloop serve at {self.advert.url} listens beyond loopback and "
                + ("refused the key in " if given else "wants an API key: set ")
                + f"{API_KEY_VARIABLE} to one of its keys (--api-key-file, CLOSEDLOOP_API_KEYS)"
            )
        if status == 503:
            return StoreError(message)
        return self._unexpected(f"HTTP {status}: {message}")

    def _unexpected(self, what: str) -> ServeRequestError:
        return ServeRequestError(
            f"closedloop serve at {self.advert.url} (version {self.advert.version}) answered "
            f"{what}, which this closedloop does not understand; use the same version for both"
        )


def _message(body: bytes) -> str:
    """The ``error`` of serve's JSON error body, else the body's text."""
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:500]
