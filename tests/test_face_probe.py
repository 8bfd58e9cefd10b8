"""The pretrained-network attribute probe (navigator/face_probe.py) and ``--probe`` selection."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from navigator import metrics
from navigator.face_probe import ATTRIBUTES, IMAGE_ATTRIBUTES, FaceNetProbe
from navigator.labels import SHORT_NAMES, label_directions
from navigator.probe import PROBES, LandmarkProbe, build_probe

FACE = Path(__file__).parent / "fixtures" / "navigator" / "face_256.png"


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 127.5 - 1


@pytest.fixture(scope="module")
def probe_values():
    img = np.asarray(Image.open(FACE).convert("RGB"))
    p = FaceNetProbe()
    raw = p(torch.cat([_t(img), _t(img[:, ::-1]), _t(np.asarray(Image.fromarray(img).resize((64, 64), Image.LANCZOS))
                                                       .repeat(4, 0).repeat(4, 1))]))
    return p, raw


def test_probe_attributes_on_a_real_face(probe_values):
    p, raw = probe_values
    assert raw.shape == (3, len(IMAGE_ATTRIBUTES) + 128)
    a = dict(zip(IMAGE_ATTRIBUTES, raw[0].tolist()))
    b = dict(zip(IMAGE_ATTRIBUTES, raw[1].tolist()))
    assert 5 < a["age"] < 80 and 0 <= a["female"] <= 1
    expr = [a[k] for k in ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")]
    assert abs(sum(expr) - 1) < 1e-4
    assert abs(a["yaw"]) < 20 and abs(a["roll"]) < 10 and 0.1 < a["eye_open"] < 0.5
    assert abs(a["face_x"] - 0.5) < 0.06 and 0 < a["skin_hue"] < 50
    assert abs(a["yaw"]) < 2 or np.sign(b["yaw"]) == -np.sign(a["yaw"])     # a mirror flips the yaw
    assert abs(b["face_x"] - (1 - a["face_x"])) < 0.02 and abs(b["age"] - a["age"]) < 8  # measured 5.5


def test_identity_change_is_a_distance_of_the_pair(probe_values):
    p, raw = probe_values
    d = p.difference(raw[[0, 0, 2]], raw[[0, 2, 0]])
    assert d.shape == (3, len(ATTRIBUTES)) and ATTRIBUTES[-1] == "identity_change"
    assert d[0].abs().max() == 0 and d[1, -1] > 0 and d[1, -1] == d[2, -1]  # symmetric, non-negative
    assert torch.allclose(d[1, :-1], -d[2, :-1])
    # the 64-px copy of the same face stays the same person (face-api: < 0.6)
    assert d[1, -1] < 0.6
    v = p.values(raw)
    assert v.shape == (3, len(ATTRIBUTES)) and (v[:, -1] >= 0).all()
    q = FaceNetProbe(identity=False)
    assert q.names == IMAGE_ATTRIBUTES and q.difference(raw[[0]], raw[[2]]).shape == (1, len(IMAGE_ATTRIBUTES))
    assert torch.equal(q.values(raw), raw[:, :len(IMAGE_ATTRIBUTES)])


def test_attribute_responses_use_the_probe_difference():
    """A fake generator whose images are the fixture face darkened by w: the identity column is the
    pair's descriptor distance, the brightness columns move with the sign of the edit."""
    img = _t(np.asarray(Image.open(FACE).convert("RGB").resize((128, 128))))

    class FakeG:
        z_dim, num_ws, w_dim = 4, 2, 4
        w_avg = torch.zeros(4)

        def mapping(self, z, truncation_psi=1.0):
            return torch.zeros(z.shape[0], 2, 4)

        def synthesis(self, ws, noise_mode="const"):
            return ((img + 1) * (1 - 0.3 * ws[:, 0, :1, None, None]) - 1).clamp(-1, 1)

    class FakeNav:
        num_directions = 1

        def to(self, device):
            return self

        def edit(self, ws, k, s):
            return ws + s

    R = metrics.attribute_responses(FakeG(), FakeNav(), FaceNetProbe(), n_samples=2, strength=0.5, batch_size=2,
                                    standardize=False)
    r = dict(zip(ATTRIBUTES, R[0].tolist()))
    assert r["skin_brightness"] < -0.05 and r["identity_change"] > 0


def test_probe_selection_and_labels():
    assert PROBES == ("facenets", "dlib")
    assert isinstance(build_probe("dlib"), LandmarkProbe) and isinstance(build_probe("facenets"), FaceNetProbe)
    from editkit.errors import UsageError
    with pytest.raises(UsageError, match="unknown probe"):
        build_probe("clip")
    assert all(a in SHORT_NAMES for a in ATTRIBUTES)
    R = torch.zeros(2, len(ATTRIBUTES))
    R[0, ATTRIBUTES.index("happy")] = 5.0
    R[1, ATTRIBUTES.index("identity_change")] = 4.0
    labels = label_directions(R, ATTRIBUTES)
    assert [l.name for l in labels] == ["happy", "identity"]


def test_evaluate_cli_probe_option(tmp_path, capsys):
    import json

    import editkit
    from conftest import make_tiny_generator
    from editkit.cli import main

    net = editkit.save_network(tmp_path / "g.safetensors", make_tiny_generator())
    args = ["evaluate", "--generator", str(net), "--navigator", "sefa", "--baseline-directions", "2",
            "--samples", "2", "--batch-size", "2", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "e")]) == 0  # default: the face networks
    res = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert res["probe"] == "facenets" and res["attributes"] == list(ATTRIBUTES)
    assert np.array(res["responses"]).shape == (2, len(ATTRIBUTES))
    assert main([*args, "--out", str(tmp_path / "f"), "--probe", "clip"]) == 2
    assert "--probe must be one of facenets, dlib" in capsys.readouterr().err
