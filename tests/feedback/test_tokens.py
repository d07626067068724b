"""Feedback tokens: signing, strict verification, expiry, names, and key resolution."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import logging
import warnings
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer
from opentelemetry.trace import SpanContext

from closedloop.feedback import _tokens as tokens
from closedloop.feedback._targets import Target, resolve
from closedloop.feedback._tokens import (
    KEY_ENV_VAR,
    ExpiredToken,
    FeedbackGrant,
    InvalidToken,
    token,
    verify,
)
from closedloop.privacy import _keys as keys

KEY = "test-feedback-token-key"
NOW = 1_750_000_000.0
TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
TRACE_SPAN = f"{TRACE}:{SPAN}"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# The key file warning is asserted where it is tested (pytest.warns and "error" filters
# override this); elsewhere each fresh key directory would show it again.
pytestmark = pytest.mark.filterwarnings("ignore:closedloop is using the per-machine:UserWarning")


@pytest.fixture(autouse=True)
def _no_token_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key from the developer's environment."""
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOSEDLOOP_HOME", str(tmp_path))
    return tmp_path


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parts(value: str) -> tuple[str, str, str]:
    """``(payload, issued at, signature)``; a zlib-compressed payload keeps its leading dot."""
    payload, issued, signature = value.rsplit(".", 2)
    return payload, issued, signature


def fields_of(value: str) -> list[object]:
    """The payload's fields, read without the key: tokens are signed, not encrypted."""
    payload = parts(value)[0]
    if payload.startswith("."):
        return json.loads(zlib.decompress(unb64(payload[1:])))
    return json.loads(unb64(payload))


def make(target: object = TRACE_SPAN, **options: object) -> str:
    options.setdefault("key", KEY)
    options.setdefault("now", NOW)
    return token(target, **options)  # type: ignore[arg-type]


def check(value: str, name: str | None = None, **options: object) -> FeedbackGrant:
    options.setdefault("key", KEY)
    options.setdefault("now", NOW)
    return verify(value, name, **options)  # type: ignore[arg-type]


VALID = make()


# --- round trip ---------------------------------------------------------------------------


def test_round_trip_trace_and_span() -> None:
    grant = check(make(TRACE_SPAN))
    assert grant == FeedbackGrant(
        TRACE, SPAN, frozenset({"thumbs", "rating", "comment"}), NOW + 3600
    )
    assert grant.target == TRACE_SPAN
    assert resolve(grant.target) == resolve(TRACE_SPAN)


def test_round_trip_trace_only() -> None:
    grant = check(make(TRACE, names=["thumbs"]))
    assert (grant.trace_id, grant.span_id, grant.names) == (TRACE, None, frozenset({"thumbs"}))
    assert grant.target == TRACE
    assert resolve(grant.target) == Target(int(TRACE, 16), None)


def test_any_record_target_is_accepted() -> None:
    context = SpanContext(int(TRACE, 16), int(SPAN, 16), is_remote=False)
    assert check(make(context)).target == TRACE_SPAN
    assert check(make(Target(int(TRACE, 16), None))).target == TRACE
    assert check(make(TRACE_SPAN.upper())).target == TRACE_SPAN


def test_invalid_target_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a trace id"):
        make("not-a-trace")


def test_names_are_sorted_and_unique_in_the_payload() -> None:
    value = make(names=["rating", "thumbs", "rating", "a b/ünïcode"])
    assert fields_of(value)[2] == ["a b/ünïcode", "rating", "thumbs"]
    assert check(value).names == frozenset({"rating", "thumbs", "a b/ünïcode"})


def test_ttl_accepts_seconds_and_timedelta() -> None:
    assert check(make(ttl=60)).expires_at == NOW + 60
    assert check(make(ttl=datetime.timedelta(days=30))).expires_at == NOW + 30 * 86400
    # Fractional expiries round up to whole seconds: never shorter than asked.
    assert check(make(ttl=0.25, now=NOW + 0.5), now=NOW + 0.5).expires_at == NOW + 1


def test_two_tokens_for_the_same_target_differ() -> None:
    first, second = make(), make()
    assert first != second
    assert check(first) == check(second)


def test_token_is_short_and_url_safe() -> None:
    value = make(TRACE_SPAN)
    assert len(value) < 200, len(value)
    assert set(value) <= set(ALPHABET + ".")
    assert len(make(TRACE)) < len(value)


