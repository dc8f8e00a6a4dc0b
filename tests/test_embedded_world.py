"""The embedded world: deterministic generation, dials that do what they say, withheld concepts, task suite."""

from __future__ import annotations

import numpy as np
import pytest

from adaptlib.data.embedded import TASKS, load_embedded_task, parse_task_name
from adaptlib.data.embedded.concepts import SEEN_SHAPES, WITHHELD_SHAPES, WITHHELD_WORDS, shape_profile
from adaptlib.data.embedded.corpus import CorpusConfig, build_corpus
from adaptlib.data.embedded.tasks import Dials, generate_split


def small(name: str, n=(4, 2, 3)):
    from dataclasses import replace

    return replace(parse_task_name(name), per_class=n)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_generation_is_deterministic(task):
    spec = small(task) if task != "digits" else TASKS[task]
    a_images, a_labels = generate_split(spec, "val")
    b_images, b_labels = generate_split(spec, "val")
    assert a_images.dtype == np.uint8 and a_images.shape[1:] == (32, 32, 3)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_labels, b_labels)
    assert sorted(set(a_labels.tolist())) == list(range(len(spec.classes)))


def test_splits_differ_and_seed_changes_images():
    from dataclasses import replace

    spec = small("shape")
    train, _ = generate_split(spec, "train")
    test, _ = generate_split(spec, "test")
    assert not np.array_equal(train[:3], test[:3])
    other, _ = generate_split(replace(spec, seed=1), "train")
    assert not np.array_equal(train, other)


def test_suite_spreads_like_the_benchmark():
    assert len(TASKS) >= 8
    kinds = {spec.kind for spec in TASKS.values()}
    assert {"shape", "colour", "composition", "texture", "digits"} <= kinds
    assert max(len(s.classes) for s in TASKS.values()) >= 30  # a many-class task
    novel = TASKS["novel"]
    assert set(novel.classes) <= set(WITHHELD_SHAPES) and not set(novel.classes) & set(SEEN_SHAPES)
    for spec in TASKS.values():
        assert all("{}" in t for t in spec.templates)
        assert len(set(spec.classes)) == len(spec.classes)


def test_withheld_concepts_never_in_the_corpus():
    images, captions, shapes = build_corpus(CorpusConfig(size=600, seed=3), progress=False)
    words = {w.strip(".,") for c in captions for w in c.split()}
    assert not words & WITHHELD_WORDS
    assert not set(shapes) & set(WITHHELD_SHAPES)
    assert images.shape == (600, 32, 32, 3)
    again = build_corpus(CorpusConfig(size=600, seed=3), progress=False)
    assert captions == again[1] and np.array_equal(images, again[0])


def _class_means(images, labels):
    return np.stack([images[labels == c].reshape((labels == c).sum(), -1).mean(0) for c in np.unique(labels)])


@pytest.mark.parametrize("task", ["shape", "colour"])
def test_inter_class_distance_dial(task):
    """Pulling classes together (inter -> 0) makes class means closer; at 0 with no variance classes coincide."""
    far = small(f"{task}@inter=1,intra=0", (0, 0, 6))
    near = small(f"{task}@inter=0.2,intra=0", (0, 0, 6))
    spread = [np.linalg.norm(np.diff(_class_means(*generate_split(s, "test")), axis=0), axis=1).mean()
              for s in (far, near)]
    assert spread[1] < spread[0]


def test_texture_contrast_follows_inter_class_distance():
    """Textures differ by pattern contrast; at inter=0 every texture class renders as the same solid fill."""
    def pattern_energy(spec):
        images, labels = generate_split(spec, "test")
        centre = images[:, 10:22, 10:22].astype(float)
        return np.array([centre[labels == c].std(axis=(1, 2)).mean() for c in np.unique(labels)])

    full = pattern_energy(small("texture@inter=1,intra=0", (0, 0, 4)))
    none = pattern_energy(small("texture@inter=0,intra=0", (0, 0, 4)))
    assert full.max() - full.min() > 10
    assert none.max() - none.min() < full.max() - full.min()


