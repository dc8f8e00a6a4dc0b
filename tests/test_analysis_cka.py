import math

import numpy as np
import pytest
import torch

from adaptlib.analysis.cka import layerwise_cka, linear_cka, representation_drift

RNG = np.random.default_rng(0)
WIDE = RNG.normal(size=(20, 50))  # N < D: the Gram-matrix path
TALL = RNG.normal(size=(200, 8))  # N > D: the feature-covariance path


def orthogonal(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


@pytest.mark.parametrize("x", [WIDE, TALL], ids=["wide", "tall"])
def test_identity_orthogonal_scale_translation_invariance(x):
    assert linear_cka(x, x) == pytest.approx(1.0)
    y = 3.7 * x @ orthogonal(x.shape[1], 1) + 5.0  # rotation, isotropic scaling, shift
    assert linear_cka(x, y) == pytest.approx(1.0)
    assert linear_cka(torch.tensor(x, dtype=torch.float32), torch.tensor(y)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("x", [WIDE, TALL], ids=["wide", "tall"])
def test_not_invariant_to_anisotropic_scaling_and_symmetric(x):
    y = x * np.linspace(0.1, 10, x.shape[1])
    assert linear_cka(x, y) < 0.99
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x))


@pytest.mark.parametrize("pad", [0, 10], ids=["features", "gram"])
def test_known_value_one_over_sqrt_two(pad):
    # X = a, Y = [a, b] with a, b centred, orthogonal and of equal norm: CKA = ||a||^4 / (||a||^2 sqrt(2) ||a||^2)
    a = np.array([1.0, -1.0, 1.0, -1.0])
    b = np.array([1.0, 1.0, -1.0, -1.0])
    x = np.column_stack([a, np.zeros((4, pad))]) if pad else a[:, None]
    y = np.column_stack([a, b, np.zeros((4, pad))])
    assert linear_cka(x, y) == pytest.approx(1 / math.sqrt(2))


def test_independent_random_matrices_are_dissimilar():
    x, y = RNG.normal(size=(500, 10)), RNG.normal(size=(500, 12))
    assert linear_cka(x, y) < 0.1


def test_constant_side_is_nan_and_errors():
    assert math.isnan(linear_cka(np.ones((5, 3)), RNG.normal(size=(5, 3))))
    with pytest.raises(ValueError, match="same inputs"):
        linear_cka(np.ones((5, 3)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        linear_cka(np.ones((1, 3)), np.ones((1, 3)))
    with pytest.raises(ValueError, match="2-D"):
        linear_cka(np.ones(5), np.ones(5))


def test_layerwise_cka():
    acts = [TALL, TALL * 2, RNG.normal(size=(200, 8))]
    out = layerwise_cka([TALL, TALL, TALL], acts)
    assert out[:2] == pytest.approx([1.0, 1.0]) and out[2] < 0.2
    with pytest.raises(ValueError, match="numbers of layers"):
        layerwise_cka([TALL], [TALL, TALL])


@pytest.mark.parametrize("adapted,expected", [
    (lambda f: 2 * f, 0.0),  # scale does not move a direction
    (lambda f: -f, 2.0),
    (lambda f: np.column_stack([-f[:, 1], f[:, 0]]), 1.0),  # every row rotated by 90 degrees
])
def test_representation_drift(adapted, expected):
    frozen = RNG.normal(size=(30, 2))
    assert representation_drift(frozen, adapted(frozen)) == pytest.approx(expected, abs=1e-12)


def test_representation_drift_shape_error():
    with pytest.raises(ValueError, match="differ in shape"):
        representation_drift(np.ones((3, 2)), np.ones((4, 2)))
