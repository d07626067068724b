"""The query API routes the web UI adds: ``/api/overview``, ``/api/versions``,
``/api/version_list``, ``/api/registry``, ``/api/compare`` and ``/api/sampling/series``.

Same rules as the routes of :mod:`._query`: read-only, GET only, the same credentials
check, a 400 naming a bad parameter, SQL from ``queries/`` with bound values. Each page of
the UI reads exactly these answers (see :mod:`._ui_pages`), so what a page shows is what
the API says.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from closedloop.server import _query_params as params
from closedloop.server._query import Handler, _sql
from closedloop.server._query_params import BadParameter
from closedloop.server._registry_view import RegistryView
from closedloop.store import Store

BUCKETS_S: Final = {"hour": 3_600, "day": 86_400}
"""The bucket sizes ``/api/sampling/series`` offers."""
COMPARE_UNITS: Final = ("user", "call")


class UiApi:
    """The endpoints' work on one store, with each SQL file read once."""

    def __init__(self, store: Store | Callable[[], Store], registry: RegistryView) -> None:
        self._store = store
        self.registry = registry
        self._rendered: dict[str, str] = {}

    @property
    def store(self) -> Store:
        return self._store() if callable(self._store) else self._store

    def _query(self, name: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        if name not in self._rendered:
            self._rendered[name] = _sql(name, self.store)
        return self.store.query(self._rendered[name], parameters)

    def handlers(self) -> list[tuple[str, Handler]]:
        return [
            ("/api/overview", self.overview),
            ("/api/versions", self.versions),
            ("/api/version_list", self.version_list),
            ("/api/registry", self.registry_json),
            ("/api/compare", self.compare),
            ("/api/sampling/series", self.sampling_series),
        ]

    def overview(self, request: Request) -> Response:
        """Per version and day: the Overview's series, one per prompt version."""
        rows = self._query("overview.sql", _days(request))
        series: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            key = (row.pop("prompt_name"), row.pop("prompt_version"))
            series.setdefault(key, []).append({**row, "day": str(row["day"])})
        return JSONResponse(
            {
                "series": [
                    {"prompt": prompt, "version": version, "points": points}
                    for (prompt, version), points in series.items()
                ]
            }
        )

    def versions(self, request: Request) -> Response:
        """Per version over the window, with the registry's status and share (null: not
        known, because serve has no ``--prompts`` or the files do not name the version)."""
        return self._with_status(self._query("versions.sql", _days(request)))

    def version_list(self, request: Request) -> Response:
        """The versions ``/api/versions`` has rows for, with calls and days but none of its
        feedback metrics: a picker's list, read without resolving any feedback."""
        return self._with_status(self._query("version_list.sql", _days(request)))

    def _with_status(self, rows: list[dict[str, Any]]) -> Response:
        """Rows per version with the registry's status and share added."""
        for row in rows:
            known = self.registry.status(row["prompt_name"], row["prompt_version"])
            row["first_day"], row["last_day"] = str(row["first_day"]), str(row["last_day"])
            row["status"] = known.status if known else None
            row["share_percent"] = known.share_percent if known else None
        return JSONResponse({"registry": self.registry.configured, "rows": rows})

    def registry_json(self, request: Request) -> Response:
        params.single_values(request.query_params, ())
        return JSONResponse(self.registry.as_json())

    def compare(self, request: Request) -> Response:
        """``closedloop.experiments.compare`` on the store, as ``CompareResult.as_json``,
        with the shares the sample ratio check expected and where they came from."""
        from closedloop.experiments._compare import CompareError, compare

        allowed = ("prompt", "baseline", "candidate", "unit", "from", "to", "primary")
        values = params.single_values(request.query_params, allowed)
        for name in ("prompt", "baseline", "candidate"):
            if name not in values:
                raise BadParameter(
                    name, f"{name} is missing; compare needs a prompt and two versions."
                )
        unit = values.get("unit", "user")
        if unit not in COMPARE_UNITS:
            raise BadParameter("unit", f"unit={unit!r}: pass user or call.")
        low = params.instant_ns(values, "from", end=False)
        high = params.instant_ns(values, "to", end=True)
        params.ordered(values, low, high)
        shares, source = self._shares(values["prompt"], values["baseline"], values["candidate"])
        try:
            result = compare(
                self.store,
                prompt=values["prompt"],
                baseline=values["baseline"],
                candidate=values["candidate"],
                since=_moment(low),
                until=_moment(high + 1 if high is not None else None),
                unit="user" if unit == "user" else "call",
                primary=values.get("primary"),
                shares=shares,
            )
        except CompareError as error:
            named = str(error).partition("=")[0]
            raise BadParameter(named if named in allowed else "candidate", str(error)) from None
        answer = result.as_json()
        answer["shares"] = {"baseline": shares[0], "candidate": shares[1], "source": source}
        return JSONResponse(answer)

    def _shares(
        self, prompt: str, baseline: str, candidate: str
    ) -> tuple[tuple[float, float], str]:
        """The registry's shares when both versions serve traffic there, else equal ones."""
        first = self.registry.status(prompt, baseline)
        second = self.registry.status(prompt, candidate)
        if first and second and first.share_percent > 0 and second.share_percent > 0:
            return (first.share_percent, second.share_percent), "registry"
        return (1.0, 1.0), "equal"

    def sampling_series(self, request: Request) -> Response:
        """``/api/sampling``'s span counts per hour or day (``bucket``)."""
        values = params.single_values(request.query_params, ("from", "to", "bucket"))
        bucket = values.get("bucket", "hour")
        if bucket not in BUCKETS_S:
            raise BadParameter("bucket", f"bucket={bucket!r}: pass hour or day.")
        low = params.instant_ns(values, "from", end=False)
        high = params.instant_ns(values, "to", end=True)
        params.ordered(values, low, high)
        rows = self._query(
            "sampling_series.sql", {"from_ns": low, "to_ns": high, "bucket_s": BUCKETS_S[bucket]}
        )
        points = [
            {
                "start": params.iso_ns(row["start_s"] * 1_000_000_000),
                "received": row["received"],
                "kept": row["kept"],
                "dropped": row["received"] - row["kept"],
                "rescued": row["rescued"],
            }
            for row in rows
        ]
        return JSONResponse({"bucket": bucket, "points": points})


def _days(request: Request) -> dict[str, Any]:
    values = params.single_values(request.query_params, ("prompt", "from", "to"))
    low, high = params.day(values, "from"), params.day(values, "to")
    params.ordered(values, low, high)
    return {
        "prompt": values.get("prompt"),
        "from_day": low.isoformat() if low else None,
        "to_day": high.isoformat() if high else None,
    }


def _moment(ns: int | None) -> datetime.datetime | None:
    if ns is None:
        return None
    return params.EPOCH + datetime.timedelta(microseconds=ns // 1000)
