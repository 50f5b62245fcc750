"""The compounding-error fit: J(T) = c T^k from per-step costs, with a bootstrap interval."""

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from ilrl_ros.core.scoring import growth_exponent


def test_a_constant_cost_per_step_grows_linearly():
    # Every step costs 0.01: J(T) = 0.01 T exactly, in every episode.
    growth = growth_exponent(np.full((5, 700), 0.01))
    assert growth.exponent == pytest.approx(1.0, abs=1e-9)
    assert growth.scale == pytest.approx(0.01, rel=1e-9)
    assert growth.low == pytest.approx(1.0, abs=1e-9) and growth.high == pytest.approx(1.0)


def test_a_cost_growing_with_t_gives_a_quadratic_j():
    # Step t costs 2t - 1, so J(T) = sum_{t<=T} (2t - 1) = T^2: exponent 2, scale 1.
    t = np.arange(1, 401, dtype=np.float64)
    growth = growth_exponent(np.tile(2 * t - 1, (3, 1)), t_min=5)
    assert growth.exponent == pytest.approx(2.0, abs=1e-9)
    assert growth.scale == pytest.approx(1.0, rel=1e-9)


def test_the_interval_covers_the_truth_and_narrows_with_more_episodes():
    # Episodes with noisy per-step costs around 0.1 t^0.5 (J ~ T^1.5): the bootstrap
    # interval brackets 1.5, and 10x more episodes give a narrower interval.
    rng = np.random.default_rng(3)
    t = np.arange(1, 501, dtype=np.float64)

    def episodes(n):
        return 0.1 * np.sqrt(t) * rng.exponential(1.0, (n, 1)) * rng.uniform(0.5, 1.5, (n, 500))

    few, many = growth_exponent(episodes(20)), growth_exponent(episodes(200))
    for growth in (few, many):
        assert growth.low <= growth.exponent <= growth.high
        assert growth.low - 0.05 <= 1.5 <= growth.high + 0.05
    assert many.high - many.low < few.high - few.low


def test_horizons_are_spread_in_log_t():
    growth = growth_exponent(np.ones((2, 1000)), t_min=10, points=3)
    assert growth.horizons == (10, 100, 1000)


@pytest.mark.parametrize('costs, match', [
    (np.zeros((3, 50)), 'is 0 at T = 10'), (np.full((3, 50), np.nan), 'finite'),
    (np.full((3, 50), -1.0), 'not negative'), (np.ones(50), 'episodes, horizon'),
    (np.ones((3, 5)), 't_min')])
def test_costs_that_cannot_be_fitted_are_refused(costs, match):
    with pytest.raises(ValueError, match=match):
        growth_exponent(costs)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(11, 80), st.floats(0.0, 3.0), st.floats(1e-4, 10.0))
def test_power_law_costs_are_recovered_for_any_shape(episodes, horizon, k, c):
    # Costs whose running sum is exactly c T^k (k >= 0): the fit returns k and c.
    t = np.arange(1, horizon + 1, dtype=np.float64)
    per_step = np.diff(c * t ** k, prepend=0.0)   # J(0) = 0
    growth = growth_exponent(np.tile(per_step, (episodes, 1)), resamples=20)
    assert growth.exponent == pytest.approx(k, abs=1e-6)
    assert growth.scale == pytest.approx(c, rel=1e-6)