# --- tampering and garbage ----------------------------------------------------------------


def test_flipped_payload_character_is_rejected() -> None:
    payload, issued, signature = parts(VALID)
    index = len(payload) // 2
    flipped = "A" if payload[index] != "A" else "B"
    with pytest.raises(InvalidToken, match="bad signature"):
        check(f"{payload[:index]}{flipped}{payload[index + 1 :]}.{issued}.{signature}")


def test_modified_payload_with_the_old_signature_is_rejected() -> None:
    _, issued, signature = parts(VALID)
    fields = fields_of(VALID)
    fields[2] = [*fields[2], "admin"]
    fields[3] = 30 * 86400
    forged = b64(json.dumps(fields, separators=(",", ":")).encode())
    with pytest.raises(InvalidToken, match="bad signature"):
        check(f"{forged}.{issued}.{signature}")


def test_a_later_issue_time_with_the_old_signature_is_rejected() -> None:
    """The issue time is signed: moving it forward cannot extend a token's life."""
    payload, _, signature = parts(VALID)
    later = b64(int(NOW + 10 * 365 * 86400).to_bytes(4, "big"))
    with pytest.raises(InvalidToken, match="bad signature"):
        check(f"{payload}.{later}.{signature}", now=NOW + 9 * 365 * 86400)


def test_tampered_signature_is_rejected() -> None:
    payload, issued, signature = parts(VALID)
    raw = bytearray(unb64(signature))
    raw[0] ^= 1
    with pytest.raises(InvalidToken, match="bad signature"):
        check(f"{payload}.{issued}.{b64(bytes(raw))}")


def test_wrong_key_is_rejected() -> None:
    with pytest.raises(InvalidToken, match="bad signature") as caught:
        check(VALID, key="another-key")
    assert KEY not in str(caught.value)
    assert "another-key" not in str(caught.value)


def test_signature_of_another_payload_is_rejected() -> None:
    other_payload, other_issued, _ = parts(make(TRACE))
    with pytest.raises(InvalidToken, match="bad signature"):
        check(f"{other_payload}.{other_issued}.{parts(VALID)[2]}")


def test_a_token_of_another_format_version_is_a_bad_signature() -> None:
    """The format version is the salt, so a same-key token of another version never verifies."""
    other = URLSafeTimedSerializer(
        KEY, salt="closedloop feedback token v3", signer=tokens._Signer, signer_kwargs={"now": NOW}
    )
    with pytest.raises(InvalidToken, match="bad signature"):
        check(other.dumps([TRACE, SPAN, ["thumbs"], 60, "n"]))


def test_tokens_of_the_previous_format_are_refused() -> None:
    """Version 1 (``<payload>.<signature>``, before itsdangerous) tokens no longer verify."""
    body = json.dumps([1, TRACE, SPAN, ["thumbs"], int(NOW) + 60, "bm9uY2U"], separators=(",", ":"))
    payload = b64(body.encode())
    signing_key = hmac.digest(KEY.encode(), b"closedloop feedback token v1", hashlib.sha256)
    old = f"{payload}.{b64(hmac.digest(signing_key, payload.encode(), hashlib.sha256))}"
    with pytest.raises(InvalidToken, match="malformed token"):
        check(old)


