"""editkit.render: tensor conversion, grids, GIF/MP4 writing (atomic), ping-pong frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from editkit.errors import UsageError
from editkit.render import bounce, make_grid, save_animation, save_gif, save_mp4, to_uint8


def test_to_uint8_maps_minus_one_one_to_bytes():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2).expand(1, 3, 2, 2)
    out = to_uint8(x)
    assert out.shape == (1, 2, 2, 3) and out.dtype == np.uint8
    assert out[0, :, :, 0].tolist() == [[0, 128], [255, 255]]
    assert to_uint8(x[0]).shape == (2, 2, 3)


def test_make_grid_layout_and_labels():
    a = np.zeros((4, 6, 3), np.uint8)
    b = np.full((4, 6, 3), 200, np.uint8)
    g = make_grid([[a, b], [b]], pad=1)
    assert g.shape == (2 * 5 + 1, 2 * 7 + 1, 3)
    assert (g[1:5, 1:7] == 0).all() and (g[1:5, 8:14] == 200).all() and (g[6:10, 1:7] == 200).all()
    assert (g[6:10, 8:14] == 255).all()  # missing cell stays background
    labelled = make_grid([[a], [b]], row_labels=["smile", "age"])
    assert labelled.shape[1] > 8 and labelled.shape[0] == 2 * 6 + 2
    with pytest.raises(UsageError):
        make_grid([])


def test_bounce():
    assert bounce([1, 2, 3, 4]) == [1, 2, 3, 4, 3, 2]
    assert bounce([1, 2]) == [1, 2]


def test_gif_and_mp4(tmp_path):
    import cv2
    import imageio.v3 as iio

    frames = [np.full((9, 11, 3), i * 40, np.uint8) for i in range(5)]
    gif = save_gif(tmp_path / "a.gif", frames, duration_ms=80)
    assert iio.imread(gif).shape == (5, 9, 11, 3) and iio.immeta(gif)["duration"] == 80
    mp4 = save_mp4(tmp_path / "a.mp4", frames, fps=5)  # odd sizes are cropped to even ones
    cap = cv2.VideoCapture(str(mp4))
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (10, 8)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()
    with pytest.raises(UsageError, match="unsupported animation format"):
        save_animation(tmp_path / "a.avi", frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4"]  # no temp files left
