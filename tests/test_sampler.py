"""The streams of training keys: the class-balanced one lets the classes take turns, resumes exactly from any
position, and tiles across processes as the uniform one does."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from pixmorph.train.sampler import ClassBalancedSampler, SeededSampler

LABELS = [0] * 12 + [1] * 4 + [2] * 5  # 12 : 4 : 5


def take(sampler: SeededSampler, n: int) -> list[tuple[int, int]]:
    return list(itertools.islice(iter(sampler), n))


def test_every_batch_holds_each_class_equally_whatever_their_sizes():
    keys = take(ClassBalancedSampler(LABELS, seed=0), 6 * 50)
    for b in range(50):
        batch = keys[6 * b:6 * b + 6]
        assert Counter(LABELS[i] for i, _ in batch) == {0: 2, 1: 2, 2: 2}


def test_a_class_shows_every_image_once_before_any_twice():
    keys = take(ClassBalancedSampler(LABELS, seed=1), 3 * 12)  # 12 draws of each class
    drawn = [i for i, _ in keys if LABELS[i] == 1]
    assert sorted(drawn[:4]) == sorted(drawn[4:8]) == [12, 13, 14, 15]
    assert drawn[:4] != drawn[4:8] or drawn[4:8] != drawn[8:12]  # a new order each epoch of the class
    assert len({seed for _, seed in keys}) == len(keys)  # each draw its own augmentation seed


def test_it_resumes_at_any_position_and_depends_on_the_seed():
    whole = take(ClassBalancedSampler(LABELS, seed=2), 80)
    for start in (1, 7, 13, 41):
        assert take(ClassBalancedSampler(LABELS, seed=2, start=start), 80 - start) == whole[start:]
    assert take(ClassBalancedSampler(LABELS, seed=3), 80) != whole


def test_shards_tile_the_global_stream():
    whole = take(ClassBalancedSampler(LABELS, seed=3, start=6), 12)
    rank0 = take(ClassBalancedSampler(LABELS, seed=3, start=6, shard=(0, 2, 3)), 6)
    rank1 = take(ClassBalancedSampler(LABELS, seed=3, start=6, shard=(1, 2, 3)), 6)
    assert rank0 == whole[0:3] + whole[6:9]
    assert rank1 == whole[3:6] + whole[9:12]


def test_labels_with_a_gap_are_refused():
    with pytest.raises(ValueError, match="0 .. C-1"):
        ClassBalancedSampler([0, 0, 2], seed=0)


def test_no_two_classes_or_epochs_share_a_stream_however_many_classes():
    classes = 1_100  # one image each: every key's seed is its class-epoch stream's first draw
    keys = take(ClassBalancedSampler(list(range(classes)), seed=0), 2 * classes)
    seeds = [seed for _, seed in keys]
    assert len(set(seeds)) == len(seeds)