PAYLOAD, ISSUED, SIGNATURE = parts(VALID)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "..",
        "abc",
        PAYLOAD,
        f"{PAYLOAD}.",
        f"{PAYLOAD}.{ISSUED}",
        f"{PAYLOAD}.{ISSUED}.",
        f".{ISSUED}.{SIGNATURE}",
        f"{PAYLOAD}.{SIGNATURE}",
        f"{VALID}.",
        f"{VALID}.{SIGNATURE}",
        f"{PAYLOAD}.{ISSUED}.{SIGNATURE[:-1]}",
        f"{PAYLOAD}.{ISSUED}.{SIGNATURE[:-4]}",
        f"{VALID}A",
        f"{VALID}=",
        f"{PAYLOAD}==.{ISSUED}.{SIGNATURE}",
        f"{PAYLOAD}.{ISSUED}==.{SIGNATURE}",
        f"{PAYLOAD[:-1]}.{ISSUED}.{SIGNATURE}",
        f"{PAYLOAD}.{ISSUED[:-1]}.{SIGNATURE}",
        f"{PAYLOAD[:10]}",
        f"{VALID[: len(VALID) // 2]}",
        f"{PAYLOAD}.{ISSUED}.{SIGNATURE.replace(SIGNATURE[3], '+', 1)}",
        f"{PAYLOAD.replace(PAYLOAD[3], '/', 1)}.{ISSUED}.{SIGNATURE}",
        f" {VALID}",
        f"{VALID}\n",
        VALID.replace(".", ". "),
        "not a token at all",
        "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
        "🙂.🙂",
        "a" * 5000,
    ],
)
def test_truncated_and_garbage_tokens_are_rejected(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        check(garbage)


@pytest.mark.parametrize("value", [None, 42, b"abc.def", ["a", "b"]])
def test_non_string_tokens_are_rejected(value: object) -> None:
    with pytest.raises(InvalidToken, match="malformed token: expected a str"):
        check(value)  # type: ignore[arg-type]


def signed(fields: object) -> str:
    """A correctly signed token around any payload: only someone with the key can do this."""
    return tokens._serializer(KEY, NOW).dumps(fields)


def test_signed_valid_fields_verify() -> None:
    grant = check(signed([TRACE, SPAN, ["thumbs"], 5, "n"]))
    assert grant.target == TRACE_SPAN
    assert grant.expires_at == NOW + 5


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"v": 1}, "not a field list"),
        ([], "not a field list"),
        ([TRACE, SPAN, ["thumbs"], 60], "wrong number of fields"),
        ([1, TRACE, SPAN, ["thumbs"], 60, "n"], "wrong number of fields"),  # version 1 shape
        ([5, SPAN, ["thumbs"], 60, "n"], "ids are not strings"),
        ([TRACE, 5, ["thumbs"], 60, "n"], "ids are not strings"),
        (["0" * 32, None, ["thumbs"], 60, "n"], "invalid trace or span id"),
        ([TRACE, "xyz", ["thumbs"], 60, "n"], "invalid trace or span id"),
        ([TRACE.upper(), None, ["thumbs"], 60, "n"], "not canonical"),
        ([TRACE, SPAN.upper(), ["thumbs"], 60, "n"], "not canonical"),
        ([TRACE, SPAN, [], 60, "n"], "names"),
        ([TRACE, SPAN, "thumbs", 60, "n"], "names"),
        ([TRACE, SPAN, [""], 60, "n"], "names"),
        ([TRACE, SPAN, [3], 60, "n"], "names"),
        ([TRACE, SPAN, ["thumbs"], 60.0, "n"], "lifetime"),
        ([TRACE, SPAN, ["thumbs"], "60", "n"], "lifetime"),
        ([TRACE, SPAN, ["thumbs"], True, "n"], "lifetime"),
        ([TRACE, SPAN, ["thumbs"], 0, "n"], "lifetime"),
        ([TRACE, SPAN, ["thumbs"], 31 * 86400, "n"], "lifetime"),
        ([TRACE, SPAN, ["thumbs"], 60, ""], "nonce"),
        ([TRACE, SPAN, ["thumbs"], 60, None], "nonce"),
    ],
)
def test_signed_but_malformed_payloads_are_rejected(fields: object, message: str) -> None:
    with pytest.raises(InvalidToken, match=f"malformed token: .*{message}"):
        check(signed(fields))


def test_signed_non_json_payload_is_malformed() -> None:
    signer = tokens._Signer([KEY.encode()], tokens._SALT.encode(), now=NOW)
    with pytest.raises(InvalidToken, match="malformed token: payload is not JSON"):
        check(signer.sign(b64(b"\xff not json")).decode())


# --- the unused-bits spelling of base64 ---------------------------------------------------


def padding_equivalents(text: str) -> list[str]:
    """Other spellings of ``text`` whose last character differs only in unused low bits."""
    unused_bits = {2: 4, 3: 2}[len(text) % 4]  # 43-character signature: 2 unused bits
    index = ALPHABET.index(text[-1])
    return [text[:-1] + ALPHABET[index ^ low] for low in range(1, 1 << unused_bits)]


