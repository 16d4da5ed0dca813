"""Confidence intervals by resampling subjects, and paired tests between methods.

A subject's clips share a face, an age and often a smiling style, so their errors are
correlated: resampling videos as if they were independent gives intervals that are too
narrow. Every interval here comes from a cluster bootstrap: draw subjects with replacement,
keep all of a drawn subject's videos, recompute the metric over those videos, and take the
percentiles of the resampled values (the percentile interval). ``cluster="video"`` resamples
videos instead, for comparison only.

Each metric is computed from per-subject sums: videos, absolute and squared errors, the sums
behind Pearson's r, and the videos within each error threshold. A resample is then one
matrix product of resample counts with those sums, so thousands of resamples are cheap.

Paired tests compare two methods on the videos both predicted: per subject, the mean
absolute error of each method over those videos; then the Wilcoxon signed-rank test
on the per-subject differences (two-sided), with the matched-pairs rank-biserial correlation
as the effect size. Differences are "first method minus second", so negative favours the
first (the reports put SIAM first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

# Cells with fewer subjects than this are marked in every table: their intervals are wide
# and their tests have little power.
MIN_SUBJECTS = 10
# Error thresholds of the cumulative score CS(theta), in years.
CS_THRESHOLDS: tuple[int, ...] = tuple(range(16))


@dataclass(frozen=True)
class BootstrapSettings:
    """Settings of the bootstrap intervals.

    Attributes:
        num_resamples: Bootstrap resamples per interval.
        confidence: Coverage of the percentile interval, e.g. 0.95.
        seed: Seed of the resampling. The same seed and data give the same interval.
        cluster: ``"subject"`` (the default and the right unit here) or ``"video"``.
    """

    num_resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0
    cluster: str = "subject"

    def __post_init__(self) -> None:
        if self.num_resamples < 1:
            raise ValueError(f"num_resamples must be at least 1, got {self.num_resamples}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie between 0 and 1, got {self.confidence}")
        if self.cluster not in ("subject", "video"):
            raise ValueError(f"cluster must be 'subject' or 'video', got {self.cluster!r}")


def cluster_sums(
    table: pd.DataFrame, cluster: str = "subject", thresholds: Sequence[int] = CS_THRESHOLDS
) -> pd.DataFrame:
    """Return per-cluster sums from which MAE, RMSE, Pearson r and CS(theta) follow.

    Args:
        table: Predictions of one method (columns age, predicted_age and ``cluster``).
        cluster: ``"subject"`` or ``"video"``.
        thresholds: Error thresholds of the cumulative score, in years.

    Returns:
        One row per cluster: ``n`` (videos), ``abs`` and ``sq`` (sums of absolute and squared
        errors), ``x``, ``y``, ``xx``, ``yy``, ``xy`` (sums of true age x, predicted age y and
        their products), and ``cs_<theta>`` (videos with absolute error at most theta).
    """
    true = table["age"].to_numpy(dtype=np.float64)
    predicted = table["predicted_age"].to_numpy(dtype=np.float64)
    error = np.abs(predicted - true)
    columns = {
        "n": np.ones_like(true),
        "abs": error,
        "sq": error**2,
        "x": true,
        "y": predicted,
        "xx": true**2,
        "yy": predicted**2,
        "xy": true * predicted,
    }
    for theta in thresholds:
        columns[f"cs_{theta}"] = (error <= theta).astype(np.float64)
    frame = pd.DataFrame(columns, index=table.index)
    return frame.groupby(table[cluster].to_numpy(), sort=True).sum()


def metrics_from_sums(sums: np.ndarray, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Compute MAE, RMSE, Pearson r and CS(theta) from summed columns.

    Args:
        sums: (..., len(columns)) totals over a set of videos, e.g. one row per resample.
        columns: Names of the last axis, as :func:`cluster_sums` returns them.

    Returns:
        ``mae``, ``rmse``, ``pearson_r`` and ``cs_<theta>`` (a share in [0, 1]), each of
        shape ``sums.shape[:-1]``. Pearson r is NaN where either variable is constant.
    """
    column = {name: sums[..., index] for index, name in enumerate(columns)}
    n = column["n"]
    result = {"mae": column["abs"] / n, "rmse": np.sqrt(column["sq"] / n)}
    covariance = column["xy"] - column["x"] * column["y"] / n
    variance_x = column["xx"] - column["x"] ** 2 / n
    variance_y = column["yy"] - column["y"] ** 2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        denominator = np.sqrt(variance_x * variance_y)
        # Rounding can leave a tiny positive variance for a constant variable.
        scale = np.maximum(np.abs(column["xx"]), np.abs(column["yy"])) + 1.0
        constant = (variance_x <= 1e-12 * scale) | (variance_y <= 1e-12 * scale)
        result["pearson_r"] = np.where(constant, np.nan, covariance / denominator)
    for name in columns:
        if name.startswith("cs_"):
            result[name] = column[name] / n
    return result


