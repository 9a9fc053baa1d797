"""The training augmentations of :mod:`skshortcut.augment`."""

from __future__ import annotations

import torch

from skshortcut.augment import RandomShift, crop_flip, training_transform


def test_random_shift_translates_by_at_most_an_eighth_of_the_side_with_repeated_edges():
    image = torch.arange(3 * 16 * 20, dtype=torch.float32).reshape(3, 16, 20)
    padded = torch.nn.functional.pad(image[None], (2, 2, 2, 2), mode="replicate")[0]  # 16 / 8 = 2, 20 / 8 = 2.5 -> 2
    torch.manual_seed(0)
    offsets = set()
    for _ in range(200):
        out = RandomShift()(image)
        assert out.shape == image.shape
        # the output is a window of the edge-padded image
        found = [(i, j) for i in range(5) for j in range(5) if torch.equal(padded[:, i:i + 16, j:j + 20], out)]
        assert found
        offsets.add(found[0])
    assert len(offsets) == 25  # every shift up to 2 pixels in either direction occurs
    small = torch.rand(1, 4, 4)
    assert torch.equal(torch.nn.functional.pad(small[None], (1, 1, 1, 1), mode="replicate")[0][:, 1:5, 1:5], small)
    assert RandomShift(0.25) == RandomShift(0.25) != RandomShift() and "0.25" in repr(RandomShift(0.25))
    torch.manual_seed(3)
    a = RandomShift()(image)
    torch.manual_seed(3)
    assert torch.equal(a, RandomShift()(image))  # drawn from torch's generator, which the ERM fit seeds


def test_training_transform_resolves_the_names_and_passes_callables_through():
    assert training_transform("shift", (16, 16)) == RandomShift()
    assert type(training_transform("crop_flip", (16, 16))) is type(crop_flip((16, 16)))
    assert training_transform(torch.flip, (16, 16)) is torch.flip
