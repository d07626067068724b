"""Keyed hashing of user ids, so spans can count and group users without storing who they are.

A plain SHA-256 of an id is reversible by hashing candidate ids (e-mails, account numbers), so
ids are HMAC'd with a secret key. The key comes from the caller, from
``CLOSEDLOOP_USER_HASH_KEY``, or from a key file generated once per machine; hashes made with the
key file only match those made on the same machine, which is why using it warns.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from closedloop.privacy._keys import KeySource, KeySpec, resolve_key

__all__ = ["KEY_ENV_VAR", "KEY_SPEC", "UserHasher", "key_file_path"]

KEY_ENV_VAR = "CLOSEDLOOP_USER_HASH_KEY"
KEY_SPEC = KeySpec(
    purpose="user hash key",
    argument="user_hash_key",
    env_var=KEY_ENV_VAR,
    file_name="user_hash_key",
    consequence="user.hash values are only stable on this machine, so users seen by other "
    "machines or containers get other hashes.",
)


def key_file_path() -> Path:
    """Where the per-machine key lives: ``$CLOSEDLOOP_HOME``, else the XDG config directory."""
    return KEY_SPEC.key_file_path()


# Hashes remembered per hasher: a user makes many calls in a row, and a dict lookup costs a
# fraction of an HMAC. Past this many users the memory starts afresh.
_REMEMBERED = 4096


class UserHasher:
    """HMAC-SHA256 of user ids, hex encoded (64 characters)."""

    __slots__ = ("_hashes", "_hmac", "_key_source")

    def __init__(self, key: str | bytes | None = None) -> None:
        secret, source = resolve_key(KEY_SPEC, key, stacklevel=2)  # warn the caller
        self._hmac = hmac.new(secret, digestmod=hashlib.sha256)
        self._key_source: KeySource = source
        self._hashes: dict[str, str] = {}

    @property
    def key_source(self) -> KeySource:
        """Where the key came from, for diagnostics; the key itself is never exposed."""
        return self._key_source

    def hash(self, user_id: str) -> str:
        """The hex HMAC-SHA256 of the UTF-8 ``user_id``."""
        known = self._hashes.get(user_id) if type(user_id) is str else None
        if known is not None:
            return known
        if not isinstance(user_id, str):
            raise TypeError(f"user_id must be a str, not {type(user_id).__name__}")
        digest = self._hmac.copy()  # reuses the keyed state instead of re-deriving it
        digest.update(user_id.encode())
        hashed = digest.hexdigest()
        if len(self._hashes) >= _REMEMBERED:
            self._hashes.clear()  # not evicted one by one: other threads may be reading
        self._hashes[user_id] = hashed
        return hashed

    def __repr__(self) -> str:
        return f"UserHasher(key_source={self._key_source!r})"
