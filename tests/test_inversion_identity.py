"""Identity loss (editkit.facenets recognition descriptors) in inversion and encoder training,
and identity distance / similarity in reconstruction reports."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny_generator
from inversion import invert
from inversion.losses import IdentityLoss, ReconstructionLoss
from inversion.metrics import QualityMeter, identity

CROPS = Path(__file__).parent / "fixtures" / "golden" / "faceapi" / "crops"


pytestmark = pytest.mark.usefixtures("no_vgg16")


def real_faces(size: int, names=("01_ffhq_00001.png", "04_gfpgan_Julia_Roberts_crop.png")) -> torch.Tensor:
    """Real face crops (face-api golden fixtures) resized to ``size``, [N, 3, size, size] in [-1, 1]."""
    ims = [np.asarray(Image.open(CROPS / n).convert("RGB").resize((size, size), Image.LANCZOS)) for n in names]
    return torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_identity_metric_values():
    x = real_faces(64)
    dist, sim = identity(x, x)
    assert torch.allclose(dist, torch.zeros(2), atol=1e-4) and torch.allclose(sim, torch.ones(2), atol=1e-5)
    swapped_d, swapped_s = identity(x, x.flip(0))  # two different people
    assert (swapped_d > 0.3).all() and (swapped_s < sim - 0.05).all()
    m = QualityMeter()(x, x.flip(0))
    assert m["identity_distance"] == pytest.approx(swapped_d.tolist(), abs=1e-5)
    assert m["identity_similarity_mean"] == pytest.approx(float(swapped_s.mean()), abs=1e-5)
    assert "identity_distance" not in QualityMeter(identity=False)(x, x)


def test_identity_loss_is_differentiable_and_cached():
    x = real_faces(32)
    loss = IdentityLoss()
    loss.set_target(x)
    pred = x.flip(0).clone().requires_grad_(True)
    value = loss(pred, x, cached=True)
    assert value.shape == (2,) and (value > 0.01).all()
    value.sum().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert torch.allclose(loss(x, x, cached=True), torch.zeros(2), atol=1e-5)
    loss.select([1])  # faces that stopped early leave the batch; the cache follows
    assert torch.allclose(loss(x[1:], x[1:], cached=True), torch.zeros(1), atol=1e-5)
    rec = ReconstructionLoss(use_vgg=False, quiet=True, identity_weight=0.5)
    assert rec.kind.endswith("identity 0.5") and rec.identity is not None


def test_identity_loss_lowers_identity_distance_on_a_tiny_inversion():
    """Same start, same steps: adding the identity term ends closer to the target person."""
    G = make_tiny_generator(resolution=32)
    x = real_faces(32)
    common = dict(method="optimize", steps=40, early_stop=False, precision="float32", seed=0)
    plain = invert(G, x, identity_weight=0.0, **common)
    with_id = invert(G, x, identity_weight=1.0, **common)
    assert "identity" in with_id.loss and "identity" not in plain.loss
    d0, d1 = np.array(plain.metrics["identity_distance"]), np.array(with_id.metrics["identity_distance"])
    assert (d1 < d0).all(), (d0, d1)
    assert d1.mean() < 0.9 * d0.mean()  # measured: 0.42 vs 0.49
    assert plain.metrics["identity_similarity_mean"] < with_id.metrics["identity_similarity_mean"]


def test_train_encoder_with_identity_weight(tmp_path):
    import json

    from inversion.train_encoder import EncoderTrainConfig, train_encoder

    G = make_tiny_generator(resolution=16)
    cfg = EncoderTrainConfig(steps=3, batch_size=4, width=8, id_weight=0.5, checkpoint_every=10 ** 9,
                             preview_every=10 ** 9)
    train_encoder(G, cfg, tmp_path / "enc", progress=False)
    logged = [json.loads(line) for line in (tmp_path / "enc" / "log.jsonl").read_text().splitlines()]
    assert len(logged) == 3 and all(r["identity"] > 0 for r in logged)
    assert json.loads((tmp_path / "enc" / "config.json").read_text())["id_weight"] == 0.5
    plain = EncoderTrainConfig(steps=1, batch_size=4, width=8, checkpoint_every=10 ** 9, preview_every=10 ** 9)
    train_encoder(G, plain, tmp_path / "plain", progress=False)
    assert "identity" not in json.loads((tmp_path / "plain" / "log.jsonl").read_text().splitlines()[0])
