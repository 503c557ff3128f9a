"""The statistics behind the verdicts: numpy arrays in, numbers out (no pandas, no MLflow).

Every comparison reduces to one number per seed — a paired difference (mixed − single-task in one seed), a
difference of two such gains, or a per-seed curve feature (slope, curvature) — and the effect is the mean of
those numbers over seeds.

Its interval is the percentile bootstrap over seeds (`scipy.stats.bootstrap`) widened, where it is wider, to
Student's t interval of the mean. Why both: with few seeds the percentile bootstrap undercovers badly — when
all n values share a sign, every resampled mean does too, so it excludes 0 at any level, a false-positive rate
of 2 / 2**n under no effect (25 % with 3 seeds); the t interval is exact for normal noise and wide at small n,
and the bootstrap guards against skew at larger n. The matching p-value is the larger of the bootstrap's and
the t test's, so "the interval at level 1 − a excludes 0" and "p < a" are the same statement and Holm's
step-down levels apply to intervals directly (`holm_levels`). The exact sign-flip permutation p is reported
beside it: it cannot go below 2 / 2**n (0.0625 with 5 seeds), so it is shown, not used to decide — except
when every seed gives the same number (zero spread): then the bootstrap and t intervals collapse to a point and
their p to 0, which is no evidence, so the estimate has no interval and its p is the exact sign-flip p.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
N_RESAMPLES = 9999
RNG_SEED = 0  # fixed: the same store gives the same report


@dataclass(frozen=True)
class Estimate:
    """Mean of per-seed values and what its interval needs (no interval with fewer than 2 seeds)."""

    effect: float
    n: int
    sem: float  # standard error of the mean (sd with ddof=1 over sqrt n); nan for n < 2
    p: float  # two-sided p of "mean = 0" matching `interval`: max(p_boot, p_t); nan for n < 2
    p_boot: float
    p_t: float
    p_sign_flip: float  # exact two-sided sign-flip permutation p; nan without values
    distribution: np.ndarray | None  # bootstrap means
    zero_spread: bool = False  # n >= 2 identical values: no interval, p = p_sign_flip

    def interval(self, level: float) -> tuple[float, float]:
        """Envelope of the percentile-bootstrap and Student-t intervals at `level`; (nan, nan) for one seed or
        zero spread (a zero-width interval would claim certainty that identical seeds cannot give)."""
        if self.distribution is None or self.zero_spread:
            return float("nan"), float("nan")
        boot, t = percentile_interval(self.distribution, level), t_interval(self.effect, self.sem, self.n, level)
        return min(boot[0], t[0]), max(boot[1], t[1])


def estimate(values, n_resamples: int = N_RESAMPLES, seed: int = RNG_SEED) -> Estimate:
    """Mean of `values` (one per seed, NaNs dropped), its bootstrap distribution, standard error and p-values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    nan = float("nan")
    if x.size < 2:
        return Estimate(float(x.mean()) if x.size else nan, int(x.size), nan, nan, nan, nan,
                        sign_flip_p(x), None)
    if np.all(x == x[0]):
        p = sign_flip_p(x)
        return Estimate(float(x[0]), int(x.size), 0.0, p, nan, nan, p, None, zero_spread=True)
    res = sps.bootstrap((x,), np.mean, n_resamples=n_resamples, method="percentile", vectorized=True,
                        rng=np.random.default_rng(seed))
    dist = np.asarray(res.bootstrap_distribution)
    mean, sem = float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))
    p_boot, p_t = bootstrap_p(dist), t_p(mean, sem, x.size)
    return Estimate(mean, int(x.size), sem, max(p_boot, p_t), p_boot, p_t, sign_flip_p(x), dist)


def t_p(mean: float, sem: float, n: int) -> float:
    """Two-sided one-sample t-test p of "mean = 0" (scipy's ttest_1samp, without its zero-variance warning)."""
    if sem == 0:
        return 0.0 if mean != 0 else 1.0
    return float(2 * sps.t.sf(abs(mean) / sem, n - 1))


