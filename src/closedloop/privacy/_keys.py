"""Secret keys for closedloop's HMAC uses: from the caller, the environment, or a key file.

Each use declares a :class:`KeySpec` and calls :func:`resolve_key`, which takes, in order, the
key passed in, the spec's environment variable, or a key file generated once per machine in
:func:`key_directory`. Values made with the key file only match those made on the same
machine, so using it warns, once per key file per process. No message ever includes a key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from closedloop._runtime import current

__all__ = ["KeySource", "KeySpec", "key_directory", "resolve_key"]

KeySource = Literal["argument", "environment", "key_file"]


@dataclass(frozen=True)
class KeySpec:
    """Where one use of a secret looks for it, and what to tell the user about it."""

    purpose: str  # "user hash key": how messages name the key
    argument: str  # the parameter that takes the key explicitly, such as "user_hash_key"
    env_var: str
    file_name: str  # the per-machine key file, inside key_directory()
    consequence: str  # the sentence saying what per-machine keys break

    def key_file_path(self) -> Path:
        return key_directory() / self.file_name


def key_directory() -> Path:
    """Where per-machine key files live: ``$CLOSEDLOOP_HOME``, else the XDG config directory."""
    home = os.environ.get("CLOSEDLOOP_HOME")
    if home:
        return Path(home)
    config = os.environ.get("XDG_CONFIG_HOME")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "closedloop"


def resolve_key(
    spec: KeySpec, key: str | bytes | None, *, stacklevel: int = 1
) -> tuple[bytes, KeySource]:
    """The secret for ``spec`` and where it came from; ``key`` (if not None) wins.

    ``stacklevel`` is as for :func:`warnings.warn`, counted from the caller of this function:
    the key file warning points at that frame.
    """
    if key is not None:
        if not isinstance(key, (str, bytes, bytearray)):
            raise TypeError(f"{spec.argument} must be a str or bytes, not {type(key).__name__}")
        if not key:
            raise ValueError(
                f"{spec.argument} must not be empty: pass a {spec.purpose} such as "
                f"secrets.token_hex(32), or leave {spec.argument} unset to use {spec.env_var} "
                "or the per-machine key file"
            )
        return (key.encode() if isinstance(key, str) else bytes(key)), "argument"
    env_key = os.environ.get(spec.env_var)
    if env_key is not None:
        if not env_key:
            raise ValueError(
                f"{spec.env_var} is set but empty: set it to a secret such as the output of "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`, or unset it"
            )
        return env_key.encode(), "environment"
    path = spec.key_file_path()
    secret = _load_or_create_key_file(spec, path)
    _warn_once(spec, path, stacklevel + 1)  # + this function
    return secret, "key_file"


def _read_key_file(spec: KeySpec, path: Path) -> bytes:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        key = ""
    if not key:
        raise ValueError(
            f"{spec.purpose} file {path} is empty or not UTF-8 text; delete it to generate a "
            f"new key, or set {spec.env_var}"
        )
    return key.encode()


def _load_or_create_key_file(spec: KeySpec, path: Path) -> bytes:
    """Read the key file, creating it first if needed; racing processes end with one key.

    The key is written to a private temp file and hard-linked into place, which fails if
    another process got there first; the loser then reads the winner's key.
    """
    with contextlib.suppress(FileNotFoundError):
        return _read_key_file(spec, path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(secrets.token_hex(32))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        except OSError:
            # No hard links on this filesystem: rename instead, accepting a narrow race.
            if not path.exists():
                os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    return _read_key_file(spec, path)


def _warn_once(spec: KeySpec, path: Path, stacklevel: int) -> None:
    if not current().first_time(("key file warning", path)):
        return
    message = (
        f"closedloop is using the per-machine {spec.purpose} in {path}: {spec.consequence} "
        f"Set {spec.env_var} to the same secret on every machine and container (or pass "
        f"{spec.argument}=...); to stay compatible with what this machine has made so far, "
        "use this file's content as that secret."
    )
    # One channel, so it prints once: logging.captureWarnings() routes it to the app's logs.
    warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)  # + this function
