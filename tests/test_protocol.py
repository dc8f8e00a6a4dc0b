"""The few-shot protocol: sampler, few-shot val, base/new split, subset cache, clear errors."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from adaptlib.data.dataset import ArrayImageLoader, ClassificationDataset, Sample
from adaptlib.data.protocol import (NotEnoughShotsError, base_new_classes, few_shot_path, sample_few_shot,
                                    subsample_classes)


def make_dataset(per_class=(20, 6, 5), classes=("ant", "bee", "cat", "dog", "eel"), name="toy") -> ClassificationDataset:
    splits = {}
    for split, n in zip(("train", "val", "test"), per_class):
        splits[split] = [Sample(f"{split}/{c}_{i}", label, c) for label, c in enumerate(classes) for i in range(n)]
    arrays = {s: np.zeros((len(v), 4, 4, 3), np.uint8) for s, v in splits.items()}
    return ClassificationDataset(name, list(classes), ["a photo of a {}."], splits, ArrayImageLoader(arrays),
                                 fingerprint=f"{name}-fp")


@pytest.mark.parametrize("shots", [1, 2, 4, 8, 16])
def test_k_shots_per_class_without_replacement(shots):
    task = sample_few_shot(make_dataset(), shots, seed=1)
    counts = Counter(s.label for s in task.train)
    assert set(counts.values()) == {shots} and len(counts) == 5
    assert len({s.key for s in task.train}) == len(task.train)  # no sample twice
    assert Counter(s.label for s in task.val) == {c: min(shots, 4) for c in range(5)}
    assert len(task.test) == 25  # the full test split


def test_same_seed_same_subset_other_seed_other_subset():
    ds = make_dataset()
    a = sample_few_shot(ds, 4, seed=1, use_cache=False)
    b = sample_few_shot(ds, 4, seed=1, use_cache=False)
    c = sample_few_shot(ds, 4, seed=2, use_cache=False)
    assert [s.key for s in a.train] == [s.key for s in b.train]
    assert [s.key for s in a.val] == [s.key for s in b.val]
    assert [s.key for s in a.train] != [s.key for s in c.train]


def test_val_is_sampled_after_train_with_the_same_generator():
    import random

    ds = make_dataset()
    task = sample_few_shot(ds, 2, seed=7, use_cache=False)
    rng = random.Random(7)
    for label in range(5):
        rng.sample([s for s in ds.split("train") if s.label == label], 2)
    expected_val = [k for label in range(5) for k in
                    [s.key for s in rng.sample([s for s in ds.split("val") if s.label == label], 2)]]
    assert [s.key for s in task.val] == expected_val


def test_too_few_images_names_the_class():
    ds = make_dataset(per_class=(3, 6, 5))
    with pytest.raises(NotEnoughShotsError, match="class 'ant'.*3 train images.*--shots"):
        sample_few_shot(ds, 4, seed=1)


def test_cache_roundtrip_and_corrupt_cache(isolated_data_dir):
    ds = make_dataset()
    first = sample_few_shot(ds, 4, seed=3)
    path = few_shot_path(ds, 4, 3)
    assert path.is_file() and str(isolated_data_dir) in str(path)
    cached = sample_few_shot(ds, 4, seed=3)
    assert [s.key for s in cached.train] == [s.key for s in first.train]
    path.write_text("{ truncated")
    again = sample_few_shot(ds, 4, seed=3)  # resampled, not crashed, same subset
    assert [s.key for s in again.train] == [s.key for s in first.train]


@pytest.mark.parametrize("n, base, new", [(5, 3, 2), (4, 2, 2), (1, 1, 0), (36, 18, 18), (47, 24, 23)])
def test_base_new_split(n, base, new):
    b, nw = base_new_classes(n)
    assert len(b) == base == math.ceil(n / 2) and len(nw) == new
    assert b + nw == list(range(n))


def test_subsample_relabels_from_zero():
    task = sample_few_shot(make_dataset(), 2, seed=1)
    base, new = subsample_classes(task, "base"), subsample_classes(task, "new")
    assert base.classnames == ["ant", "bee", "cat"] and new.classnames == ["dog", "eel"]
    assert {s.label for s in base.train} == {0, 1, 2} and {s.label for s in new.test} == {0, 1}
    assert all(new.classnames[s.label] == s.classname for s in new.test)
    assert subsample_classes(task, "all") is task
    with pytest.raises(KeyError, match="Did you mean 'base'"):
        subsample_classes(task, "bsae")
