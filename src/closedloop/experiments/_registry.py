"""The prompt registry: prompt files from a directory, hot reloaded, and ``select``.

A long-running app sees edits to the files without a restart: every ``poll_interval_s``
one ``select`` call checks the directory's file names, inodes, mtimes and sizes (tens of
microseconds, on one request, never more often); when they changed it starts the reload
on a background thread and returns at once with the prompts loaded so far, which serve
until the new ones are checked and swapped in (a load costs milliseconds per file, and no
user request should pay it). Or the app calls :meth:`PromptRegistry.reload`, which loads
on the calling thread. A reload that fails keeps serving the last good prompts: an edit
in progress, or a bad merge, must not take the app down. The poll logs the failure once
per change of the files and :attr:`PromptRegistry.last_error` says why until a reload
succeeds.

Thread-safe: the prompts in use are one immutable mapping, replaced whole by a reload
under a lock, so ``select`` reads it without locking.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from closedloop._validation import finite_number
from closedloop.experiments._prompt_dir import (
    Signature,
    directory_signature,
    load_prompt_directory,
)
from closedloop.experiments._prompt_errors import (
    PromptDirectoryError,
    PromptFileError,
    UnknownPromptError,
)
from closedloop.experiments._prompt_spec import PromptSpec
from closedloop.experiments._router import Router
from closedloop.experiments._selection import SelectionScope

logger = logging.getLogger("closedloop.experiments")


class PromptRegistry:
    """The prompts of one directory (see :mod:`._prompt_file` for the file format).

    ``PromptRegistry("prompts")`` loads and checks every file, raising
    :class:`PromptDirectoryError` if any is bad: an app should not start on prompts it
    cannot serve. ``poll_interval_s=None`` turns polling off (reload explicitly).
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, poll_interval_s: float | None = 2.0
    ) -> None:
        self._directory = Path(directory)
        self._poll_every = (
            math.inf
            if poll_interval_s is None
            else finite_number(
                "poll_interval_s", poll_interval_s, "pass seconds between checks, or None."
            )
        )
        if self._poll_every < 0:
            raise ValueError(
                f"poll_interval_s={poll_interval_s!r} is negative; pass seconds, or None."
            )
        self._lock = threading.Lock()
        self._last_error: PromptDirectoryError | None = None
        self._routers: Mapping[str, Router] = {}
        self._signature: Signature = ()
        with self._lock:
            self._reload(directory_signature(self._directory))
        self._next_poll = time.monotonic() + self._poll_every

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def prompts(self) -> Mapping[str, PromptSpec]:
        """The prompts being served, by name (the last good load)."""
        return MappingProxyType({name: router.spec for name, router in self._routers.items()})

    @property
    def last_error(self) -> PromptDirectoryError | None:
        """Why the latest reload failed (the last good prompts are still served), or None
        if it succeeded."""
        return self._last_error

    def reload(self) -> None:
        """Load the directory now; on failure keep serving the last good prompts, set
        :attr:`last_error` and raise the :class:`PromptDirectoryError`."""
        with self._lock:
            self._reload(directory_signature(self._directory))

    def select(
        self, prompt: str, *, unit: str, variables: Mapping[str, object] | None = None
    ) -> SelectionScope:
        """Choose ``prompt``'s version for ``unit`` and render it with ``variables``.

        Use it as ``with registry.select("triage", unit=user_id, variables={...}) as
        choice:``; every span inside carries the prompt name, version, experiment and
        variant (see :mod:`._selection` for why it is a context manager). The same unit
        gets the same version everywhere while the file's shares stay; ``unit`` is hashed
        at once and never kept. ``variables`` must be exactly those the file declares.
        """
        if time.monotonic() >= self._next_poll:
            self._poll()
        router = self._routers.get(prompt)
        if router is None:
            raise self._unknown(prompt)
        return router.select(unit, variables)

    def _poll(self) -> None:
        """On the user's request: compare the signature only; a change starts a reload on
        a thread of its own."""
        if not self._lock.acquire(blocking=False):
            return  # another thread is checking or loading; serve what is loaded
        try:
            self._next_poll = time.monotonic() + self._poll_every
            signature = directory_signature(self._directory)
            if signature != self._signature:
                self._signature = signature  # the next polls start no second load of it
                threading.Thread(
                    target=self._reload_in_background,
                    args=(signature,),
                    name="closedloop-prompt-reload",
                    daemon=True,
                ).start()
        finally:
            self._lock.release()

    def _reload_in_background(self, signature: Signature) -> None:
        """A polled reload: whatever fails, log it once and keep the last good prompts."""
        with self._lock:
            try:
                self._reload(signature)
            except PromptDirectoryError as error:
                logger.warning(
                    "prompt files in %s changed but cannot be used; still serving the "
                    "last good prompts:\n%s",
                    self._directory,
                    error,
                )
            except Exception as error:  # a bug of the loader must not stop the app either
                self._last_error = PromptDirectoryError(
                    [
                        PromptFileError(
                            self._directory,
                            None,
                            None,
                            f"could not be reloaded ({type(error).__name__}: {error})",
                            "fix the last edit; the last good prompts are still served",
                        )
                    ]
                )
                logger.exception(
                    "prompt files in %s changed but the reload failed; still serving the "
                    "last good prompts",
                    self._directory,
                )

    def _reload(self, signature: Signature) -> None:
        """Load under the lock; ``signature`` is taken first, so an edit made during the
        load is seen by the next poll."""
        self._signature = signature  # a bad state is not re-read until the files change
        try:
            specs = load_prompt_directory(self._directory)
        except PromptDirectoryError as error:
            self._last_error = error
            raise
        self._routers = {name: Router(spec) for name, spec in specs.items()}
        self._last_error = None

    def _unknown(self, prompt: object) -> Exception:
        if not isinstance(prompt, str):
            return TypeError(f"prompt={prompt!r} is a {type(prompt).__name__}, not a str")
        known = sorted(self._routers)
        close = difflib.get_close_matches(prompt, known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"add {prompt}.yaml to {self._directory}"
        return UnknownPromptError(
            f"no prompt {prompt!r} in {self._directory} (it has {', '.join(known)}); {fix}"
        )

    def __repr__(self) -> str:
        return f"PromptRegistry({str(self._directory)!r}, prompts={sorted(self._routers)})"
