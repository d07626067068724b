"""The app's prompt registry as serve sees it (``--prompts DIR``): each version's status
and traffic share, for ``/api/registry``, ``/api/versions`` and the sample ratio check of
``/api/compare``.

The files are read again whenever they change (the registry's own cheap signature), so
the UI follows the app's edits. A directory with a bad file shows the error and no
prompts: the app refuses such a directory too, so what it serves is not known here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from closedloop.experiments._prompt_dir import (
    Signature,
    directory_signature,
    load_prompt_directory,
)
from closedloop.experiments._prompt_errors import PromptDirectoryError
from closedloop.experiments._prompt_spec import PromptSpec

BUCKETS: Final = 10_000
"""The router's buckets: a version's share is its buckets over these."""


@dataclass(frozen=True)
class VersionStatus:
    status: str
    share_percent: float


class RegistryView:
    """The prompts of ``directory`` (None: serve was started without ``--prompts``)."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self._signature: Signature | None = None
        self._prompts: dict[str, PromptSpec] = {}
        self._error: str | None = None

    @property
    def configured(self) -> bool:
        return self._directory is not None

    def _current(self) -> tuple[dict[str, PromptSpec], str | None]:
        if self._directory is None:
            return {}, None
        with self._lock:
            signature = directory_signature(self._directory)
            if signature != self._signature:
                self._signature = signature
                try:
                    self._prompts, self._error = load_prompt_directory(self._directory), None
                except PromptDirectoryError as error:
                    self._prompts, self._error = {}, str(error)
            return self._prompts, self._error

    def status(self, prompt: str, version: str) -> VersionStatus | None:
        """What the files say of ``version``; None when they do not name it."""
        spec = self._current()[0].get(prompt)
        for entry in spec.versions if spec else ():
            if entry.name == version:
                return VersionStatus(entry.status, _share(entry.buckets))
        return None

    def as_json(self) -> dict[str, Any]:
        prompts, error = self._current()
        return {
            "configured": self.configured,
            "directory": None if self._directory is None else str(self._directory),
            "error": error,
            "prompts": [
                {
                    "name": spec.name,
                    "experiment": spec.experiment,
                    "versions": [
                        {
                            "version": version.name,
                            "status": version.status,
                            "share_percent": _share(version.buckets),
                            "model": version.model,
                        }
                        for version in spec.versions
                    ],
                }
                for spec in sorted(prompts.values(), key=lambda spec: spec.name)
            ],
        }


def _share(buckets: range | None) -> float:
    return 0.0 if buckets is None else len(buckets) * 100 / BUCKETS
