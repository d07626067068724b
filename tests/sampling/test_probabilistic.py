"""probabilistic: FNV-1a 64 of salt + trace id against Go's exact threshold."""

from __future__ import annotations

import pytest

from closedloop.sampling import Decision
from closedloop.sampling._policies.probabilistic import sampling_threshold

from .support import (
    MAX_UINT64,
    NEVER,
    decide,
    first_trace_id,
    policy,
    reference_fnv1a_64,
    reference_probabilistic,
    reference_threshold,
    view,
)


def test_fnv1a_reference_matches_published_vectors() -> None:
    # sanity of the in-test reference itself (FNV-1a 64 test vectors)
    assert reference_fnv1a_64(b"") == 0xCBF29CE484222325
    assert reference_fnv1a_64(b"a") == 0xAF63DC4C8601EC8C
    assert reference_fnv1a_64(b"foobar") == 0x85944171F73967E8


def test_sampling_threshold_extremes() -> None:
    assert sampling_threshold(100) == MAX_UINT64
    assert sampling_threshold(0) == 0
    assert sampling_threshold(50) == reference_threshold(50) == 2**63 - 1
    # the in-test reference reproduces the collector's verified 10% value
    assert reference_threshold(10) == 1844674407370955263


def test_sampling_threshold_ten_percent_is_the_collectors_value() -> None:
    assert sampling_threshold(10) == 1844674407370955263


@pytest.mark.parametrize("percentage", [15, 1, 33.3])
def test_sampling_threshold_matches_the_collector(percentage: float) -> None:
    assert sampling_threshold(percentage) == reference_threshold(percentage)


FIXED_TRACE_IDS = [
    1,
    0x0AF7651916CD43DD8448EB211C80319C,
    0x4BF92F3577B34DA6A3CE929D0E0E4736,
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF,
    0x00000000000000010000000000000000,
    0x5B8EFFF798038103D269B633813FC60C,
]


@pytest.mark.parametrize("trace_id", FIXED_TRACE_IDS)
@pytest.mark.parametrize(("percentage", "salt"), [(50, ""), (25, "my-salt"), (10, ""), (90, "s")])
def test_probabilistic_hashes_salt_and_trace_id_bytes(
    trace_id: int, percentage: float, salt: str
) -> None:
    spec = policy("probabilistic", sampling_percentage=percentage, hash_salt=salt)
    expected = reference_probabilistic(trace_id, percentage, salt or "default-hash-seed")
    assert decide(spec, view(trace_id)) is (Decision.SAMPLED if expected else Decision.NOT_SAMPLED)


def test_probabilistic_default_salt_is_default_hash_seed() -> None:
    # a trace id the default salt samples at 50% and an explicit other salt does not
    trace_id = first_trace_id(
        1,
        lambda t: (
            reference_probabilistic(t, 50, "default-hash-seed")
            and not reference_probabilistic(t, 50, "other")
        ),
    )
    assert decide(policy("probabilistic", sampling_percentage=50), view(trace_id)) is (
        Decision.SAMPLED
    )
    explicit = policy("probabilistic", sampling_percentage=50, hash_salt="default-hash-seed")
    assert decide(explicit, view(trace_id)) is Decision.SAMPLED
    other = policy("probabilistic", sampling_percentage=50, hash_salt="other")
    assert decide(other, view(trace_id)) is Decision.NOT_SAMPLED


def test_probabilistic_zero_and_hundred_percent() -> None:
    always = policy("probabilistic", sampling_percentage=100)
    for trace_id in FIXED_TRACE_IDS:
        assert decide(always, view(trace_id)) is Decision.SAMPLED
        assert decide(NEVER, view(trace_id)) is Decision.NOT_SAMPLED


def test_probabilistic_rate_is_roughly_the_percentage() -> None:
    spec = policy("probabilistic", sampling_percentage=20)
    trace_ids = [t * 7919 + 13 for t in range(2000)]
    kept = [t for t in trace_ids if decide(spec, view(t)) is Decision.SAMPLED]
    assert kept == [t for t in trace_ids if reference_probabilistic(t, 20, "default-hash-seed")]
    assert 250 < len(kept) < 550
