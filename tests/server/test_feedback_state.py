"""The feedback endpoint's state and configuration: the used-token store, rate limit
buckets, and the settings checks that run at start-up."""

from __future__ import annotations

import pytest

from closedloop import ClosedloopError
from closedloop.server._feedback_settings import (
    FeedbackConfigError,
    FeedbackEndpointSettings,
    Rate,
    load_api_keys,
)
from closedloop.server._nonces import NonceStore, NonceStoreFull
from closedloop.server._ratelimit import RateLimiter

NOW = 1_720_000_000.0


def keys(count: int) -> list[str]:
    return [f"{index:032x}" for index in range(count)]


# --- used tokens --------------------------------------------------------------------------


def test_a_used_key_stays_used_across_restarts_until_it_expires(tmp_path):
    path = tmp_path / "nonces"
    store = NonceStore(path, 10, now=NOW)
    assert store.claim("a" * 32, NOW + 60, NOW)
    assert not store.claim("a" * 32, NOW + 60, NOW + 30)

    reopened = NonceStore(path, 10, now=NOW + 59)

    assert not reopened.claim("a" * 32, NOW + 60, NOW + 59)
    later = NonceStore(path, 10, now=NOW + 60)
    assert len(later) == 0
    assert path.read_text() == ""  # expired entries are not carried over


def test_a_released_key_can_be_claimed_again_after_a_restart(tmp_path):
    path = tmp_path / "nonces"
    store = NonceStore(path, 10, now=NOW)
    store.claim("a" * 32, NOW + 60, NOW)
    store.release("a" * 32)

    assert NonceStore(path, 10, now=NOW).claim("a" * 32, NOW + 60, NOW)


def test_a_line_torn_by_a_crash_is_dropped_and_the_rest_kept(tmp_path):
    path = tmp_path / "nonces"
    NonceStore(path, 10, now=NOW).claim("a" * 32, NOW + 60, NOW)
    with path.open("ab") as file:
        file.write(b"b" * 32 + b" 17200")  # the crash came before the newline and fsync

    reopened = NonceStore(path, 10, now=NOW)

    assert not reopened.claim("a" * 32, NOW + 60, NOW)
    assert reopened.claim("b" * 32, NOW + 60, NOW)
    assert path.read_text().splitlines() == [
        f"{'a' * 32} {NOW + 60:.0f}",
        f"{'b' * 32} {NOW + 60:.0f}",
    ]


def test_malformed_lines_are_skipped(tmp_path, caplog):
    path = tmp_path / "nonces"
    path.write_bytes(f"{'a' * 32} {NOW + 60:.0f}\ngarbage\n{'c' * 32} soon\n".encode())

    store = NonceStore(path, 10, now=NOW)

    assert len(store) == 1
    assert "skipped a malformed line" in caplog.text


def test_a_full_store_refuses_rather_than_forgets(tmp_path):
    store = NonceStore(tmp_path / "nonces", 2, now=NOW)
    store.claim("a" * 32, NOW + 100, NOW)
    store.claim("b" * 32, NOW + 40, NOW)

    with pytest.raises(NonceStoreFull) as full:
        store.claim("c" * 32, NOW + 100, NOW + 10)

    assert full.value.retry_after_s == 30
    assert isinstance(full.value, ClosedloopError)
    assert not store.claim("a" * 32, NOW + 100, NOW + 10)  # still remembered
    assert store.claim("c" * 32, NOW + 100, NOW + 40)  # b's slot, once b expired


def test_the_file_stays_bounded_when_expired_entries_dominate(tmp_path):
    path = tmp_path / "nonces"
    store = NonceStore(path, 10_000, now=NOW)
    line = len(f"{'0' * 32} {NOW:.0f}\n")
    largest = 0
    for step, key in enumerate(keys(3_000)):
        assert store.claim(key, NOW + step + 5, NOW + step)
        largest = max(largest, path.stat().st_size)

    assert largest <= 2 * 1024 * line  # rewritten at 2,048 lines, not at the 10,000 capacity
    assert len(store) == 5
    assert path.stat().st_size < 1024 * line


# --- rate limits ----------------------------------------------------------------------------


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    limiter = RateLimiter(Rate(per_second=2.0, burst=3), max_keys=10)

    assert [limiter.take("a", NOW) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", NOW) == 0.5
    assert limiter.take("b", NOW) == 0.0
    assert limiter.take("a", NOW + 0.5) == 0.0
    assert limiter.take("a", NOW + 0.5) == 0.5


def test_a_clock_that_steps_back_drains_nothing():
    limiter = RateLimiter(Rate(per_second=1.0, burst=2), max_keys=10)
    limiter.take("a", NOW)

    assert limiter.take("a", NOW - 100) == 0.0
    assert limiter.take("a", NOW - 100) == 1.0


def test_the_map_keeps_only_the_most_recent_callers():
    limiter = RateLimiter(Rate(per_second=1.0, burst=1), max_keys=2)
    for caller in ("a", "b", "a", "c"):
        limiter.take(caller, NOW)

    assert len(limiter) == 2
    assert limiter.take("a", NOW) == 1.0  # a was seen after b: kept, and empty
    assert limiter.take("b", NOW) == 0.0  # b was evicted: a fresh bucket


# --- settings -------------------------------------------------------------------------------


def test_api_keys_come_from_the_environment_and_a_file(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("  file-key-0123456789abcdef  \n\n# a comment\nsecond-file-key-0123456\n")

    loaded = load_api_keys(env={"CLOSEDLOOP_API_KEYS": " env-key-0123456789abc ,, "}, file=key_file)

    assert loaded == {
        "env-key-0123456789abc",
        "file-key-0123456789abcdef",
        "second-file-key-0123456",
    }
    assert load_api_keys(env={}) == frozenset()


def test_an_unreadable_key_file_is_a_config_error(tmp_path):
    with pytest.raises(FeedbackConfigError, match="cannot read the API key file"):
        load_api_keys(env={}, file=tmp_path / "missing")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api_keys": frozenset({"short"})}, "an API key is 5 characters; use at least 16"),
        ({"api_keys": frozenset({"has a space in it 0123"})}, "spaces, commas or non-ASCII"),
        ({"cors_origins": frozenset({"https://app.example.com/"})}, "no path or trailing"),
        ({"cors_origins": frozenset({"*"})}, "one per allowed site"),
        ({"cors_origins": frozenset({"https://App.example.com"})}, "in lower case"),
        ({"max_nonces": 0}, "max_nonces=0 must be at least 1"),
    ],
)
def test_unusable_settings_are_refused_at_start_up(tmp_path, options, message):
    with pytest.raises(FeedbackConfigError) as refused:
        FeedbackEndpointSettings(nonce_file=tmp_path / "nonces", **options)

    assert message in str(refused.value)
    assert "short" not in str(refused.value)  # a key is never echoed


@pytest.mark.parametrize(("per_second", "burst"), [(0.0, 1), (float("nan"), 1), (1.0, 0)])
def test_a_rate_must_be_positive(per_second, burst):
    with pytest.raises(FeedbackConfigError, match="both must be positive"):
        Rate(per_second=per_second, burst=burst)
