"""The portfolio risk rules of raybt.risk, called directly: edges and boundaries.

Drawdowns are chosen so that ``1 - last / peak`` is exact in binary floating
point (peaks of 128, lasts like 96), so "exactly at the threshold" really is.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raybt import risk


def ns(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


# --- drawdown_scale ------------------------------------------------------------------------

@pytest.mark.parametrize("drawdown, expected", [
    (-0.5, 1.0),  # above the peak
    (0.0, 1.0),
    (0.05, 1.0),  # exactly at dd_scale_start: still full size
    (0.15, 0.6),  # half way from start to limit: half way from 1 to the floor
    (0.2, 0.4),
    (0.25, 0.2),  # exactly at the limit: the floor
    (0.9, 0.2),  # beyond the limit: the floor, not lower
])
def test_drawdown_scale_is_one_then_linear_then_floor(drawdown, expected):
    assert risk.drawdown_scale(drawdown, 0.05, 0.25, 0.2) == pytest.approx(expected, abs=1e-15)


def test_drawdown_scale_is_continuous_at_both_ends():
    just_after_start = risk.drawdown_scale(0.05 + 1e-12, 0.05, 0.25, 0.5)
    just_before_limit = risk.drawdown_scale(0.25 - 1e-12, 0.05, 0.25, 0.5)
    assert 1.0 - 1e-9 < just_after_start < 1.0
    assert 0.5 < just_before_limit < 0.5 + 1e-9


def test_drawdown_scale_with_limit_not_above_start_jumps_to_the_floor():
    # the ramp has no width: up to the start full size, beyond it the floor (no division by zero)
    assert risk.drawdown_scale(0.1, 0.1, 0.1, 0.3) == 1.0
    assert risk.drawdown_scale(0.1000001, 0.1, 0.1, 0.3) == 0.3
    assert risk.drawdown_scale(0.15, 0.2, 0.1, 0.3) == 1.0
    assert risk.drawdown_scale(0.25, 0.2, 0.1, 0.3) == 0.3


# --- step_breaker --------------------------------------------------------------------------

def policy(**kw):
    return risk.BreakerPolicy(**{"max_portfolio_drawdown": 0.25, **kw})


def armed(peak=128.0):
    return risk.BreakerState(tripped=False, chunks_since_trip=0, peak=peak)


def test_breaker_does_not_trip_exactly_at_the_threshold():
    assert 1 - 96.0 / 128.0 == 0.25
    state, decision = risk.step_breaker(armed(), 120.0, 96.0, policy())
    assert decision == risk.BreakerDecision(halted=False, flatten=False, event="", drawdown=0.25)
    assert state == armed()


@pytest.mark.parametrize("flatten", [True, False])
def test_breaker_trips_beyond_the_threshold_and_flattens_as_configured(flatten):
    last = np.nextafter(96.0, 0.0)  # the smallest step below 25 % drawdown
    state, decision = risk.step_breaker(armed(), 100.0, last, policy(flatten=flatten))
    assert decision.halted and decision.event == "trip" and decision.flatten is flatten
    assert decision.drawdown > 0.25
    assert state == risk.BreakerState(tripped=True, chunks_since_trip=0, peak=128.0)


def test_breaker_peak_is_the_running_max_including_the_chunks_own_max():
    # the chunk's path rose to 160 before ending at 124: 22.5 % below the new peak, not 3 %
    state, decision = risk.step_breaker(armed(128.0), 160.0, 124.0, policy(max_portfolio_drawdown=0.2))
    assert state.peak == 160.0 and decision.drawdown == pytest.approx(1 - 124 / 160)
    assert decision.event == "trip"
    # a lower chunk max leaves the peak alone
    state, decision = risk.step_breaker(armed(128.0), 100.0, 100.0, policy())
    assert state.peak == 128.0 and decision.drawdown == pytest.approx(1 - 100 / 128)


def test_breaker_with_non_positive_peak_reports_no_drawdown():
    state, decision = risk.step_breaker(armed(0.0), -5.0, -5.0, policy())
    assert decision.drawdown == 0.0 and not decision.halted and not state.tripped


def _trip(pol):
    state, decision = risk.step_breaker(armed(), 128.0, 64.0, pol)  # 50 % down
    assert decision.event == "trip"
    return state


@pytest.mark.parametrize("cooldown", [1, 2, 5])
def test_cooldown_halts_exactly_cooldown_chunks_then_resumes_with_the_peak_reset(cooldown):
    pol = policy(resume="cooldown", cooldown_chunks=cooldown)
    state = _trip(pol)
    halted = 1  # the chunk after the trip decision
    while True:
        state, decision = risk.step_breaker(state, 64.0, 64.0, pol)  # still 50 % down: does not matter
        if not decision.halted:
            break
        assert decision.event == "" and not decision.flatten  # flatten only on the trip
        assert state.chunks_since_trip == halted
        halted += 1
        assert halted <= cooldown
    assert halted == cooldown
    assert decision.event == "resume" and not decision.flatten
    # re-armed from the current equity: the old 128 peak is forgotten, no immediate re-trip
    assert state == risk.BreakerState(tripped=False, chunks_since_trip=0, peak=64.0)
    state, decision = risk.step_breaker(state, 64.0, 48.0, pol)  # exactly 25 % below the new peak
    assert not decision.halted and decision.drawdown == 0.25
    state, decision = risk.step_breaker(state, 64.0, 47.9, pol)  # beyond it: trips again
    assert decision.event == "trip" and state.peak == 64.0


def test_never_stays_halted_even_above_the_old_peak():
    pol = policy(resume="never", cooldown_chunks=1, resume_drawdown=0.1)
    state = _trip(pol)
    for k in range(1, 50):
        state, decision = risk.step_breaker(state, 200.0, 200.0, pol)  # fully recovered, a new high
        assert decision.halted and decision.event == "" and not decision.flatten
        assert state.tripped and state.chunks_since_trip == k
    assert state.peak == 200.0


def test_recovery_resumes_once_drawdown_is_strictly_below_resume_drawdown():
    pol = policy(resume="recovery", resume_drawdown=0.125, cooldown_chunks=1)
    state = _trip(pol)
    for last in (64.0, 100.0, 112.0):  # 112 is exactly 12.5 % below 128: not below it yet
        state, decision = risk.step_breaker(state, last, last, pol)
        assert decision.halted and decision.event == ""
    assert 1 - 112.0 / 128.0 == 0.125 and decision.drawdown == 0.125
    assert state.chunks_since_trip == 3  # cooldown_chunks plays no part in recovery
    state, decision = risk.step_breaker(state, 113.0, 113.0, pol)
    assert not decision.halted and decision.event == "resume" and not decision.flatten
    assert state == risk.BreakerState(tripped=False, chunks_since_trip=0, peak=113.0)


def test_recovery_measures_from_a_peak_that_keeps_rising_while_halted():
    pol = policy(resume="recovery", resume_drawdown=0.125)
    state = _trip(pol)
    state, decision = risk.step_breaker(state, 256.0, 200.0, pol)  # a new peak inside the halted chunk
    assert state.peak == 256.0 and decision.drawdown == pytest.approx(1 - 200 / 256)
    assert decision.halted  # 21.9 % below 256, although 200 > 128


# --- exposure, multipliers, rebalancing ---------------------------------------------------------

def test_exposure_max_margin():
    assert risk.exposure_max_margin(1_000_000.0, None) == math.inf
    assert risk.exposure_max_margin(1_000_000.0, 0.35) == pytest.approx(350_000.0, rel=1e-15)
    assert risk.exposure_max_margin(1000.0, 1.0) == 1000.0
    assert risk.exposure_max_margin(0.0, 0.35) == 0.0
    assert risk.exposure_max_margin(-500.0, 0.35) == 0.0  # a negative portfolio allows no new margin


def test_combine_multipliers_is_the_per_asset_product():
    got = risk.combine_multipliers([1.0, 2.0, 0.5], 1.5, [1.0, 0.5, 1 / 3], [0.75, 0.75, 0.75])
    assert np.array_equal(got, np.array([1.0 * 1.5 * 1.0 * 0.75, 2.0 * 1.5 * 0.5 * 0.75, 0.5 * 1.5 * (1 / 3) * 0.75]))
    assert got.dtype == np.float64 and got.shape == (3,)
    assert np.array_equal(risk.combine_multipliers(np.ones(4), 1.0, np.ones(4), np.ones(4)), np.ones(4))
    assert np.array_equal(risk.combine_multipliers([3.0, 2.0], 1.0, [1.0, 1.0], [0.0, 0.0]), [0.0, 0.0])


@pytest.mark.parametrize("prev, nxt, daily, weekly, monthly", [
    ("2024-03-05 10:00", "2024-03-05 23:55", False, False, False),
    ("2024-03-05 23:55", "2024-03-06 00:00", True, False, False),  # midnight UTC
    ("2024-03-10 23:00", "2024-03-11 00:00", True, True, False),  # Sunday -> Monday
    ("2024-03-11 00:00", "2024-03-17 23:55", True, False, False),  # Monday -> Sunday, same ISO week
    ("2024-03-04 00:00", "2024-03-18 00:00", True, True, False),  # two weeks apart
    ("2024-03-31 12:00", "2024-04-01 00:00", True, True, True),  # Sunday 31st -> Monday 1st
    ("2024-04-30 12:00", "2024-05-01 00:00", True, False, True),  # Tuesday 30th -> Wednesday 1st
    ("2024-12-29 12:00", "2024-12-30 00:00", True, True, False),  # ISO week 52 of 2024 -> week 1 of 2025
    ("2024-12-31 00:00", "2025-01-01 00:00", True, False, True),  # both in ISO week 1 of 2025; new month/year
    ("2023-05-10 00:00", "2024-05-10 00:00", True, True, True),  # same month number, another year
])
def test_rebalance_due_at_utc_day_iso_week_and_month_boundaries(prev, nxt, daily, weekly, monthly):
    a, b = ns(prev), ns(nxt)
    assert risk.rebalance_due(a, b, "daily") is daily
    assert risk.rebalance_due(a, b, "weekly") is weekly
    assert risk.rebalance_due(a, b, "monthly") is monthly
    assert risk.rebalance_due(a, b, "none") is False


def test_rebalance_due_uses_utc_not_local_time():
    # 23:30 and 00:30 UTC are the same day in New York: still a new UTC day
    a = pd.Timestamp("2024-03-05 18:30", tz="America/New_York").value
    b = pd.Timestamp("2024-03-05 19:30", tz="America/New_York").value
    assert risk.rebalance_due(a, b, "daily")


def test_rebalance_due_rejects_an_unknown_frequency():
    with pytest.raises(ValueError, match="quarterly"):
        risk.rebalance_due(ns("2024-01-01"), ns("2024-04-01"), "quarterly")


def test_rebalance_adjustments_reach_the_targets_and_sum_to_zero():
    sleeves = np.array([0.1, 0.2, 0.3, 123456.789])
    target = np.array([0.1, 0.2, 0.3, 0.4])
    moves = risk.rebalance_adjustments(sleeves, target)
    assert moves.sum() == 0.0  # exactly: the residual goes to the largest move
    np.testing.assert_allclose(sleeves + moves, target * sleeves.sum(), rtol=1e-12)
    assert np.array_equal(risk.rebalance_adjustments(np.array([25.0, 75.0]), np.array([0.25, 0.75])), [0.0, 0.0])


@settings(max_examples=400, deadline=None)
@given(st.integers(-40 * 365 * 86_400 * 10**9, 130 * 365 * 86_400 * 10**9), st.integers(0, 40 * 86_400 * 10**9))
def test_rebalance_due_equals_the_calendar_of_pandas_timestamps(prev, step):
    """Integer day arithmetic agrees with pandas' UTC calendar: day, ISO week (years with 53 weeks, dates
    before 1970) and month."""
    a, b = pd.Timestamp(prev, tz="UTC"), pd.Timestamp(prev + step, tz="UTC")
    assert risk.rebalance_due(prev, prev + step, "daily") == (a.normalize() != b.normalize())
    assert risk.rebalance_due(prev, prev + step, "weekly") == (a.isocalendar()[:2] != b.isocalendar()[:2])
    assert risk.rebalance_due(prev, prev + step, "monthly") == ((a.year, a.month) != (b.year, b.month))
