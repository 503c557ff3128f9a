"""analysis/stats.py against hand-computed values, and its false-positive rate under no effect."""

import math

import numpy as np
import pytest

from analysis import stats


def test_percentile_bootstrap_of_two_values_is_their_range():
    # The mean of a resample of [0, 1] is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4: its 2.5 % and 97.5 %
    # quantiles are 0 and 1, whatever the resamples drawn.
    assert stats.bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)
    assert stats.bootstrap_p(stats.estimate([0.0, 1.0]).distribution) == pytest.approx(0.5, abs=0.03)


def test_interval_is_student_t_where_wider_than_the_bootstrap():
    # [1, 2, 3]: mean 2, sd 1, sem 1/sqrt(3); t(0.975, 2) = 4.3027 (tables) -> 2 ± 2.4841.
    est = stats.estimate([1.0, 2.0, 3.0])
    assert (est.effect, est.n) == (2.0, 3)
    assert est.interval(0.95) == pytest.approx((2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)), abs=1e-3)
    assert stats.bootstrap_ci([1.0, 2.0, 3.0]) == (1.0, 3.0)  # the bootstrap alone: narrower
    assert est.p == pytest.approx(0.0742, abs=1e-3)  # t = 2 / (1/sqrt 3) = 3.46 on 2 df
    # many seeds, skewed values: the bootstrap side of the envelope can be the wider one
    skewed = np.r_[np.zeros(30), 5.0]
    lo, hi = stats.estimate(skewed).interval(0.95)
    assert hi >= stats.bootstrap_ci(skewed)[1] and lo <= stats.t_interval(5 / 31, skewed.std(ddof=1) / 31**0.5,
                                                                          31, 0.95)[0] + 1e-12


def test_one_seed_has_no_interval():
    est = stats.estimate([0.3])
    assert est.effect == 0.3 and est.n == 1
    assert all(math.isnan(v) for v in (*est.interval(0.95), est.p))


def test_sign_flip_p_is_exact():
    # [0.1, 0.2, 0.3]: of the 8 sign patterns, only all-plus and all-minus reach |mean| = 0.2.
    assert stats.sign_flip_p([0.1, 0.2, 0.3]) == 0.25
    assert stats.sign_flip_p([0.1, -0.1]) == 1.0
    assert stats.sign_flip_p([1.0] * 5) == 2 / 32


def test_holm_adjusted_p_values_and_levels_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(0.06, 1 x 0.04) = 0.06
    assert stats.holm_adjusted([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # 0.01 < 0.05/3: rejected at level 1 - 0.05/3; 0.03 >= 0.05/2: stop; the rest keep a = 0.025
    assert stats.holm_levels([0.01, 0.04, 0.03]) == pytest.approx([1 - 0.05 / 3, 0.975, 0.975])
    assert stats.holm_levels([0.001, 0.001]) == pytest.approx([0.975, 0.95])  # step 2 of 2: alpha / 1
    assert stats.holm_levels([np.nan, 0.01]) == pytest.approx([0.95, 0.95])  # NaN: not in the family


def test_difference_in_differences_is_per_seed():
    assert stats.diff_in_diff([0.3, 0.2], [0.1, 0.15]) == pytest.approx([0.2, 0.05])
    with pytest.raises(ValueError, match="aligned by seed"):
        stats.diff_in_diff([1.0, 2.0], [1.0])


def test_curve_fits_recover_slopes_and_the_optimum():
    x = np.array([0.0, 0.5, 1.0])
    y = np.array([2 * x + s for s in range(3)])  # slope 2 in every seed, different intercepts
    assert stats.slope_by_seed(x, y) == pytest.approx([2.0, 2.0, 2.0])
    band = stats.line_band(x, y, [0.0, 1.0])
    assert band["mean"] == pytest.approx([1.0, 3.0])  # intercepts 0, 1, 2 average to 1
    assert band["low"][0] <= 1.0 <= band["high"][0]

    grid = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    y = np.array([-((grid - 1) ** 2) + s for s in range(4)])  # peak at 1 in every seed
    fit = stats.quadratic_fit(grid, y, grid)
    assert fit["optimum"] == pytest.approx(1.0) and fit["optimum_ci"] == pytest.approx((1.0, 1.0))
    assert fit["curvature_by_seed"] == pytest.approx([-1.0] * 4)
    assert np.isnan(stats.per_seed_polyfit(grid[:2], y[:, :2], 2)).all()  # too few points for a quadratic


def test_pareto_front_keeps_the_non_dominated_points():
    points = [[0.5, 0.5], [1.0, 0.0], [0.0, 1.0], [0.4, 0.4], [0.5, 0.2]]
    assert list(stats.pareto_front(points)) == [2, 0, 1]


def test_false_positive_rate_under_no_effect_stays_near_alpha_with_three_seeds():
    # The percentile bootstrap alone excludes 0 whenever all three values share a sign (rate 2/8 = 25 %);
    # the envelope with Student's t keeps the rate near 5 %.
    rng = np.random.default_rng(7)
    trials = [stats.estimate(rng.normal(0, 1, 3), n_resamples=999) for _ in range(400)]
    rejected = np.mean([not (lo <= 0 <= hi) for lo, hi in (e.interval(0.95) for e in trials)])
    bootstrap_only = np.mean([not (lo <= 0 <= hi) for lo, hi in
                              (stats.percentile_interval(e.distribution, 0.95) for e in trials)])
    assert rejected < 0.09 and bootstrap_only > 0.18


def test_zero_spread_has_no_interval_and_the_exact_sign_flip_p():
    e = stats.estimate([0.1] * 5)
    assert e.zero_spread and e.effect == pytest.approx(0.1)
    assert np.isnan(e.interval(0.95)).all()  # never a zero-width interval
    assert e.p == pytest.approx(2 / 2**5) and e.p == e.p_sign_flip  # the smallest p 5 seeds can give, not 0
    assert stats.estimate([0.0] * 5).p == 1.0
    spread = stats.estimate([0.1, 0.1, 0.1, 0.1, 0.11])
    assert not spread.zero_spread and spread.interval(0.95)[0] < 0.1 < spread.interval(0.95)[1]