def test_padding_equivalent_signature_spellings_are_rejected() -> None:
    """43 characters carry 258 bits for a 256-bit signature; itsdangerous' lenient decoder
    would accept the 3 other spellings of the last character as the same signature."""
    payload, issued, signature = parts(VALID)
    spellings = padding_equivalents(signature)
    assert len(spellings) == 3
    for spelling in spellings:
        assert unb64(spelling) == unb64(signature)  # the same bytes to a lenient decoder
        with pytest.raises(InvalidToken, match="not canonical"):
            check(f"{payload}.{issued}.{spelling}")


def test_padding_equivalent_payload_and_issue_time_spellings_are_rejected() -> None:
    """The signature covers the encoded text, so another spelling of the same payload or
    issue time bytes is a different token."""
    uncompressed = next(v for v in iter(make, None) if not v.startswith("."))
    payload, issued, signature = parts(uncompressed)
    # Lengths that are not a multiple of 4 leave unused bits in the last character.
    assert len(payload) % 4 and len(issued) % 4
    for spelling in padding_equivalents(payload):
        assert unb64(spelling) == unb64(payload)
        with pytest.raises(InvalidToken, match="bad signature"):
            check(f"{spelling}.{issued}.{signature}")
    assert len(padding_equivalents(issued)) == 15  # 4 bytes in 6 characters: 4 unused bits
    for spelling in padding_equivalents(issued):
        assert unb64(spelling) == unb64(issued)
        with pytest.raises(InvalidToken, match="bad signature"):
            check(f"{payload}.{spelling}.{signature}")


@st.composite
def mutations(draw: st.DrawFn) -> str:
    """VALID with one character replaced, inserted or deleted, anywhere."""
    # Also favour the two last characters, where unused bits live.
    edges = st.sampled_from([len(PAYLOAD) - 1, len(PAYLOAD) + len(ISSUED), len(VALID) - 1])
    index = draw(st.integers(0, len(VALID) - 1) | edges)
    char = draw(st.sampled_from(ALPHABET + ".=+/ ") | st.characters())
    kind = draw(st.sampled_from(["replace", "insert", "delete"]))
    if kind == "replace":
        return VALID[:index] + char + VALID[index + 1 :]
    if kind == "insert":
        return VALID[:index] + char + VALID[index:]
    return VALID[:index] + VALID[index + 1 :]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated=mutations())
def test_any_single_character_mutation_is_rejected(mutated: str) -> None:
    """Strict canonical base64url leaves no padding-equivalent spelling: every change fails."""
    assume(mutated != VALID)
    with pytest.raises(InvalidToken):
        check(mutated)


@pytest.mark.parametrize("index", [len(PAYLOAD) - 1, len(PAYLOAD) + len(ISSUED), len(VALID) - 1])
def test_every_replacement_of_a_last_character_is_rejected(index: int) -> None:
    """The characters that carry unused bits, exhaustively."""
    for char in ALPHABET:
        mutated = VALID[:index] + char + VALID[index + 1 :]
        if mutated != VALID:
            with pytest.raises(InvalidToken):
                check(mutated)


@given(
    names=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5),
    ttl=st.floats(min_value=0.001, max_value=30 * 86400),
    now=st.floats(min_value=0, max_value=4e9),
)
def test_round_trip_property(names: list[str], ttl: float, now: float) -> None:
    grant = verify(token(TRACE_SPAN, names, ttl, key=KEY, now=now), key=KEY, now=now)
    assert grant.names == frozenset(names)
    assert now + ttl <= grant.expires_at < now + ttl + 1


# --- expiry -------------------------------------------------------------------------------


def test_expired_token_is_rejected() -> None:
    value = make(ttl=60)
    assert check(value, now=NOW + 59.999).expires_at == NOW + 60
    with pytest.raises(ExpiredToken, match="expired") as caught:
        check(value, now=NOW + 3600)
    assert isinstance(caught.value, InvalidToken)
    assert isinstance(caught.value, ValueError)
    assert caught.value.expires_at == NOW + 60


def test_token_expires_exactly_at_its_expiry() -> None:
    value = make(ttl=60)
    check(value, now=NOW + 60 - 1e-6)
    with pytest.raises(ExpiredToken):
        check(value, now=NOW + 60)


def test_expiry_is_checked_after_the_signature() -> None:
    """A forged token is a bad signature whether or not it would have expired."""
    with pytest.raises(InvalidToken, match="bad signature"):
        check(make(ttl=1), key="another-key", now=NOW + 10_000)


