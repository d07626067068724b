"""status_code: any span with a listed code, named as the collector config names them."""

from __future__ import annotations

import re

import pytest

from closedloop.sampling import Decision, SamplingConfigError

from .support import config, decide, policy, view


def test_status_code_samples_any_span_with_a_listed_code() -> None:
    errors_or_ok = policy("status_code", status_codes=["ERROR", "OK"])
    assert decide(errors_or_ok, view(span_id=1), view(span_id=2, status=2)) is Decision.SAMPLED
    assert decide(errors_or_ok, view(status=1)) is Decision.SAMPLED
    assert decide(errors_or_ok, view(status=0)) is Decision.NOT_SAMPLED
    unset = policy("status_code", status_codes=["UNSET"])
    assert decide(unset, view(status=0)) is Decision.SAMPLED


@pytest.mark.parametrize("codes", [["error"], ["ERROR", "FAILED"], []])
def test_status_code_unknown_or_missing_codes_are_config_errors(codes: list[str]) -> None:
    with pytest.raises(SamplingConfigError, match=re.escape("policies[0].status_codes")):
        config(policy("status_code", status_codes=codes))