def bootstrap_ci(values, level: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = RNG_SEED):
    """Percentile bootstrap interval of the mean of `values` alone (scipy.stats.bootstrap)."""
    x = np.asarray(values, dtype=float)
    res = sps.bootstrap((x[np.isfinite(x)],), np.mean, n_resamples=n_resamples, method="percentile",
                        vectorized=True, confidence_level=level, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def percentile_interval(distribution, level: float) -> tuple[float, float]:
    """The central `level` of a bootstrap distribution (what scipy's percentile method returns)."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(distribution, [tail, 100 - tail])
    return float(lo), float(hi)


def t_interval(mean: float, sem: float, n: int, level: float) -> tuple[float, float]:
    """Student's t interval of a mean: mean ± t(1 − (1 − level)/2, n − 1) · sem."""
    half = float(sps.t.ppf(1 - (1 - level) / 2, n - 1) * sem)
    return mean - half, mean + half


def bootstrap_p(distribution) -> float:
    """Two-sided p of "the mean is 0": twice the smaller tail of the bootstrap distribution at 0.

    It is the smallest a for which the percentile interval at level 1 − a still reaches 0 (+1 smoothing so that
    a distribution lying wholly on one side gives 1/(B+1), not 0)."""
    d = np.asarray(distribution, dtype=float)
    below, above = np.sum(d <= 0), np.sum(d >= 0)
    return float(min(1.0, 2 * (min(below, above) + 1) / (d.size + 1)))


def sign_flip_p(values, max_exact: int = 16, n_random: int = 10_000, seed: int = RNG_SEED) -> float:
    """Two-sided permutation p of the mean of paired differences under random sign flips.

    Exact (all 2**n sign patterns) for n ≤ max_exact, else Monte Carlo. Values of 0 carry no sign."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    observed = abs(x.mean())
    if x.size <= max_exact:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=x.size)))  # [2**n, n]
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(n_random, x.size))
    means = np.abs(signs @ x) / x.size
    return float(np.mean(means >= observed - 1e-12))


def holm_adjusted(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (monotone, capped at 1); NaNs stay NaN and do not count in m."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    running = 0.0
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def holm_levels(pvalues, alpha: float = ALPHA) -> np.ndarray:
    """Confidence level of each comparison's interval under Holm's step-down procedure.

    Ranked by p, the j-th of m (from 0) is tested at a = alpha / (m − j); once one fails, the rest keep that
    failing a. With percentile intervals, "interval at 1 − a excludes 0" ⇔ Holm rejects that comparison."""
    p = np.asarray(pvalues, dtype=float)
    levels = np.full(p.shape, 1 - alpha)
    ok = np.flatnonzero(np.isfinite(p))
    m, stopped_at = ok.size, None
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="stable")]):
        a = stopped_at if stopped_at is not None else alpha / (m - rank)
        levels[i] = 1 - a
        if stopped_at is None and p[i] >= a:
            stopped_at = a
    return levels


def diff_in_diff(gain_a, gain_b) -> np.ndarray:
    """Per-seed difference of two paired gains (e.g. aligned gain − misaligned gain); both indexed by seed."""
    a, b = np.asarray(gain_a, dtype=float), np.asarray(gain_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"gains must be aligned by seed: shapes {a.shape} and {b.shape}")
    return a - b


# ---------------------------------------------------------------- curves over seeds


def per_seed_polyfit(x, y, degree: int) -> np.ndarray:
    """Least-squares polynomial coefficients (highest power first) of each seed's curve.

    `x` [k] positions, `y` [n_seeds, k] values (NaN where a seed lacks a point). Seeds with fewer than
    degree + 1 finite points get NaN coefficients. Returns [n_seeds, degree + 1]."""
    x, y = np.asarray(x, dtype=float), np.atleast_2d(np.asarray(y, dtype=float))
    out = np.full((y.shape[0], degree + 1), np.nan)
    for s, row in enumerate(y):
        ok = np.isfinite(row)
        if np.unique(x[ok]).size > degree:
            out[s] = np.polyfit(x[ok], row[ok], degree)
    return out


def slope_by_seed(x, y) -> np.ndarray:
    """Per-seed least-squares slope of y on x: the "gain vs data / strength / size" numbers a verdict averages."""
    return per_seed_polyfit(x, y, 1)[:, 0]


def line_band(x, y, grid, level: float = 0.95, n_resamples: int = 2000, seed: int = RNG_SEED) -> dict:
    """Mean curve of per-seed line fits over `grid`, with a pointwise bootstrap band (seeds resampled)."""
    return _fit_band(per_seed_polyfit(x, y, 1), grid, level, n_resamples, seed)


def quadratic_fit(x, y, grid, level: float = 0.95, n_resamples: int = 2000, seed: int = RNG_SEED) -> dict:
    """Per-seed quadratics y = c x² + b x + a: mean curve, band, curvature per seed and the optimum with its interval.

    The optimum (−b / 2c of the mean coefficients) is an interior maximum only when c < 0; its interval comes
    from refitting on resampled seeds, so it is wide when the peak is flat."""
    coefs = per_seed_polyfit(x, y, 2)
    out = _fit_band(coefs, grid, level, n_resamples, seed)
    coefs = coefs[np.all(np.isfinite(coefs), axis=1)]
    out["curvature_by_seed"] = coefs[:, 0]
    out["optimum"], out["optimum_ci"] = float("nan"), (float("nan"), float("nan"))
    if coefs.size:
        mean = coefs.mean(axis=0)
        out["optimum"] = _vertex(mean)
        if len(coefs) > 1:
            rng = np.random.default_rng(seed)
            idx = rng.integers(0, len(coefs), size=(n_resamples, len(coefs)))
            vertices = np.array([_vertex(c) for c in coefs[idx].mean(axis=1)])
            vertices = vertices[np.isfinite(vertices)]
            if vertices.size:
                tail = (1 - level) / 2 * 100
                out["optimum_ci"] = tuple(float(v) for v in np.percentile(vertices, [tail, 100 - tail]))
    return out


def _vertex(coef) -> float:
    c, b = coef[0], coef[1]
    return float(-b / (2 * c)) if c != 0 else float("nan")


def _fit_band(coefs, grid, level, n_resamples, seed) -> dict:
    coefs = coefs[np.all(np.isfinite(coefs), axis=1)]
    grid = np.asarray(grid, dtype=float)
    if coefs.size == 0:
        nan = np.full(grid.shape, np.nan)
        return {"grid": grid, "mean": nan, "low": nan, "high": nan, "n": 0}
    curves = np.array([np.polyval(c, grid) for c in coefs])  # [n_seeds, len(grid)]
    mean = curves.mean(axis=0)
    if len(curves) < 2:
        return {"grid": grid, "mean": mean, "low": np.full(grid.shape, np.nan), "high": np.full(grid.shape, np.nan),
                "n": len(curves)}
    idx = np.random.default_rng(seed).integers(0, len(curves), size=(n_resamples, len(curves)))
    boot = curves[idx].mean(axis=1)  # [n_resamples, len(grid)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail], axis=0)
    return {"grid": grid, "mean": mean, "low": low, "high": high, "n": len(curves)}


def pareto_front(points) -> np.ndarray:
    """Indices of the non-dominated points (both coordinates maximised), sorted by the first coordinate."""
    p = np.asarray(points, dtype=float)
    keep = [i for i in range(len(p))
            if not np.any(np.all(p >= p[i], axis=1) & np.any(p > p[i], axis=1))]
    return np.array(sorted(keep, key=lambda i: p[i, 0]), dtype=int)
