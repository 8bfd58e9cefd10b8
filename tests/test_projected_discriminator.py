"""Projected-GAN discriminator option of the generator trainer (on a random trunk: no weights needed)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import editkit
from editkit.errors import UsageError
from editkit.training.generator_trainer import STATE_FILE, GeneratorTrainer, TrainConfig
from editkit.training.projected import (ProjectedDiscriminator, RandomTrunk, build_projected_discriminator,
                                        hinge_d_loss, hinge_g_loss)


def _images(folder, n=16, size=24):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def _cfg(data, out, **kw):
    base = dict(data=str(data), out=str(out), resolution=16, kimg=0.048, batch=8, z_dim=16, w_dim=16,
                channel_base=256, channel_max=16, cache_dir="none", sample_kimg=0.024, snapshot_kimg=0.024, grid=2,
                threads=1, augment="translation", d_arch="projected", projected_net="random", projected_size=32,
                projected_width=8, r1_gamma=1.0)
    base.update(kw)
    return TrainConfig(**base)


def test_discriminator_trains_heads_only_and_passes_gradients_to_images():
    D = build_projected_discriminator("random", 32, width=8)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    logits = D(x)
    assert logits.shape == (4, 3)  # one logit per trunk scale
    trunk_params = {id(p) for p in D.trunk.parameters()}
    assert trunk_params and not trunk_params & {id(p) for p in D.parameters()}
    assert not any(k.startswith("trunk") for k in D.state_dict())
    assert all(k.startswith("heads.") for k, _ in D.named_parameters())
    assert {"ccm0", "csm0"} <= set(dict(D.named_buffers()))
    hinge_g_loss(logits).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in D.trunk.parameters())
    # fixed random projections: the same seed gives the same projections
    D2 = build_projected_discriminator("random", 32, width=8)
    assert torch.equal(D.ccm1, D2.ccm1)


def test_hinge_losses():
    r, f = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert hinge_d_loss(r, f).item() == pytest.approx(0.25 + 0.5)
    assert hinge_g_loss(f).item() == pytest.approx(1.0)


def test_projected_training_runs_and_resumes_exactly(tmp_path):
    data = _images(tmp_path / "data")
    full = GeneratorTrainer(_cfg(data, tmp_path / "full"), show_progress=False)
    assert isinstance(full.D, ProjectedDiscriminator)
    final = full.run()
    log = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss_G"]) and np.isfinite(r["loss_D"]) for r in log)
    assert not any("r1_penalty" in r for r in log)  # no R1 on projected heads
    net = editkit.load_network(final)
    assert net.D is None and "projected" in net.meta["discriminator"]

    part = GeneratorTrainer(_cfg(data, tmp_path / "part"), show_progress=False)
    assert part.run(stop_after_steps=3) == tmp_path / "part" / STATE_FILE
    resumed = GeneratorTrainer(_cfg(data, tmp_path / "part"), resume=tmp_path / "part", show_progress=False)
    resumed.run()
    for name in ("G", "D", "G_ema"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        for k in a:
            assert torch.allclose(a[k], b[k], atol=1e-6), f"{name}.{k} differs after resume"
    with pytest.raises(UsageError, match="d_arch"):
        GeneratorTrainer(_cfg(data, tmp_path / "x", d_arch="stylegan2"), resume=tmp_path / "part")


def test_bad_projected_options():
    with pytest.raises(UsageError, match="d-arch"):
        _cfg("d", "o", d_arch="nope").validate()
    with pytest.raises(UsageError, match="projected-net"):
        _cfg("d", "o", projected_net="imagenet").validate()
