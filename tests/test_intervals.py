"""Gates that respect their sample size: exact counts, exact 95 % intervals, three-way verdicts."""
import numpy as np
import pytest

from mobilenet_edge.pipeline.validate import intervals
from mobilenet_edge.pipeline.validate.intervals import PairedCounts, UNDECIDED, check_agreement, check_drop
from mobilenet_edge.pipeline.validate import check_gate
from mobilenet_edge.pipeline.config import Gates


def test_one_point_drop_is_exactly_one_point():
    """0.81 - 0.80 is 1.0000000000000009 points in floating point; on counts it is 1 and passes "<= 1.0"."""
    assert 100 * (0.81 - 0.80) > 1.0  # the bug this guards against
    counts = PairedCounts(n=200, agree=196, float_only=3, artifact_only=1)  # 162/200 vs 160/200
    gate = check_drop(counts, 1.0)
    assert gate["value"] == 1.0 and gate["passed"]


def test_clopper_pearson_known_values():
    # Reference values (exact binomial): 0/10 -> [0, 0.3085]; 5/10 -> [0.1871, 0.8129]; 95/100 -> [0.8872, 0.9836]
    assert intervals.proportion_interval(0, 10) == pytest.approx((0.0, 0.30850), abs=1e-4)
    assert intervals.proportion_interval(5, 10) == pytest.approx((0.18709, 0.81291), abs=1e-4)
    assert intervals.proportion_interval(95, 100) == pytest.approx((0.88716, 0.98357), abs=1e-4)


def test_small_samples_are_undecided_large_ones_decide():
    small = check_drop(PairedCounts(200, 196, 3, 1), 1.0)  # one image = 0.5 pt
    assert small["verdict"] == UNDECIDED and small["interval"][0] < 1.0 < small["interval"][1]
    large = check_drop(PairedCounts(10_000, 9_960, 25, 15), 1.0)  # 0.1 pt on 10,000 images
    assert large["verdict"] == "pass" and large["interval"][1] < 1.0
    bad = check_drop(PairedCounts(10_000, 9_500, 400, 100), 1.0)  # 3 pt
    assert bad["verdict"] == "fail" and not bad["passed"]
    assert intervals.drop_interval_points(PairedCounts(100, 100, 0, 0)) == (0.0, 0.0)


def test_a_lucky_gain_fails_on_agreement():
    """97 images, int8 seven points *above* float but agreeing on 83.5 %: the int8 gate must fail."""
    counts = PairedCounts(n=97, agree=81, float_only=4, artifact_only=11)
    gate = check_gate(Gates(), "int8", {}, labelled=True, counts=counts)
    drop, agreement = gate["checks"]
    assert drop["passed"] and drop["value"] < 0
    assert not agreement["passed"] and agreement["verdict"] == "fail"
    assert not gate["passed"] and gate["verdict"] == "fail"
    # dynamic-range files keep the drop rule alone
    assert len(check_gate(Gates(), "dynamic", {}, labelled=True, counts=counts)["checks"]) == 1


def test_paired_counts_from_probabilities():
    ref = np.eye(3)[[0, 1, 2, 0]]
    art = np.eye(3)[[0, 2, 2, 1]]
    c = intervals.paired_counts(ref, art, np.array([0, 1, 1, 1]))
    assert (c.n, c.agree, c.float_only, c.artifact_only) == (4, 2, 1, 1)
    assert intervals.paired_counts(ref, art, None).to_dict() == {"n": 4, "agree": 2}
