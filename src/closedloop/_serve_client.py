"""CLI commands asking a running ``closedloop serve`` to do what they would do on the store
(``POST /api/rescue``, ``POST /api/sql``), with the standard library's HTTP client.

serve bound beyond loopback wants an API key: the client sends ``CLOSEDLOOP_API_KEY`` as
``Authorization: Bearer``, and only then (a key is not handed to a port that needs none).
serve runs two such requests at a time and answers more with 429 and ``Retry-After``; the
client waits as told and asks again, for up to ``BUSY_WAIT_S``.
"""

from __future__ import annotations

import datetime
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any, Final

from closedloop._errors import ClosedloopError
from closedloop._serve_discovery import LOCAL_OPENER, ServeAdvert
from closedloop.store import RescueResult, StoreError
from closedloop.store._readonly_sql import SqlRefused, SqlResult

API_KEY_VARIABLE: Final = "CLOSEDLOOP_API_KEY"
REQUEST_TIMEOUT_S: Final = 300.0
"""serve stops a statement after a minute; a serve that hangs far longer is broken."""
BUSY_WAIT_S: Final = 300.0
"""How long the client waits in all for a busy serve (others' statements and rescues)."""


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
        """serve's JSON answer, once it has room for the request; a 400 (serve's message)
        as ``refused``."""
        deadline = time.monotonic() + BUSY_WAIT_S
        while True:
            try:
                return self._post_once(path, body)
            except urllib.error.HTTPError as error:
                message = _message(error.read())
                wait = _retry_after(error)
                if error.code == 429 and wait is not None and time.monotonic() + wait < deadline:
                    time.sleep(wait)
                    continue
                if error.code == 400:
                    raise refused(message) from None
                raise self._refusal(error.code, message) from None

    def _post_once(self, path: str, body: dict[str, Any]) -> Any:
        """One request: serve's JSON answer; an error status as the ``HTTPError`` it is,
        no answer as ``ServeRequestError``."""
        request = urllib.request.Request(
            self.advert.url + path,
            data=json.dumps(body).encode(),
            headers=self._headers(),
            method="POST",
        )
        try:
            with LOCAL_OPENER.open(request, timeout=REQUEST_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError:  # an answer, for _post to read
            raise
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
            problem = (
                f"refused the key in {API_KEY_VARIABLE}; set it"
                if given
                else f"wants an API key: set {API_KEY_VARIABLE}"
            )
            return ServeRequestError(
                f"closedloop serve at {self.advert.url} listens beyond loopback and {problem} "
                "to one of its keys (--api-key-file, CLOSEDLOOP_API_KEYS)"
            )
        if status == 429:
            return ServeRequestError(
                f"closedloop serve at {self.advert.url} stayed busy for {BUSY_WAIT_S:.0f} s: "
                f"{message}"
            )
        if status == 503:
            return StoreError(message)
        return self._unexpected(f"HTTP {status}: {message}")

    def _unexpected(self, what: str) -> ServeRequestError:
        return ServeRequestError(
            f"closedloop serve at {self.advert.url} (version {self.advert.version}) answered "
            f"{what}, which this closedloop does not understand; use the same version for both"
        )


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    """The ``Retry-After`` seconds of a 429, None without one."""
    try:
        return max(0.0, float(error.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _message(body: bytes) -> str:
    """The ``error`` of serve's JSON error body, else the body's text."""
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:500]