def point_metrics(table: pd.DataFrame, thresholds: Sequence[int] = ()) -> dict[str, float]:
    """Return MAE, RMSE, Pearson r and CS(theta) of one method's predictions, no interval."""
    sums = cluster_sums(table, "video", thresholds)
    values = metrics_from_sums(sums.to_numpy().sum(axis=0), list(sums.columns))
    return {name: float(value) for name, value in values.items()}


def resample_counts(num_clusters: int, settings: BootstrapSettings) -> np.ndarray:
    """Return how often each cluster is drawn in each resample, (num_resamples, num_clusters).

    Each resample draws ``num_clusters`` clusters with replacement. The draws depend only on
    the seed and the number of clusters, so methods that predicted the same subjects are
    resampled identically and their intervals are comparable.
    """
    if num_clusters < 1:
        raise ValueError("cannot resample an empty table: no subject or video to draw")
    rng = np.random.default_rng(settings.seed)
    draws = rng.integers(0, num_clusters, size=(settings.num_resamples, num_clusters))
    # Count the draws of each resample in one bincount: resample b's clusters become b * K + k.
    offsets = np.arange(settings.num_resamples)[:, None] * num_clusters
    counts = np.bincount((draws + offsets).ravel(), minlength=settings.num_resamples * num_clusters)
    return counts.reshape(settings.num_resamples, num_clusters).astype(np.float64)


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_metrics(
    table: pd.DataFrame,
    settings: BootstrapSettings = BootstrapSettings(),
    thresholds: Sequence[int] = CS_THRESHOLDS,
) -> dict[str, tuple[float, float, float]]:
    """Return each metric of one method's predictions with its bootstrap interval.

    Args:
        table: Predictions of one method (age, predicted_age, subject, video).
        settings: Resamples, confidence, seed and cluster unit.
        thresholds: Error thresholds of the cumulative score, in years.

    Returns:
        ``{metric: (estimate, low, high)}`` for ``mae``, ``rmse``, ``pearson_r`` and
        ``cs_<theta>``; the estimate is computed on the table itself, not on the resamples.
    """
    sums = cluster_sums(table, settings.cluster, thresholds)
    columns = list(sums.columns)
    values = sums.to_numpy()
    estimate = metrics_from_sums(values.sum(axis=0), columns)
    resampled = metrics_from_sums(resample_counts(len(values), settings) @ values, columns)
    return {
        name: (float(estimate[name]), *_interval(resampled[name], settings.confidence))
        for name in estimate
    }


def rank_biserial(differences: np.ndarray) -> float:
    """Return the matched-pairs rank-biserial correlation of paired differences.

    Zero differences are dropped, the rest ranked by absolute value (ties share their mean
    rank), and r = (R+ - R-) / (R+ + R-), with R+ and R- the rank sums of the positive and
    negative differences. r lies in [-1, 1]; -1 when every difference is negative. NaN when
    every difference is zero.
    """
    differences = np.asarray(differences, dtype=np.float64)
    differences = differences[differences != 0]
    if differences.size == 0:
        return float("nan")
    ranks = stats.rankdata(np.abs(differences))
    positive = ranks[differences > 0].sum()
    negative = ranks[differences < 0].sum()
    return float((positive - negative) / (positive + negative))


