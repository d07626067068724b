"""User id hashing: keyed HMAC, key resolution, the per-machine key file and its warning."""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import os
import stat
import threading
import warnings
from pathlib import Path

import pytest

from closedloop.privacy import UserHasher, hashing
from closedloop.privacy.hashing import KEY_ENV_VAR, key_file_path


def expected(key: bytes, user_id: str) -> str:
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(autouse=True)
def _quiet_key_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the once-per-process warning was already shown; the warning test resets it."""
    monkeypatch.setattr(hashing, "_key_file_warned", True)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(tmp_path))
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    return tmp_path


@pytest.mark.parametrize("key", ["s3cret", b"\x00binary\xffkey"])
def test_hash_is_hmac_sha256_of_the_utf8_id(key: str | bytes) -> None:
    raw_key = key.encode() if isinstance(key, str) else key
    hasher = UserHasher(key)
    for user_id in ("user-42", "alice@example.com", "Zoë 🚀", ""):
        assert hasher.hash(user_id) == expected(raw_key, user_id)
    assert len(hasher.hash("user-42")) == 64
    assert hasher.key_source == "argument"


def test_different_keys_give_different_hashes() -> None:
    assert UserHasher("key-a").hash("user-42") != UserHasher("key-b").hash("user-42")


def test_environment_key_is_used(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, "from-env")
    hasher = UserHasher()
    assert hasher.key_source == "environment"
    assert hasher.hash("user-42") == expected(b"from-env", "user-42")
    assert not (home / "user_hash_key").exists()


def test_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, "from-env")
    assert UserHasher("explicit").hash("u") == expected(b"explicit", "u")


def test_key_file_is_created_once_private_and_reused(home: Path) -> None:
    first = UserHasher()
    path = home / "user_hash_key"
    content = path.read_text()
    assert first.key_source == "key_file"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(content) == 64
    int(content, 16)
    assert first.hash("user-42") == expected(content.encode(), "user-42")

    second = UserHasher()
    assert second.hash("user-42") == first.hash("user-42")
    assert path.read_text() == content
    assert sorted(home.iterdir()) == [path]  # no temp files left behind


def test_key_file_content_works_as_the_environment_key(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """Copying the file into CLOSEDLOOP_USER_HASH_KEY elsewhere reproduces the hashes."""
    local = UserHasher().hash("user-42")
    monkeypatch.setenv(KEY_ENV_VAR, (home / "user_hash_key").read_text())
    assert UserHasher().hash("user-42") == local


def test_existing_key_file_is_read(home: Path) -> None:
    (home / "user_hash_key").write_text("shared-key\n")
    assert UserHasher().hash("u") == expected(b"shared-key", "u")


def test_empty_key_file_is_an_error(home: Path) -> None:
    (home / "user_hash_key").write_text("\n")
    with pytest.raises(ValueError, match="delete it"):
        UserHasher()


def test_key_file_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(tmp_path / "cl"))
    assert key_file_path() == tmp_path / "cl" / "user_hash_key"
    monkeypatch.delenv("CLOSEDLOOP_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert key_file_path() == tmp_path / "xdg" / "closedloop" / "user_hash_key"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert key_file_path() == tmp_path / "home" / ".config" / "closedloop" / "user_hash_key"


def test_key_file_directory_is_created(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CLOSEDLOOP_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert UserHasher().key_source == "key_file"
    assert (tmp_path / "xdg" / "closedloop" / "user_hash_key").is_file()


def test_losing_a_creation_race_uses_the_winners_key(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    real_link = os.link

    def racing_link(source: str, target: str) -> None:
        Path(target).write_text("winner-key")  # another process links its key first
        real_link(source, target)

    monkeypatch.setattr(hashing.os, "link", racing_link)
    assert UserHasher().hash("u") == expected(b"winner-key", "u")
    assert sorted(home.iterdir()) == [home / "user_hash_key"]


def test_concurrent_creators_agree(home: Path) -> None:
    path = home / "user_hash_key"
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        keys.append(hashing._load_or_create_key_file(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert set(keys) == {path.read_text().encode()}


def test_filesystems_without_hard_links_fall_back_to_rename(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    def no_links(source: str, target: str) -> None:
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(hashing.os, "link", no_links)
    hasher = UserHasher()
    path = home / "user_hash_key"
    assert hasher.hash("u") == expected(path.read_text().encode(), "u")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(home.iterdir()) == [path]


@pytest.fixture
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "_key_file_warned", False)


@pytest.mark.usefixtures("home", "fresh_warning")
def test_key_file_warning_is_emitted_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=hashing.__name__)
    with pytest.warns(UserWarning, match=KEY_ENV_VAR) as first:
        UserHasher()
    assert "only stable on this machine" in str(first[0].message)
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        UserHasher()
        UserHasher()
    assert later == []
    assert [record.getMessage() for record in caplog.records] == [str(first[0].message)]


@pytest.mark.usefixtures("fresh_warning")
def test_no_warning_with_an_explicit_or_environment_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        UserHasher("explicit")
        monkeypatch.setenv(KEY_ENV_VAR, "from-env")
        UserHasher()


def test_repr_reveals_neither_key_nor_ids(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    hasher = UserHasher("super-secret-key")
    hasher.hash("alice@example.com")
    assert repr(hasher) == "UserHasher(key_source='argument')"
    assert "super-secret-key" not in repr(hasher)
    assert "alice" not in repr(hasher)

    file_hasher = UserHasher()
    assert (home / "user_hash_key").read_text() not in repr(file_hasher)


@pytest.mark.parametrize("key", ["", b""])
def test_empty_key_is_rejected(key: str | bytes) -> None:
    with pytest.raises(ValueError, match="user_hash_key"):
        UserHasher(key)


def test_empty_environment_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, "")
    with pytest.raises(ValueError, match=KEY_ENV_VAR):
        UserHasher()


def test_non_string_user_id_is_rejected() -> None:
    with pytest.raises(TypeError, match="user_id"):
        UserHasher("k").hash(42)  # type: ignore[arg-type]
