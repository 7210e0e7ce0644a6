"""Batches of the training scripts: the seeded per-epoch order and the hard-negative regrouping
(``grouped_batch``, the jWAE and LAViTeR scripts' ``--hard_batch_ratio``)."""

from __future__ import annotations

import pytest
import torch

from mmquant.training import batch_indices, grouped_batch


def test_batch_indices_are_a_seeded_permutation_per_epoch():
    epoch = torch.cat([batch_indices(i, 10, 3, seed=1) for i in range(3)])
    assert len(set(epoch.tolist())) == 9 and batch_indices(1, 10, 3, seed=1).equal(epoch[3:6])
    assert not batch_indices(0, 10, 3, seed=2).equal(epoch[:3])


def test_grouped_batches_come_from_the_first_examples_group_without_repeats():
    groups = torch.tensor([0, 1, 0, 1, 0, 2, 0, 1, 0, 0])  # group 0: six examples
    index = torch.tensor([2, 1, 5, 7])
    grouped = grouped_batch(index, micro_step=3, groups=groups, ratio=1.0, seed=0)
    assert len(grouped) == 4 and len(set(grouped.tolist())) == 4
    assert (groups[grouped] == 0).all()
    again = grouped_batch(index, micro_step=3, groups=groups, ratio=1.0, seed=0)
    assert grouped.equal(again)  # resumed and multi-process runs draw the same batch
    # a group smaller than the batch is topped up from the batch itself
    small = grouped_batch(torch.tensor([5, 1, 3, 7]), micro_step=0, groups=groups, ratio=1.0, seed=0)
    assert small[0] == 5 and len(set(small.tolist())) == 4 and set(small[1:].tolist()) <= {1, 3, 7}
    assert grouped_batch(index, micro_step=3, groups=groups, ratio=0.0, seed=0).equal(index)
    drawn = [not grouped_batch(index, s, groups, 0.5, seed=0).equal(index) for s in range(200)]
    assert 60 < sum(drawn) < 140


def test_caption_mnist_groups_share_colours_and_quadrants():
    from mmquant.data.caption_mnist import colour_layout_groups

    captions = [
        "The red 7 is on the upper left, and the 3 on the bottom right is blue.",
        "The red 1 is on the upper left, and the 9 on the bottom right is blue.",
        "The blue 7 is on the upper left, and the 3 on the bottom right is red.",
    ]
    groups = colour_layout_groups(captions)
    assert groups[0] == groups[1] != groups[2]


def test_hard_batch_regroup_is_off_at_zero_and_caption_mnist_only():
    import argparse

    from mmquant.training import add_hard_batch_argument, hard_batch_regroup

    captions = [
        "The red 7 is on the upper left, and the 3 on the bottom right is blue.",
        "The red 1 is on the upper left, and the 9 on the bottom right is blue.",
    ]
    assert hard_batch_regroup(0.0, "caption_mnist", captions, seed=0) is None
    regroup = hard_batch_regroup(1.0, "caption_mnist", captions, seed=0)
    assert sorted(regroup(torch.tensor([1, 0]), 0).tolist()) == [0, 1]
    with pytest.raises(ValueError, match="caption_mnist only"):
        hard_batch_regroup(0.5, "cub200_captions", captions, seed=0)
    p = argparse.ArgumentParser()
    add_hard_batch_argument(p, "the loss")
    assert p.parse_args(["--hard_batch_ratio", "0.25"]).hard_batch_ratio == 0.25
    with pytest.raises(SystemExit):
        p.parse_args(["--hard_batch_ratio", "1.5"])