# --- names --------------------------------------------------------------------------------


def test_allowed_name_is_accepted_and_others_rejected() -> None:
    value = make(names=["thumbs", "rating"])
    assert check(value, "thumbs").names == frozenset({"thumbs", "rating"})
    assert check(value, "rating").target == TRACE_SPAN
    with pytest.raises(InvalidToken, match=r"'comment'.*allows rating, thumbs") as caught:
        check(value, "comment")
    assert not isinstance(caught.value, ExpiredToken)
    with pytest.raises(InvalidToken, match="does not allow"):
        check(value, "")
    with pytest.raises(InvalidToken, match="does not allow"):
        check(value, ["thumbs"])  # type: ignore[arg-type]


# --- validation on creation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "ttl",
    [
        0,
        -1,
        0.0,
        30 * 86400 + 1,
        datetime.timedelta(days=31),
        datetime.timedelta(0),
        float("nan"),
        float("inf"),
    ],
)
def test_bad_ttl_is_rejected(ttl: object) -> None:
    with pytest.raises(ValueError, match="ttl"):
        make(ttl=ttl)


@pytest.mark.parametrize("ttl", [True, "60", None])
def test_ttl_of_the_wrong_type_is_a_type_error(ttl: object) -> None:
    with pytest.raises(TypeError, match="ttl"):
        make(ttl=ttl)


@pytest.mark.parametrize("names", [[], (), [""], ["thumbs", ""]])
def test_bad_names_are_rejected(names: object) -> None:
    with pytest.raises(ValueError, match="names"):
        make(names=names)


@pytest.mark.parametrize("names", [[None], ["thumbs", 3], 5, b"thumbs"])
def test_names_of_the_wrong_type_are_a_type_error(names: object) -> None:
    with pytest.raises(TypeError, match="names"):
        make(names=names)


def test_a_single_string_is_not_taken_for_its_letters() -> None:
    with pytest.raises(TypeError, match=r"names=\('thumbs',\)"):
        make(names="thumbs")


def test_too_many_names_are_rejected() -> None:
    # Hash-like names, so that zlib (which itsdangerous applies when it helps) cannot shrink them.
    names = [hashlib.sha256(str(i).encode()).hexdigest()[:24] for i in range(400)]
    with pytest.raises(ValueError, match="names are too many or too long"):
        make(names=names)


@pytest.mark.parametrize(
    ("now", "error"),
    [(float("nan"), ValueError), (-1.0, ValueError), (True, TypeError), ("now", TypeError)],
)
def test_bad_now_is_rejected(now: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="now"):
        make(now=now)
    with pytest.raises(error, match="now"):
        check(VALID, now=now)


def test_the_clock_is_bounded_where_a_tokens_expiry_still_fits_a_datetime() -> None:
    """A clock late in 9999 still works; beyond, or past any float, is a ValueError (never
    the ``struct.error`` or ``OverflowError`` of packing the issue time)."""
    late = datetime.datetime(9999, 11, 1, tzinfo=datetime.timezone.utc).timestamp()
    grant = check(make(now=late, ttl=tokens.MAX_TTL), now=late)
    assert grant.expires_at == late + tokens.MAX_TTL.total_seconds()
    year_9999_end = datetime.datetime(9999, 12, 31, tzinfo=datetime.timezone.utc).timestamp()
    for now in (year_9999_end, 1e20, 10**400):
        with pytest.raises(ValueError, match=r"^now="):
            make(now=now)
        with pytest.raises(ValueError, match=r"^now="):
            check(VALID, now=now)


def test_a_ttl_beyond_any_float_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="ttl"):
        make(ttl=10**400)


# --- keys (resolution itself: test_hashing.py, for this spec and the user hash one) ----


@pytest.mark.parametrize("key", ["", b""])
def test_empty_key_is_rejected(key: str | bytes) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        make(key=key)


def test_bytes_and_str_keys_agree() -> None:
    assert check(make(key=KEY.encode()), key=KEY).target == TRACE_SPAN
    assert check(make(key=b"\x00\xffbinary"), key=b"\x00\xffbinary").target == TRACE_SPAN


