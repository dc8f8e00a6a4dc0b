import math

import numpy as np
import pytest
import torch

from adaptlib.analysis.class_structure import class_structure, cosine_silhouette, text_class_structure

SCALARS = ("inter_class_similarity", "intra_class_similarity", "intra_inter_ratio", "spread", "fisher_ratio",
           "silhouette")


def orthogonal_clusters(theta: float, per_class: int = 2):
    """3 classes in R^6; class c: cos(theta) e_c +- sin(theta) e_{3+c}. Centroids e_c are orthogonal."""
    eye = np.eye(6)
    feats, labels = [], []
    for c in range(3):
        for k in range(per_class):
            sign = 1 if k % 2 == 0 else -1
            feats.append(math.cos(theta) * eye[c] + sign * math.sin(theta) * eye[3 + c])
            labels.append(c)
    return np.array(feats), np.array(labels)


@pytest.mark.parametrize("theta", [0.1, 0.5, 1.0])
def test_orthogonal_centroids_known_values(theta):
    z, y = orthogonal_clusters(theta)
    out = class_structure(z, y)
    c2, s2 = math.cos(theta) ** 2, math.sin(theta) ** 2
    assert out["n"] == 6 and out["classes"] == 3
    assert out["inter_class_similarity"] == pytest.approx(0.0, abs=1e-12)
    assert out["intra_class_similarity"] == pytest.approx(math.cos(theta))
    assert math.isnan(out["intra_inter_ratio"])  # undefined for inter <= 0
    assert out["spread"] == pytest.approx(s2)
    # tr(S_B) = 6 cos^2 * ||e_c - mean||^2 = 4 cos^2, tr(S_W) = 6 sin^2
    assert out["fisher_ratio"] == pytest.approx(4 * c2 / (6 * s2))


def test_tight_separated_clusters_have_silhouette_near_one():
    z, y = orthogonal_clusters(0.05, per_class=4)
    assert class_structure(z, y)["silhouette"] > 0.95


@pytest.mark.parametrize("phi", [0.3, 0.8, 1.2])
def test_identical_points_per_class(phi):
    a, b = np.array([1.0, 0.0, 0.0]), np.array([math.cos(phi), math.sin(phi), 0.0])
    out = class_structure(np.stack([a, a, a, b, b]), [0, 0, 0, 1, 1])
    assert out["spread"] == pytest.approx(0.0, abs=1e-12)
    assert out["intra_class_similarity"] == pytest.approx(1.0)
    assert out["inter_class_similarity"] == pytest.approx(math.cos(phi))
    assert out["intra_inter_ratio"] == pytest.approx(1 / math.cos(phi))
    assert out["fisher_ratio"] == math.inf


def test_features_are_normalised_and_labels_may_be_any_ids():
    rng = np.random.default_rng(0)
    # a shared direction (e_7) gives positive inter-class cosine, as CLIP features have
    z = rng.normal(size=(60, 8)) + 2 * np.repeat(np.eye(8)[:3], 20, axis=0) + 3 * np.eye(8)[7]
    y = np.repeat([0, 1, 2], 20)
    ref = class_structure(z / np.linalg.norm(z, axis=1, keepdims=True), y)
    scaled = class_structure(z * rng.uniform(0.5, 3.0, size=(60, 1)), y)  # row norms do not matter
    perm = rng.permutation(60)
    names = np.array(["dog", "cat", "ant"])
    relabelled = class_structure(torch.tensor(z[perm]), names[y[perm]])  # permuted rows, string labels
    for out in (scaled, relabelled):
        for key in SCALARS:
            assert out[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12), key
    assert 0 < ref["inter_class_similarity"] < ref["intra_class_similarity"]
    assert ref["intra_inter_ratio"] > 1  # clusters were built to be separable


def test_silhouette_subsample_is_seeded_and_stratified():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 6)) + 3 * np.repeat(np.eye(6)[:3], 100, axis=0)
    y = np.repeat([0, 1, 2], 100)
    full = cosine_silhouette(z, y)
    sub = [cosine_silhouette(z, y, max_items=60, seed=s) for s in (7, 7, 8)]
    assert sub[0] == sub[1]
    assert sub[0] != sub[2]
    assert sub[0] == pytest.approx(full, abs=0.1)
    assert class_structure(z, y, silhouette_max=60, seed=7)["silhouette"] == sub[0]


def test_silhouette_undefined_with_one_item_per_class():
    assert math.isnan(cosine_silhouette(np.eye(3), [0, 1, 2]))


@pytest.mark.parametrize("features,labels,message", [
    (np.eye(3), [0, 0, 0], "at least 2 classes"),
    (np.eye(3), [0, 1], "3 rows but labels has 2"),
    (np.ones(3), [0, 1, 2], "2-D"),
    (np.array([[1.0, 0], [0, 0]]), [0, 1], "all-zero"),
    (np.array([[1.0, math.nan], [0, 1]]), [0, 1], "NaN"),
    (np.array([[1.0, 0], [-1.0, 0], [0, 1]]), [0, 0, 1], "zero vector"),
])
def test_errors(features, labels, message):
    with pytest.raises(ValueError, match=message):
        class_structure(features, labels)


def test_text_side_known_values():
    s = 1 / math.sqrt(2)
    t = np.array([[1.0, 0.0], [0.0, 1.0], [s, s]])
    out = text_class_structure(t)
    assert out["inter_class_similarity"] == pytest.approx((0 + s + s) / 3)
    assert out["nearest_neighbour_similarity"] == pytest.approx([s, s, s])
    assert list(out["nearest_neighbour"]) == [2, 2, 0]
    assert out["mean_nearest_neighbour_similarity"] == pytest.approx(s)


def test_text_features_join_the_image_measures():
    z, y = orthogonal_clusters(0.3)
    out = class_structure(z, y, text_features=np.eye(3) + 0.1)
    assert out["text_inter_class_similarity"] == pytest.approx(text_class_structure(np.eye(3) + 0.1)[
        "inter_class_similarity"])
    with pytest.raises(ValueError, match="class indices 0..1"):
        class_structure(z, y, text_features=np.eye(2))
    with pytest.raises(ValueError, match="at least 2 classes"):
        text_class_structure(np.ones((1, 4)))
