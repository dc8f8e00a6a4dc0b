import math

import numpy as np
import pandas as pd
import pytest

from adaptlib.analysis.verdict import paired_difference, verdict


@pytest.mark.parametrize("effects,expected", [
    ({"beats zero-shot": True, "low text biases move most": True}, "reproduced"),
    ({"beats zero-shot": True, "low text biases move most": False}, "partly"),
    ([("beats zero-shot", False), ("first LayerNorm moves most", np.bool_(False))], "not reproduced"),
    ([("single claim", np.bool_(True))], "reproduced"),
])
def test_verdict(effects, expected):
    assert verdict(effects) == expected


@pytest.mark.parametrize("effects,error", [({}, ValueError), ({"claim": "yes"}, TypeError), ([("c", None)], TypeError)])
def test_verdict_rejects(effects, error):
    with pytest.raises(error):
        verdict(effects)


def test_paired_difference_known_values():
    r = paired_difference([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0])
    assert (r.n, r.wins, r.losses, r.ties) == (4, 4, 0, 0)
    assert r.mean == pytest.approx(2.5)
    assert r.se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert 1.0 <= r.ci_low < 2.5 < r.ci_high <= 4.0
    assert r.sign_test_p == pytest.approx(2 * 0.5**4)
    assert r.summary().startswith("+2.50 points (SE 0.65; 95% CI")


def test_constant_difference_and_ties():
    r = paired_difference(pd.Series([0.7, 0.8, 0.9]), np.array([0.6, 0.7, 0.8]) + 0.0)
    assert r.mean == pytest.approx(0.1) and r.se == pytest.approx(0.0, abs=1e-12)
    assert r.ci_low == pytest.approx(0.1) and r.ci_high == pytest.approx(0.1)
    t = paired_difference([1.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    assert (t.wins, t.losses, t.ties) == (1, 0, 2) and t.sign_test_p == pytest.approx(1.0)


def test_sign_test_ten_of_ten():
    r = paired_difference(np.arange(10) + 1.0, np.zeros(10))
    assert r.sign_test_p == pytest.approx(2 / 1024)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 33), rng.normal(0, 1, 33)
    r1, r2, r3 = (paired_difference(a, b, seed=s) for s in (0, 0, 1))
    assert (r1.ci_low, r1.ci_high) == (r2.ci_low, r2.ci_high)
    assert (r1.ci_low, r1.ci_high) != (r3.ci_low, r3.ci_high)
    # percentile bootstrap of a mean is close to mean +- 1.96 SE
    assert r1.ci_low == pytest.approx(r1.mean - 1.96 * r1.se, abs=0.5 * r1.se)
    assert r1.ci_high == pytest.approx(r1.mean + 1.96 * r1.se, abs=0.5 * r1.se)
    narrow = paired_difference(a, b, confidence=0.5)
    assert r1.ci_low < narrow.ci_low < narrow.ci_high < r1.ci_high


def test_groups_average_seeds_first():
    # task x: seeds differ by 1 and 3, task y: by 10 and 10 -> per-task differences 2 and 10
    r = paired_difference([1.0, 3.0, 10.0, 10.0], [0.0] * 4, groups=["x", "x", "y", "y"])
    assert r.n == 2 and r.mean == pytest.approx(6.0) and r.se == pytest.approx(4.0)


@pytest.mark.parametrize("a,b,kwargs,message", [
    ([1.0, 2.0], [1.0], {}, "paired"),
    ([1.0], [0.0], {}, "at least 2"),
    ([1.0, 2.0], [0.0, 0.0], {"groups": ["x", "x"]}, "at least 2"),
    ([1.0, 2.0], [0.0, 0.0], {"groups": ["x"]}, "one entry per item"),
    ([1.0, 2.0], [0.0, 0.0], {"confidence": 95}, "confidence"),
    ([1.0, math.nan], [0.0, 0.0], {}, "NaN"),
])
def test_paired_difference_errors(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_difference(a, b, **kwargs)
