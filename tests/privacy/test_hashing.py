"""User id hashing (keyed HMAC), and the key resolution it shares with feedback tokens.

The second half tests ``closedloop.privacy._keys`` once, for every key spec that uses it:
argument, environment variable, the per-machine key file, its creation, and its warning.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import os
import re
import stat
import threading
import warnings
from pathlib import Path

import pytest

from closedloop.feedback import _tokens as tokens
from closedloop.privacy import UserHasher
from closedloop.privacy import _hashing as hashing
from closedloop.privacy import _keys as keys
from closedloop.privacy._hashing import KEY_ENV_VAR, key_file_path
from closedloop.privacy._keys import KeySpec, key_directory, resolve_key

# The key file warning is asserted where it is tested (pytest.warns and "error" filters
# override this); elsewhere each fresh key directory would show it again.
pytestmark = pytest.mark.filterwarnings("ignore:closedloop is using the per-machine:UserWarning")

SPECS = [
    pytest.param(hashing.KEY_SPEC, id="user_hash"),
    pytest.param(tokens.KEY_SPEC, id="feedback_token"),
]


def expected(key: bytes, user_id: str) -> str:
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(autouse=True)
def _no_environment_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for env_var in (hashing.KEY_ENV_VAR, tokens.KEY_ENV_VAR):
        monkeypatch.delenv(env_var, raising=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(tmp_path))
    return tmp_path


# --- UserHasher -----------------------------------------------------------------------------


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


def test_key_file_is_created_once_and_reused(home: Path) -> None:
    first = UserHasher()
    path = home / "user_hash_key"
    content = path.read_text()
    assert key_file_path() == path
    assert first.key_source == "key_file"
    assert first.hash("user-42") == expected(content.encode(), "user-42")

    second = UserHasher()
    assert second.key_source == "key_file"
    assert second.hash("user-42") == first.hash("user-42")
    assert path.read_text() == content
    assert sorted(home.iterdir()) == [path]  # no temp files, and no feedback token key made


def test_key_file_content_works_as_the_environment_key(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """Copying the file into CLOSEDLOOP_USER_HASH_KEY elsewhere reproduces the hashes."""
    local = UserHasher().hash("user-42")
    monkeypatch.setenv(KEY_ENV_VAR, (home / "user_hash_key").read_text())
    assert UserHasher().hash("user-42") == local


@pytest.mark.usefixtures("home")
def test_key_file_warning_points_at_the_caller_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=keys.__name__)
    with pytest.warns(UserWarning, match=KEY_ENV_VAR) as first:
        UserHasher()
    assert len(first) == 1
    assert first[0].filename == __file__  # the caller of UserHasher(), not closedloop
    assert "only stable on this machine" in str(first[0].message)
    assert "user_hash_key=..." in str(first[0].message)
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        UserHasher()
        UserHasher()
    assert later == []
    assert caplog.records == []  # printed once: the warning, no second log line


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


@pytest.mark.parametrize("key", [42, ["k"]])
def test_non_string_key_is_rejected(key: object) -> None:
    """Not silently turned into bytes: bytes(42) would be a key of 42 zero bytes."""
    with pytest.raises(TypeError, match="user_hash_key must be a str or bytes"):
        UserHasher(key)  # type: ignore[arg-type]


def test_empty_environment_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, "")
    with pytest.raises(ValueError, match=KEY_ENV_VAR):
        UserHasher()


def test_non_string_user_id_is_rejected() -> None:
    with pytest.raises(TypeError, match="user_id"):
        UserHasher("k").hash(42)  # type: ignore[arg-type]


# --- key resolution (closedloop.privacy._keys), for every spec --------------------------------


def test_key_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(tmp_path / "cl"))
    assert key_directory() == tmp_path / "cl"
    monkeypatch.setenv("CLOSEDLOOP_HOME", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert key_directory() == tmp_path / "xdg" / "closedloop"
    monkeypatch.delenv("CLOSEDLOOP_HOME")
    assert key_directory() == tmp_path / "xdg" / "closedloop"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/xdg")  # not absolute: ignored, as XDG says
    assert key_directory() == tmp_path / "home" / ".config" / "closedloop"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert key_directory() == tmp_path / "home" / ".config" / "closedloop"


@pytest.mark.parametrize(
    ("spec", "file_name", "public_path"),
    [
        pytest.param(hashing.KEY_SPEC, "user_hash_key", hashing.key_file_path, id="user_hash"),
        pytest.param(
            tokens.KEY_SPEC, "feedback_token_key", tokens.key_file_path, id="feedback_token"
        ),
    ],
)
def test_key_files_sit_side_by_side_in_the_key_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: KeySpec, file_name: str, public_path
) -> None:
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(tmp_path / "cl"))
    assert public_path() == spec.key_file_path() == tmp_path / "cl" / file_name
    monkeypatch.delenv("CLOSEDLOOP_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert public_path() == tmp_path / "xdg" / "closedloop" / file_name
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert public_path() == tmp_path / "home" / ".config" / "closedloop" / file_name


def test_specs_do_not_share_a_variable_or_a_file() -> None:
    user, token = hashing.KEY_SPEC, tokens.KEY_SPEC
    assert (user.env_var, user.argument) == ("CLOSEDLOOP_USER_HASH_KEY", "user_hash_key")
    assert (token.env_var, token.argument) == ("CLOSEDLOOP_FEEDBACK_TOKEN_KEY", "key")
    assert user.file_name != token.file_name


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("key", ["explicit", b"explicit", bytearray(b"explicit")])
def test_argument_key_beats_the_environment(
    monkeypatch: pytest.MonkeyPatch, home: Path, spec: KeySpec, key: str | bytes
) -> None:
    monkeypatch.setenv(spec.env_var, "from-env")
    assert resolve_key(spec, key) == (b"explicit", "argument")
    assert resolve_key(spec, b"\x00\xff") == (b"\x00\xff", "argument")
    assert list(home.iterdir()) == []


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("key", ["", b"", bytearray()])
def test_empty_argument_key_is_rejected(spec: KeySpec, key: str | bytes) -> None:
    with pytest.raises(ValueError, match=f"^{spec.argument} must not be empty") as caught:
        resolve_key(spec, key)
    assert spec.purpose in str(caught.value)
    assert spec.env_var in str(caught.value)  # the alternatives are named


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(("key", "type_name"), [(42, "int"), (["k"], "list"), (3.5, "float")])
def test_non_str_or_bytes_key_is_rejected(spec: KeySpec, key: object, type_name: str) -> None:
    with pytest.raises(
        TypeError, match=f"^{spec.argument} must be a str or bytes, not {type_name}"
    ):
        resolve_key(spec, key)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", SPECS)
def test_environment_key_is_used_for_every_spec(
    monkeypatch: pytest.MonkeyPatch, home: Path, spec: KeySpec
) -> None:
    monkeypatch.setenv(spec.env_var, "from-env")
    assert resolve_key(spec, None) == (b"from-env", "environment")
    assert list(home.iterdir()) == []  # no key file made


@pytest.mark.parametrize("spec", SPECS)
def test_empty_environment_key_is_rejected_for_every_spec(
    monkeypatch: pytest.MonkeyPatch, spec: KeySpec
) -> None:
    monkeypatch.setenv(spec.env_var, "")
    with pytest.raises(ValueError, match=f"^{spec.env_var} is set but empty: .*or unset it"):
        resolve_key(spec, None)


@pytest.mark.parametrize("spec", SPECS)
def test_key_file_is_created_once_private_and_reused(home: Path, spec: KeySpec) -> None:
    key, source = resolve_key(spec, None)
    path = home / spec.file_name
    content = path.read_text()
    assert source == "key_file"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(content) == 64
    int(content, 16)
    assert key == content.encode()
    assert sorted(home.iterdir()) == [path]  # no temp files left behind

    assert resolve_key(spec, None) == (key, "key_file")
    assert path.read_text() == content


def test_key_directory_is_created_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CLOSEDLOOP_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert UserHasher().key_source == "key_file"
    directory = tmp_path / "xdg" / "closedloop"
    assert (directory / "user_hash_key").is_file()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_existing_key_file_is_read_without_surrounding_whitespace(home: Path) -> None:
    (home / "user_hash_key").write_text("  shared-key\n")
    assert resolve_key(hashing.KEY_SPEC, None) == (b"shared-key", "key_file")
    assert UserHasher().hash("u") == expected(b"shared-key", "u")


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("content", [b"", b"\n", b" \t\n", b"\xff\xfe", b"\xffkey"])
def test_empty_or_garbage_key_file_is_an_error(home: Path, spec: KeySpec, content: bytes) -> None:
    path = home / spec.file_name
    path.write_bytes(content)
    pattern = f"^{re.escape(f'{spec.purpose} file {path}')} .*delete it.*{spec.env_var}"
    with pytest.raises(ValueError, match=pattern):
        resolve_key(spec, None)
    assert path.read_bytes() == content  # never overwritten: it may be a key someone relies on


def test_losing_a_creation_race_uses_the_winners_key(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    real_link = os.link

    def racing_link(source: str, target: str) -> None:
        Path(target).write_text("winner-key")  # another process links its key first
        real_link(source, target)

    monkeypatch.setattr(os, "link", racing_link)
    assert resolve_key(hashing.KEY_SPEC, None) == (b"winner-key", "key_file")
    assert sorted(home.iterdir()) == [home / "user_hash_key"]


def test_concurrent_creators_agree(home: Path) -> None:
    results: list[tuple[bytes, str]] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        results.append(resolve_key(hashing.KEY_SPEC, None))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    path = home / "user_hash_key"
    assert len(results) == 8
    assert set(results) == {(path.read_text().encode(), "key_file")}
    assert sorted(home.iterdir()) == [path]


def test_filesystems_without_hard_links_fall_back_to_rename(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    def no_links(source: str, target: str) -> None:
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    key, _ = resolve_key(hashing.KEY_SPEC, None)
    path = home / "user_hash_key"
    assert key == path.read_text().encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(home.iterdir()) == [path]


@pytest.mark.parametrize("spec", SPECS)
def test_key_file_warning_is_emitted_once_per_key_file(
    home: Path, spec: KeySpec, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=keys.__name__)
    with pytest.warns(UserWarning, match=spec.env_var) as first:
        key, _ = resolve_key(spec, None)
    assert len(first) == 1
    assert first[0].filename == __file__  # the caller of resolve_key
    message = str(first[0].message)
    assert str(home / spec.file_name) in message
    assert spec.consequence in message
    assert f"{spec.argument}=..." in message
    assert "use this file's content as that secret" in message
    assert key.decode() not in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_key(spec, None)
        resolve_key(spec, None)
    assert caplog.records == []  # printed once: the warning, no second log line


def test_every_key_file_warns_on_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One key file's warning does not silence another's: each says what it breaks."""
    caplog.set_level(logging.WARNING, logger=keys.__name__)
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(tmp_path / "first"))
    with pytest.warns(UserWarning, match="only stable on this machine"):
        resolve_key(hashing.KEY_SPEC, None)
    with pytest.warns(UserWarning, match="only verify on this machine"):
        resolve_key(tokens.KEY_SPEC, None)
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(tmp_path / "second"))
    with pytest.warns(UserWarning, match=re.escape(str(tmp_path / "second"))):
        resolve_key(hashing.KEY_SPEC, None)
    assert caplog.records == []  # each printed once, as its warning


@pytest.mark.parametrize("spec", SPECS)
def test_no_warning_with_an_explicit_or_environment_key(
    monkeypatch: pytest.MonkeyPatch, home: Path, spec: KeySpec, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=keys.__name__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_key(spec, "explicit")
        monkeypatch.setenv(spec.env_var, "from-env")
        resolve_key(spec, None)
    assert caplog.records == []
    assert list(home.iterdir()) == []
