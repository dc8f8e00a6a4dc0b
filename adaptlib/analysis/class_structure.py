"""Class structure of CLIP features: how far apart classes are and how tight each class is.

The Wang (NTU 2023) study explains which adaptation method wins on a dataset by its inter-/intra-class
variance; APEX (arXiv 2311.15569) reports the intra/inter cosine ratio of image features per dataset (ImageNet
1.680 ... DTD 1.025). Conventions, on L2-normalised features z_i (inputs are normalised here, idempotently):

- m_c: the plain mean of the z_i of class c (not normalised); mu_c = m_c / ||m_c||, the normalised centroid.
- inter-class similarity: mean over unordered class pairs of cos(mu_c, mu_c') (APEX).
- intra-class similarity: mean over classes of mean_i cos(z_i, mu_c) (APEX); it equals mean_c ||m_c||.
- spread (1/N) sum_i ||z_i - m_c||^2 uses m_c, not mu_c: m_c minimises the squared distance, so the spread is
  tr(S_W)/N and agrees with the Fisher ratio; per class it is 1 - ||m_c||^2 (0 for identical points).
- Fisher ratio tr(S_B)/tr(S_W) with S_B = sum_c n_c (m_c - m)(m_c - m)^T (m the global mean) and
  S_W = sum_c sum_i (z_i - m_c)(z_i - m_c)^T, as in Fisher's LDA.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import silhouette_score

from ._arrays import ArrayLike, as_f64, l2_normalise

SILHOUETTE_MAX = 5000  # silhouette is O(N^2 D): above this, a seeded stratified subsample


def _inputs(features: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = l2_normalise(as_f64(features, "features", ndim=2), "features")
    lab = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)
    if lab.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {lab.shape}")
    if len(lab) != len(z):
        raise ValueError(f"features has {len(z)} rows but labels has {len(lab)} entries")
    classes, inverse = np.unique(lab, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"class structure needs at least 2 classes, got {len(classes)}")
    return z, classes, inverse


def _class_means(z: np.ndarray, inverse: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain class means m_c [C, D] of rows of ``z`` and class sizes n_c [C] (``inverse``: class index 0..C-1)."""
    counts = np.bincount(inverse, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, z.shape[1]))
    np.add.at(sums, inverse, z)
    return sums / counts[:, None], counts


def _mean_pairwise_cos(unit: np.ndarray) -> float:
    c = len(unit)
    sim = unit @ unit.T
    return float((sim.sum() - np.trace(sim)) / (c * (c - 1)))


def _subsample(inverse: np.ndarray, n_classes: int, k: int, seed: int) -> np.ndarray:
    """Indices of about ``k`` items, every class kept in proportion (at least one each); same seed, same items."""
    rng = np.random.default_rng(seed)
    n = len(inverse)
    picks = []
    for c in range(n_classes):
        idx = np.flatnonzero(inverse == c)
        take = max(1, int(round(len(idx) * k / n)))
        picks.append(rng.choice(idx, size=min(take, len(idx)), replace=False))
    return np.sort(np.concatenate(picks))


def _silhouette(z: np.ndarray, inverse: np.ndarray, n_classes: int, max_items: int, seed: int) -> float:
    if len(z) > max_items:
        idx = _subsample(inverse, n_classes, max_items, seed)
        z, inverse = z[idx], inverse[idx]
    if n_classes >= len(z):
        return float("nan")
    return float(silhouette_score(z, inverse, metric="cosine"))


def cosine_silhouette(features: ArrayLike, labels: ArrayLike, *, max_items: int = SILHOUETTE_MAX,
                      seed: int = 0) -> float:
    """Mean silhouette with cosine distance (sklearn), on a stratified seeded subsample above ``max_items``.

    NaN where it is undefined (every item its own class).
    """
    z, classes, inverse = _inputs(features, labels)
    return _silhouette(z, inverse, len(classes), max_items, seed)


def class_structure(features: ArrayLike, labels: ArrayLike, text_features: ArrayLike | None = None, *,
                    silhouette_max: int = SILHOUETTE_MAX, seed: int = 0) -> dict:
    """All class-structure measures of image ``features`` [N, D] with ``labels`` [N] (any hashable ids).

    Returns n, classes, inter_class_similarity, intra_class_similarity, intra_inter_ratio (intra/inter; NaN when
    inter <= 0, where the ratio has no meaning), spread, fisher_ratio (inf when every class is a single point),
    silhouette. With ``text_features`` [C, D] (row c = class c, labels must then be 0..C-1) the text-side
    measures of :func:`text_class_structure` are added with the prefix ``text_``.
    """
    z, classes, inverse = _inputs(features, labels)
    n, n_classes = len(z), len(classes)
    means, counts = _class_means(z, inverse, n_classes)
    mean_norms = np.linalg.norm(means, axis=1)
    if np.any(mean_norms == 0):
        raise ValueError("a class mean is the zero vector (its features cancel out): its centroid has no direction")
    mu = means / mean_norms[:, None]

    inter = _mean_pairwise_cos(mu)
    # mean_i cos(z_i, mu_c) equals ||m_c||; computed from the definition, class by class
    intra = float(np.mean(np.bincount(inverse, weights=np.sum(z * mu[inverse], axis=1)) / counts))
    tr_w = float(np.sum((z - means[inverse]) ** 2))
    tr_b = float(np.sum(counts[:, None] * (means - z.mean(axis=0)) ** 2))
    if tr_w > 0:
        fisher = tr_b / tr_w
    else:
        fisher = float("inf") if tr_b > 0 else float("nan")
    out = {
        "n": n,
        "classes": n_classes,
        "inter_class_similarity": inter,
        "intra_class_similarity": intra,
        "intra_inter_ratio": intra / inter if inter > 0 else float("nan"),
        "spread": tr_w / n,
        "fisher_ratio": fisher,
        "silhouette": _silhouette(z, inverse, n_classes, silhouette_max, seed),
    }
    if text_features is not None:
        text = text_class_structure(text_features)
        n_text = len(text["nearest_neighbour"])
        if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0 or classes.max() >= n_text:
            raise ValueError(f"with text_features ({n_text} rows), labels must be class indices 0..{n_text - 1}")
        out.update({f"text_{k}": v for k, v in text.items()})
    return out


def text_class_structure(text_features: ArrayLike) -> dict:
    """Text-side analogue on class-name embeddings [C, D]: how similar class names are to each other.

    inter_class_similarity: mean over class pairs of cos(t_c, t_c'); nearest_neighbour_similarity [C]:
    max_{c' != c} cos(t_c, t_c') with nearest_neighbour [C] its index (APEX's class distance
    d_nn(c) = max(0, 1 - that)); mean_nearest_neighbour_similarity: its mean over classes.
    """
    t = l2_normalise(as_f64(text_features, "text_features", ndim=2), "text_features")
    if len(t) < 2:
        raise ValueError(f"text class structure needs at least 2 classes, got {len(t)}")
    sim = t @ t.T
    np.fill_diagonal(sim, -np.inf)
    nn_sim = sim.max(axis=1)
    return {
        "inter_class_similarity": _mean_pairwise_cos(t),
        "nearest_neighbour_similarity": nn_sim,
        "nearest_neighbour": sim.argmax(axis=1),
        "mean_nearest_neighbour_similarity": float(nn_sim.mean()),
    }