def test_inter_zero_collapses_shapes():
    geom = parse_task_name("shape@inter=0")
    from adaptlib.data.embedded.tasks import _class_geometry

    profiles = list(_class_geometry(geom)["profiles"].values())
    assert all(np.allclose(p, profiles[0]) for p in profiles)
    assert not np.allclose(shape_profile("circle"), shape_profile("star"))


def test_intra_class_variance_dial():
    def within(spec):
        images, labels = generate_split(spec, "test")
        x = images.reshape(len(images), -1).astype(float)
        return np.mean([x[labels == c].std(0).mean() for c in np.unique(labels)])

    assert within(small("shape@intra=0.9", (0, 0, 8))) > within(small("shape@intra=0", (0, 0, 8)))


def test_domain_shift_dial_changes_style():
    plain, _ = generate_split(small("shape@shift=0", (0, 0, 2)), "test")
    shifted, _ = generate_split(small("shape@shift=1", (0, 0, 2)), "test")
    # shifted images are outlines on colourful backgrounds: far fewer near-black background pixels
    assert (plain.max(axis=-1) < 40).mean() > (shifted.max(axis=-1) < 40).mean() + 0.2


@pytest.mark.parametrize("bad, message", [
    ("shapes", "Did you mean 'shape'"),
    ("shape@inter=2", "outside [0, 1]"),
    ("shape@warp=0.5", "unknown dial"),
    ("shape@inter=high", "needs a number"),
    ("digits@intra=0.5", "real images"),
])
def test_bad_task_names(bad, message):
    with pytest.raises((KeyError, ValueError), match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_task_name(bad)


def test_dataset_interface_and_cache(isolated_data_dir):
    ds = load_embedded_task("colour")
    assert ds.num_classes == 8 and set(ds.splits) == {"train", "val", "test"}
    img = ds.load_image(ds.split("train")[0])
    assert img.size == (32, 32) and img.mode == "RGB"
    cached = list((isolated_data_dir / "cache" / "embedded").glob("colour-*.npz"))
    assert len(cached) == 1
    again = load_embedded_task("colour")
    assert again.fingerprint == ds.fingerprint
    cached[0].write_bytes(b"not a zip file")  # a broken cache is regenerated, never used
    fresh = load_embedded_task("colour")
    assert np.array_equal(np.asarray(fresh.load_image(fresh.split("train")[0])), np.asarray(img))


def test_dials_validate():
    with pytest.raises(ValueError):
        Dials(inter_class_distance=-0.1)


def test_in_memory_tensor_path_matches_the_pil_transforms():
    import torch

    from adaptlib.backbones import load_backbone
    from adaptlib.data.protocol import sample_few_shot
    from adaptlib.data.registry import get_dataset
    from adaptlib.data.transforms import ImageSamples, TensorImages, TransformConfig, build_transform

    task = sample_few_shot(get_dataset("texture"), 2, seed=1)
    cfg = TransformConfig.for_backbone(load_backbone("adaptlib-test"), crop_scale=(0.5, 1.0))
    fast_x, fast_y = next(TensorImages(task, task.train, cfg).batches(64))
    pil = ImageSamples(task, task.train, build_transform(cfg, train=False))
    slow_x = torch.stack([pil[i][0] for i in range(len(pil))])
    torch.testing.assert_close(fast_x, slow_x, atol=1e-5, rtol=1e-5)
    assert fast_y.tolist() == [s.label for s in task.train]
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, _ = next(TensorImages(task, task.train, cfg).batches(64, train=True, generator=g1))
    b, _ = next(TensorImages(task, task.train, cfg).batches(64, train=True, generator=g2))
    assert a.shape == fast_x.shape and torch.equal(a, b) and not torch.allclose(a, fast_x)
