"""Bounded exponential backoff with jitter, and which errors are worth a retry."""

from __future__ import annotations

import random

import pytest

from ladder_kube.errors import UNREACHABLE, ApiError
from ladder_kube.retry import Backoff, call_with_retry


@pytest.mark.parametrize(
    ("status", "reason", "verb", "transient"),
    [
        (0, UNREACHABLE, "get", True),
        (0, "TLSFailed", "get", False),
        (429, "TooManyRequests", "apply", True),
        (500, "InternalError", "create", True),
        (503, "ServiceUnavailable", "get", True),
        (504, "Timeout", "apply", True),
        (409, "Conflict", "apply", True),  # the server gave up its own retries: an apply can be resent
        (409, "AlreadyExists", "create", False),
        (409, "Conflict", "patch", False),  # a stale resourceVersion: re-read, not resend
        (404, "NotFound", "get", False),
        (403, "Forbidden", "apply", False),
        (422, "Invalid", "apply", False),
    ],
)
def test_transient_errors(status, reason, verb, transient):
    assert ApiError(status, reason, "m", verb).transient is transient


def test_delays_double_with_jitter_up_to_the_cap_and_stop_at_the_budget():
    backoff = Backoff(first_s=0.5, max_s=8.0, budget_s=60.0)
    for seed in range(20):
        delays = list(backoff.delays(random.Random(seed)))
        caps = [min(8.0, 0.5 * 2**k) for k in range(len(delays))]
        assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True))
        assert 60.0 - 8.0 < sum(delays) <= 60.0  # the budget used up, to within one capped delay
    runs = {tuple(Backoff().delays(random.Random(seed)))[:3] for seed in range(5)}
    assert len(runs) == 5, "writers that failed together do not retry together"


def test_retries_transient_errors_until_success():
    slept, answers = [], [ApiError(0, UNREACHABLE, "refused"), ApiError(503, "ServiceUnavailable", "")]

    def call():
        if answers:
            raise answers.pop(0)
        return "ok"

    assert call_with_retry(call, Backoff(), sleep=slept.append, rng=random.Random(0)) == "ok"
    assert len(slept) == 2 and slept[1] > slept[0] * 0.5


def test_gives_up_with_the_last_error_and_never_retries_a_permanent_one():
    slept = []

    def down():
        raise ApiError(0, UNREACHABLE, "refused")

    with pytest.raises(ApiError) as info:
        call_with_retry(
            down, Backoff(first_s=1, max_s=4, budget_s=20), sleep=slept.append, rng=random.Random(1)
        )
    assert info.value.transient and 0 < sum(slept) <= 20

    slept.clear()
    calls = []

    def forbidden():
        calls.append(1)
        raise ApiError(403, "Forbidden", "no", "apply")

    with pytest.raises(ApiError, match="Forbidden"):
        call_with_retry(forbidden, Backoff(), sleep=slept.append)
    assert calls == [1] and slept == []
    with pytest.raises(ApiError):
        call_with_retry(down, None, sleep=slept.append)  # no backoff: one attempt
    assert slept == []
