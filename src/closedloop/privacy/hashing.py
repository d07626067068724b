"""Keyed hashing of user ids, so spans can count and group users without storing who they are.

A plain SHA-256 of an id is reversible by hashing candidate ids (e-mails, account numbers), so
ids are HMAC'd with a secret key. The key comes from the caller, from
``CLOSEDLOOP_USER_HASH_KEY``, or from a key file generated once per machine; hashes made with the
key file only match those made on the same machine, which is why using it warns.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Literal

__all__ = ["KEY_ENV_VAR", "UserHasher", "key_file_path"]

KEY_ENV_VAR = "CLOSEDLOOP_USER_HASH_KEY"
_KEY_FILE_NAME = "user_hash_key"

logger = logging.getLogger(__name__)

KeySource = Literal["argument", "environment", "key_file"]

_key_file_warned = False
_key_file_lock = threading.Lock()


def key_file_path() -> Path:
    """Where the per-machine key lives: ``$CLOSEDLOOP_HOME``, else the XDG config directory."""
    home = os.environ.get("CLOSEDLOOP_HOME")
    if home:
        return Path(home) / _KEY_FILE_NAME
    config = os.environ.get("XDG_CONFIG_HOME")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "closedloop" / _KEY_FILE_NAME


def _read_key_file(path: Path) -> bytes:
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ValueError(
            f"user hash key file {path} is empty; delete it to generate a new key, "
            f"or set {KEY_ENV_VAR}"
        )
    return key.encode()


def _load_or_create_key_file(path: Path) -> bytes:
    """Read the key file, creating it first if needed; racing processes end with one key.

    The key is written to a private temp file and hard-linked into place, which fails if
    another process got there first; the loser then reads the winner's key.
    """
    with contextlib.suppress(FileNotFoundError):
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{_KEY_FILE_NAME}.")  # mode 0600
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
    return _read_key_file(path)


def _warn_key_file_once(path: Path) -> None:
    global _key_file_warned
    with _key_file_lock:
        if _key_file_warned:
            return
        _key_file_warned = True
    message = (
        f"closedloop is hashing user ids with the per-machine key in {path}: user.hash values "
        f"are only stable on this machine. Set {KEY_ENV_VAR} to the same secret on every "
        "machine and container (or pass user_hash_key=...) for hashes that match everywhere; "
        "to keep the hashes made so far, use this file's content as that secret."
    )
    warnings.warn(message, UserWarning, stacklevel=3)
    logger.warning(message)


def _encode_key(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else bytes(key)


class UserHasher:
    """HMAC-SHA256 of user ids, hex encoded (64 characters)."""

    __slots__ = ("_hmac", "_key_source")

    def __init__(self, key: str | bytes | None = None) -> None:
        source: KeySource
        if key is not None:
            if not key:
                raise ValueError(
                    "user_hash_key must not be empty: pass a secret such as "
                    "secrets.token_hex(32), or leave it unset to use "
                    f"{KEY_ENV_VAR} or the per-machine key file"
                )
            secret, source = _encode_key(key), "argument"
        elif (env_key := os.environ.get(KEY_ENV_VAR)) is not None:
            if not env_key:
                raise ValueError(
                    f"{KEY_ENV_VAR} is set but empty: set it to a secret such as the output "
                    "of `python -c 'import secrets; print(secrets.token_hex(32))'`, or unset it"
                )
            secret, source = env_key.encode(), "environment"
        else:
            path = key_file_path()
            secret, source = _load_or_create_key_file(path), "key_file"
            _warn_key_file_once(path)
        self._hmac = hmac.new(secret, digestmod=hashlib.sha256)
        self._key_source: KeySource = source

    @property
    def key_source(self) -> KeySource:
        """Where the key came from, for diagnostics; the key itself is never exposed."""
        return self._key_source

    def hash(self, user_id: str) -> str:
        """The hex HMAC-SHA256 of the UTF-8 ``user_id``."""
        if not isinstance(user_id, str):
            raise TypeError(f"user_id must be a str, not {type(user_id).__name__}")
        digest = self._hmac.copy()  # reuses the keyed state instead of re-deriving it
        digest.update(user_id.encode())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return f"UserHasher(key_source={self._key_source!r})"