def test_non_string_key_is_rejected() -> None:
    with pytest.raises(TypeError, match="key must be a str or bytes"):
        make(key=42)


def test_environment_key_is_used(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, "from-env")
    value = token(TRACE_SPAN, now=NOW)
    assert verify(value, now=NOW, key="from-env").target == TRACE_SPAN
    assert verify(value, now=NOW).target == TRACE_SPAN
    with pytest.raises(InvalidToken, match="bad signature"):
        verify(value, now=NOW, key="other")
    assert list(home.iterdir()) == []


def test_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, "from-env")
    with pytest.raises(InvalidToken, match="bad signature"):
        verify(make(key="explicit"), now=NOW)


def test_empty_environment_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, "")
    with pytest.raises(ValueError, match=KEY_ENV_VAR):
        token(TRACE_SPAN)


def test_key_file_is_created_once_and_reused(home: Path) -> None:
    first = token(TRACE_SPAN, now=NOW)
    path = home / "feedback_token_key"
    content = path.read_text()
    assert tokens.key_file_path() == path
    assert sorted(home.iterdir()) == [path]  # no temp files, and no user hash key made

    second = token(TRACE_SPAN, now=NOW)
    assert path.read_text() == content
    assert verify(first, now=NOW).target == TRACE_SPAN
    assert verify(second, now=NOW).target == TRACE_SPAN
    assert verify(first, now=NOW, key=content).target == TRACE_SPAN  # the file is the secret


def test_key_file_sits_next_to_the_user_hash_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CLOSEDLOOP_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    token(TRACE_SPAN)
    assert (tmp_path / "xdg" / "closedloop" / "feedback_token_key").is_file()


def test_key_file_is_not_the_user_hash_key(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    from closedloop.privacy import UserHasher

    UserHasher()
    user_key = (home / "user_hash_key").read_text()
    value = token(TRACE_SPAN, now=NOW)
    assert (home / "feedback_token_key").read_text() != user_key
    with pytest.raises(InvalidToken, match="bad signature"):
        verify(value, now=NOW, key=user_key)


def test_a_secret_shared_with_user_hashing_cannot_forge_tokens() -> None:
    """Signatures use a derived key, so a user hash of a payload is not its signature."""
    from closedloop.privacy import UserHasher

    signed_text = f"{PAYLOAD}.{ISSUED}"
    user_hash = UserHasher(KEY).hash(signed_text)
    forged = f"{signed_text}.{b64(bytes.fromhex(user_hash))}"
    with pytest.raises(InvalidToken, match="bad signature"):
        check(forged)


@pytest.mark.usefixtures("home")
def test_key_file_warning_is_emitted_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=keys.__name__)
    with pytest.warns(UserWarning, match=KEY_ENV_VAR) as first:
        value = token(TRACE_SPAN, now=NOW)
    assert len(first) == 1
    assert first[0].filename == __file__  # points at the caller of token()
    assert "only verify on this machine" in str(first[0].message)
    assert "key=..." in str(first[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        token(TRACE_SPAN, now=NOW)
        verify(value, now=NOW)
    assert caplog.records == []  # printed once: the warning, no second log line


def test_key_file_warning_from_verify_points_at_its_caller(home: Path) -> None:
    (home / "feedback_token_key").write_text("machine-key")
    value = make(key="machine-key")
    with pytest.warns(UserWarning, match=KEY_ENV_VAR) as caught:
        assert verify(value, now=NOW).target == TRACE_SPAN
    assert len(caught) == 1
    assert caught[0].filename == __file__


def test_nothing_reveals_the_key(home: Path) -> None:
    secret = "super-secret-key-value"
    value = make(key=secret)
    grant = check(value, key=secret)
    assert secret not in repr(grant)
    assert secret not in value
    for attempt in (
        lambda: check(value, key="wrong"),
        lambda: check(value, "nope", key=secret),
        lambda: check(value, key=secret, now=NOW + 10**6),
        lambda: check(value + "x", key=secret),
    ):
        with pytest.raises(InvalidToken) as caught:
            attempt()
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)
        assert value not in str(caught.value)

    file_value = token(TRACE_SPAN, now=NOW)
    file_key = (home / "feedback_token_key").read_text()
    with pytest.raises(InvalidToken) as caught:
        verify(file_value, "nope", now=NOW)
    assert file_key not in str(caught.value)
