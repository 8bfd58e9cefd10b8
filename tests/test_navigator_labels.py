"""Direction naming from attribute responses, and sign flipping so +strength increases the named attribute."""
from __future__ import annotations

import torch

from navigator.labels import label_directions
from navigator.model import Navigator


def test_dominant_attribute_names_a_direction():
    R = torch.tensor([[3.0, 0.5, 0.1],     # clearly 'age'
                      [-0.2, -4.0, 1.0],   # clearly smile, negative sign
                      [1.0, 0.9, 0.0],     # ambiguous
                      [2.0, 0.1, 0.2]])    # age again -> suffixed
    labels = label_directions(R, ["age", "smile_width", "yaw"], dominance=1.5)
    assert [l.name for l in labels] == ["age", "smile", None, "age-2"]
    assert [l.sign for l in labels] == [1, -1, 1, 1]
    assert labels[2].top[0][0] == "age" and labels[2].top[1] == ("smile_width", 0.9)


def test_negate_flips_direction_and_range():
    nav = Navigator(3, 4, 8, direction_mode="free", seed=0)
    nav.strength_range = [(-1.0, 2.0)] * 3
    before = nav.directions().clone()
    nav.negate([1])
    after = nav.directions()
    assert torch.allclose(after[1], -before[1]) and torch.allclose(after[0], before[0])
    assert nav.strength_range[1] == (-2.0, 1.0) and nav.strength_range[0] == (-1.0, 2.0)
    basis = torch.linalg.qr(torch.randn(8, 8)).Q
    pnav = Navigator(2, 4, 8, direction_mode="pca", basis=basis, num_components=4, seed=0)
    d = pnav.directions().clone()
    pnav.negate([0])
    assert torch.allclose(pnav.directions()[0], -d[0])