def paired_comparison(
    first: pd.DataFrame,
    second: pd.DataFrame,
    settings: BootstrapSettings = BootstrapSettings(),
) -> dict[str, float]:
    """Compare two methods on the videos both predicted, by subject.

    Args:
        first, second: Predictions of one method each (video, subject, age,
            predicted_age).
        settings: Bootstrap settings for the interval of the MAE difference; its cluster
            is always the subject here.

    Returns:
        ``subjects`` and ``videos`` compared; ``difference`` (MAE of ``first`` minus MAE of
        ``second`` over the common videos, years; negative favours ``first``) with
        ``difference_low`` and ``difference_high`` from a paired subject bootstrap;
        ``p_value`` of the two-sided Wilcoxon signed-rank test on the per-subject
        differences of mean absolute error (see :func:`wilcoxon_p`; 1.0 when every
        difference is zero, NaN with no common subject); and
        ``effect_size``, the rank-biserial correlation of those differences.
    """
    common = first.merge(second, on=["video", "subject", "age"], suffixes=("", "_second"))
    if common.empty:
        nan = float("nan")
        return {"subjects": 0, "videos": 0, "difference": nan, "difference_low": nan,
                "difference_high": nan, "p_value": nan, "effect_size": nan}
    error = (common["predicted_age"] - common["age"]).abs()
    error_second = (common["predicted_age_second"] - common["age"]).abs()
    subjects = common["subject"].to_numpy()

    # Paired bootstrap: the same subjects drawn for both methods.
    sums = pd.DataFrame({"n": 1.0, "diff": error - error_second}).groupby(subjects, sort=True).sum()
    values = sums.to_numpy()
    paired = BootstrapSettings(settings.num_resamples, settings.confidence, settings.seed, "subject")
    resampled = resample_counts(len(values), paired) @ values
    low, high = _interval(resampled[:, 1] / resampled[:, 0], settings.confidence)

    per_subject = (error - error_second).groupby(subjects, sort=True).mean().to_numpy()
    if np.all(per_subject == 0):
        p_value = 1.0
    else:
        p_value = wilcoxon_p(per_subject)
    return {
        "subjects": int(len(values)),
        "videos": int(len(common)),
        "difference": float((error - error_second).mean()),
        "difference_low": low,
        "difference_high": high,
        "p_value": p_value,
        "effect_size": rank_biserial(per_subject),
    }


def wilcoxon_p(differences: np.ndarray) -> float:
    """Return the two-sided Wilcoxon signed-rank p-value of paired differences.

    Zero differences are dropped. Without ties and with at most 50 non-zero differences the
    exact null distribution is used. With ties and at most 13 of them, every one of the
    2^n sign flips is enumerated (SciPy's permutation method, exact while 2^n is below its
    9999 resamples). Otherwise the normal approximation with tie correction is used, as it
    is for large samples; it is too low in small samples with ties.
    """
    differences = np.asarray(differences, dtype=np.float64)
    nonzero = np.abs(differences[differences != 0])
    if np.unique(nonzero).size == nonzero.size:
        method = "exact" if nonzero.size <= 50 else "approx"
    elif nonzero.size <= 13:
        method = stats.PermutationMethod()
    else:
        method = "approx"
    result = stats.wilcoxon(differences, zero_method="wilcox", alternative="two-sided", method=method)
    return float(result.pvalue)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Return Holm-adjusted p-values (family-wise error control), NaN kept as NaN."""
    p_values = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p_values.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p_values))
    order = finite[np.argsort(p_values[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, (len(order) - rank) * p_values[index])
        adjusted[index] = min(1.0, running)
    return adjusted
