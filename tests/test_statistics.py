"""Subject-bootstrap intervals and paired tests, on hand-made tables with known answers."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from siamlib.evaluation.statistics import (
    BootstrapSettings,
    bootstrap_metrics,
    cluster_sums,
    holm,
    metrics_from_sums,
    paired_comparison,
    point_metrics,
    rank_biserial,
    resample_counts,
    wilcoxon_p,
)


def table(errors_by_subject: dict[int, list[float]], age: int = 30, method: str = "A") -> pd.DataFrame:
    """One video per error; the video name encodes subject and position."""
    rows = []
    for subject, errors in errors_by_subject.items():
        for index, error in enumerate(errors):
            rows.append({"method": method, "video": f"s{subject}_v{index}", "subject": subject,
                         "age": age, "predicted_age": age + error})
    return pd.DataFrame(rows)


def test_point_metrics_known_values():
    frame = pd.DataFrame({"video": ["a", "b", "c"], "subject": [1, 2, 3], "age": [10, 20, 30],
                          "predicted_age": [12.0, 18.0, 30.0]})
    values = point_metrics(frame, thresholds=(0, 1, 2))
    assert values["mae"] == pytest.approx(4 / 3)
    assert values["rmse"] == pytest.approx(np.sqrt(8 / 3))
    assert values["cs_0"] == pytest.approx(1 / 3)
    assert values["cs_1"] == pytest.approx(1 / 3)
    assert values["cs_2"] == pytest.approx(1.0)
    assert values["pearson_r"] == pytest.approx(np.corrcoef([10, 20, 30], [12, 18, 30])[0, 1])


def test_metrics_from_sums_match_direct_computation():
    rng = np.random.default_rng(1)
    age = rng.integers(8, 77, 200)
    predicted = age + rng.normal(0, 6, 200)
    frame = pd.DataFrame({"video": range(200), "subject": rng.integers(0, 40, 200), "age": age,
                          "predicted_age": predicted})
    sums = cluster_sums(frame, "subject", thresholds=(3, 7))
    values = metrics_from_sums(sums.to_numpy().sum(axis=0), list(sums.columns))
    error = np.abs(predicted - age)
    assert values["mae"] == pytest.approx(error.mean())
    assert values["rmse"] == pytest.approx(np.sqrt((error**2).mean()))
    assert values["pearson_r"] == pytest.approx(np.corrcoef(age, predicted)[0, 1])
    assert values["cs_3"] == pytest.approx((error <= 3).mean())
    assert values["cs_7"] == pytest.approx((error <= 7).mean())


def test_pearson_r_of_constant_prediction_is_nan():
    frame = pd.DataFrame({"video": ["a", "b"], "subject": [1, 2], "age": [10, 30],
                          "predicted_age": [20.0, 20.0]})
    assert np.isnan(point_metrics(frame)["pearson_r"])


def test_bootstrap_of_two_subjects_has_known_distribution():
    # Subject 0's videos err by 1, subject 1's by 3. Drawing two subjects gives MAE 1 with
    # probability 1/4, 2 with 1/2 and 3 with 1/4: the 95% interval is [1, 3].
    frame = table({0: [1.0, 1.0], 1: [3.0, 3.0]})
    settings = BootstrapSettings(num_resamples=4000, seed=3)
    estimate, low, high = bootstrap_metrics(frame, settings)["mae"]
    assert (estimate, low, high) == (2.0, 1.0, 3.0)
    counts = resample_counts(2, settings)
    assert (counts.sum(axis=1) == 2).all()
    share_first_twice = np.mean(counts[:, 0] == 2)
    assert share_first_twice == pytest.approx(0.25, abs=0.03)


def test_bootstrap_matches_explicit_resampling():
    rng = np.random.default_rng(0)
    frame = table({subject: list(rng.normal(0, 5, rng.integers(1, 5))) for subject in range(15)})
    settings = BootstrapSettings(num_resamples=200, seed=7)
    counts = resample_counts(15, settings)
    subjects = sorted(frame["subject"].unique())
    explicit = []
    for row in counts:
        parts = [frame[frame["subject"] == subject] for subject, k in zip(subjects, row) for _ in range(int(k))]
        drawn = pd.concat(parts)
        explicit.append(np.mean(np.abs(drawn["predicted_age"] - drawn["age"])))
    low, high = np.quantile(explicit, [0.025, 0.975])
    _estimate, vector_low, vector_high = bootstrap_metrics(frame, settings)["mae"]
    assert (vector_low, vector_high) == pytest.approx((low, high))


def test_subject_intervals_wider_than_video_intervals_when_clips_correlate():
    rng = np.random.default_rng(2)
    # Each subject's 4 clips share most of their error: the clips are not independent.
    correlated = table({s: list(rng.normal(0, 8) + rng.normal(0, 0.5, 4)) for s in range(40)})
    widths = {}
    for cluster in ("subject", "video"):
        _estimate, low, high = bootstrap_metrics(correlated, BootstrapSettings(2000, cluster=cluster))["mae"]
        widths[cluster] = high - low
    assert widths["subject"] > 1.5 * widths["video"]

    # With independent clips the two units agree.
    independent = table({s: list(rng.normal(0, 8, 4)) for s in range(40)})
    for cluster in ("subject", "video"):
        _estimate, low, high = bootstrap_metrics(independent, BootstrapSettings(2000, cluster=cluster))["mae"]
        widths[cluster] = high - low
    assert widths["subject"] == pytest.approx(widths["video"], rel=0.3)


def test_bootstrap_is_seeded():
    frame = table({s: [float(s % 5), float(s % 3)] for s in range(12)})
    first = bootstrap_metrics(frame, BootstrapSettings(300, seed=1))["mae"]
    again = bootstrap_metrics(frame, BootstrapSettings(300, seed=1))["mae"]
    other = bootstrap_metrics(frame, BootstrapSettings(300, seed=2))["mae"]
    assert first == again
    assert first[1:] != other[1:]


def test_wilcoxon_exact_p_and_effect_when_first_always_better():
    # Per subject, the first method's error is smaller by 1..6 years: every difference is
    # negative, so the exact two-sided p is 2 / 2^6 and the rank-biserial r is -1.
    first = table({s: [1.0] for s in range(6)}, method="SIAM")
    second = table({s: [1.0 + s + 1] for s in range(6)}, method="B")
    result = paired_comparison(first, second, BootstrapSettings(500))
    assert result["subjects"] == 6
    assert result["videos"] == 6
    assert result["p_value"] == pytest.approx(2 / 64)
    assert result["effect_size"] == -1.0
    assert result["difference"] == pytest.approx(-3.5)
    assert result["difference_low"] < -3.5 < result["difference_high"] < 0


def test_paired_comparison_averages_each_subject_once():
    # Subject 0 has three videos and subject 1 one; per subject the differences are -1 and +1,
    # so the test gets two differences of equal size and opposite sign.
    first = table({0: [0.0, 0.0, 0.0], 1: [2.0]}, method="SIAM")
    second = table({0: [1.0, 1.0, 1.0], 1: [1.0]}, method="B")
    result = paired_comparison(first, second)
    assert result["effect_size"] == 0.0
    assert result["p_value"] == pytest.approx(1.0)
    assert result["difference"] == pytest.approx(-0.5)  # over videos: (-3 + 1) / 4


def test_paired_comparison_identical_and_disjoint():
    same = table({s: [float(s)] for s in range(5)})
    result = paired_comparison(same, same.assign(method="B"))
    assert result["p_value"] == 1.0
    assert np.isnan(result["effect_size"])
    assert result["difference"] == 0.0
    disjoint = table({s: [1.0] for s in range(10, 13)}, method="B")
    result = paired_comparison(same, disjoint)
    assert result["subjects"] == 0
    assert np.isnan(result["p_value"])


def test_rank_biserial_known_values():
    assert rank_biserial([1.0, -2.0, 3.0]) == pytest.approx((4 - 2) / 6)
    assert rank_biserial([0.0, 1.0, -1.0]) == 0.0  # the zero is dropped, the tie shares rank 1.5
    assert np.isnan(rank_biserial([0.0, 0.0]))


def test_holm_known_values():
    adjusted = holm([0.01, 0.04, 0.03, float("nan")])
    np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[3])
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("kwargs", [{"num_resamples": 0}, {"confidence": 1.0}, {"cluster": "fold"}])
def test_bootstrap_settings_are_checked(kwargs):
    with pytest.raises(ValueError):
        BootstrapSettings(**kwargs)


def test_wilcoxon_p_small_tied_sample_is_exact():
    # Four tied differences of one sign: no exact test can go below 2 / 2^4; the normal
    # approximation (about 0.046) would call it significant.
    assert wilcoxon_p(np.full(4, -2.0)) == pytest.approx(0.125)
    # Without ties: the exact distribution.
    assert wilcoxon_p(-np.arange(1.0, 7.0)) == pytest.approx(2 / 64)
    # Large tied samples: the normal approximation with tie correction, z = (n(n + 1) / 4) / sqrt(V).
    n = 40
    variance = n * (n + 1) * (2 * n + 1) / 24 - (n**3 - n) / 48
    expected = 2 * stats.norm.sf((n * (n + 1) / 4) / np.sqrt(variance))
    assert wilcoxon_p(np.full(n, 1.5)) == pytest.approx(expected)
