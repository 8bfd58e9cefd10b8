"""StyleGAN2 trainer: data pipeline, DiffAugment, losses, the loop, checkpoints, exact resume, DDP, CLI."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import editkit
from editkit.errors import BadInputError, CheckpointError, UsageError
from editkit.training.augment import diff_augment, parse_policy, translation
from editkit.training.data import BatchSampler, batch_to_float, decode_image, list_images, load_dataset
from editkit.training.generator_trainer import (FINAL_NETWORK, STATE_FILE, GeneratorTrainer, TrainConfig,
                                                read_training_state)
from editkit.training.losses import discriminator_loss, generator_loss, path_length_penalty, r1_penalty

ROOT = Path(__file__).resolve().parents[1]


def _write_images(folder: Path, n: int = 16, size: int = 24) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 256, (size, size + 4 * (i % 2), 3), dtype=np.uint8)  # some non-square
        Image.fromarray(img).save(folder / f"img{i:02d}.{'png' if i % 3 else 'jpg'}")
    return folder


def _tiny_cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), resolution=16, kimg=0.048, batch=8, z_dim=16, w_dim=16,
                channel_base=256, channel_max=16, r1_interval=2, pl_weight=1.0, pl_interval=2, cache_dir="none",
                sample_kimg=0.024, snapshot_kimg=0.024, grid=2, threads=1, augment="color,translation,cutout")
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------ data

def test_load_dataset_folder_and_zip_match_and_cache(tmp_path):
    folder = _write_images(tmp_path / "imgs", n=6)
    (folder / "notes.txt").write_text("not an image")
    zpath = tmp_path / "imgs.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(folder.glob("img*")):
            zf.write(p, f"sub/{p.name}")
    a = load_dataset(folder, 16)
    b = load_dataset(zpath, 16, cache_dir=tmp_path / "cache")
    assert a.images.shape == (6, 3, 16, 16) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images)
    assert [n.split("/")[-1] for n in b.names] == [n for n in a.names]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    c = load_dataset(zpath, 16, cache_dir=tmp_path / "cache")  # from the cache
    assert torch.equal(c.images, b.images) and c.names == b.names
    assert load_dataset(zpath, 16, max_images=2).images.shape[0] == 2


def test_decode_image_centre_crops_and_keeps_colour_order():
    img = np.zeros((20, 40, 3), dtype=np.uint8)
    img[:, 10:30] = (255, 0, 0)  # the centre square is red, the sides black
    import io
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    out = decode_image(buf.getvalue(), 8)
    assert out.shape == (8, 8, 3)
    assert out[..., 0].min() > 240 and out[..., 1:].max() < 15


def test_dataset_errors(tmp_path):
    with pytest.raises(UsageError):
        list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError):
        list_images(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(BadInputError, match="x.jpg"):
        load_dataset(bad, 8)


def test_batch_sampler_is_a_function_of_the_step_and_covers_epochs():
    s1, s2 = BatchSampler(10, 4, seed=3), BatchSampler(10, 4, seed=3)
    first = [s1.indices(k)[0] for k in range(5)]  # 20 draws = 2 epochs
    assert torch.equal(s2.indices(3)[0], first[3]) and torch.equal(s2.indices(3)[1], s1.indices(3)[1])
    flat = torch.cat(first)
    assert sorted(flat[:10].tolist()) == list(range(10)) and sorted(flat[10:].tolist()) == list(range(10))
    assert not torch.equal(flat[:10], flat[10:])
    assert not BatchSampler(10, 4, mirror=False).indices(0)[1].any()


def test_batch_to_float_range_and_flip():
    u8 = torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).reshape(2, 3, 2, 2) * 10
    x = batch_to_float(u8, torch.tensor([False, True]))
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert torch.allclose(x[1], (u8[1].float() / 127.5 - 1).flip(2))
    assert torch.allclose(x[0], u8[0].float() / 127.5 - 1)


# ------------------------------------------------------------------ augmentation

def test_translation_shifts_with_zero_fill():
    x = torch.arange(1, 65, dtype=torch.float32).reshape(1, 1, 8, 8)
    for seed in range(4):
        y = translation(x, torch.Generator().manual_seed(seed), ratio=0.25)
        ref = torch.Generator().manual_seed(seed)  # the same draws: ty, then tx, in [-2, 2]
        ty = int(torch.randint(-2, 3, (1, 1, 1), generator=ref))
        tx = int(torch.randint(-2, 3, (1, 1, 1), generator=ref))
        expect = torch.zeros(8, 8)
        for i in range(8):
            for j in range(8):
                if 0 <= i + ty < 8 and 0 <= j + tx < 8:
                    expect[i, j] = x[0, 0, i + ty, j + tx]
        assert torch.equal(y[0, 0], expect), (seed, ty, tx)


def test_diff_augment_differentiable_deterministic_and_rank_consistent():
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    out = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(1))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    assert (out == 0).float().mean() > 0.1  # cutout zeroes a quarter of each image
    # a rank holding rows 4..8 of the global batch gets exactly those rows' transforms
    part = diff_augment(x[4:], "color,translation,cutout", torch.Generator().manual_seed(1), part=(4, 8))
    assert torch.allclose(part, out[4:])
    assert parse_policy("none") == () and parse_policy("") == ()
    with pytest.raises(UsageError):
        parse_policy("rotate")


# ------------------------------------------------------------------ losses

def test_losses_match_formulas():
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    sp = torch.nn.functional.softplus
    assert torch.isclose(generator_loss(fake), sp(-fake).mean())
    assert torch.isclose(discriminator_loss(real, fake), sp(fake).mean() + sp(-real).mean())
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    logits = (x ** 2).sum(dim=(1, 2, 3)) * 0.5  # gradient = x, so R1 = mean ||x||^2
    assert torch.isclose(r1_penalty(x, logits), x.detach().square().sum(dim=(1, 2, 3)).mean())


def test_path_length_penalty_matches_the_jacobian_formula():
    ws = torch.randn(4, 3, 5, requires_grad=True)
    A = torch.randn(5, 16 * 3)
    img = torch.tanh(ws.sum(1) @ A).reshape(4, 3, 4, 4)
    pen, mean = path_length_penalty(img, ws, torch.zeros([]), decay=1.0, gen=torch.Generator().manual_seed(0))
    noise = torch.randn(img.shape, generator=torch.Generator().manual_seed(0)) / 4.0
    g = (1 - img.detach() ** 2).reshape(4, -1) * noise.reshape(4, -1)  # d(sum img*noise)/d(pre-tanh)
    lengths = ((g @ A.t()) ** 2).sum(1).sqrt()  # the same gradient for each of the 3 ws rows
    assert torch.isclose(mean, lengths.mean(), rtol=1e-5)
    assert torch.isclose(pen, ((lengths - lengths.mean()) ** 2).mean(), rtol=1e-4, atol=1e-7)
    pen.backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0


# ------------------------------------------------------------------ the loop

def test_train_checkpoint_loads_and_resume_is_exact(tmp_path):
    data = _write_images(tmp_path / "data")
    # uninterrupted: 6 steps of 8 images
    full = GeneratorTrainer(_tiny_cfg(data, tmp_path / "full"), show_progress=False)
    final = full.run()
    assert final == tmp_path / "full" / FINAL_NETWORK and full.step == 6
    log = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss_G"]) and np.isfinite(r["loss_D"]) for r in log)
    assert "r1_penalty" in log[-1] or any("r1_penalty" in r for r in log)
    assert (tmp_path / "full" / "samples" / "reals.png").exists()
    grid = Image.open(tmp_path / "full" / "samples" / "fakes000000.png")
    assert grid.size == (32, 32)
    assert list((tmp_path / "full").glob("network-snapshot-*.safetensors"))

    net = editkit.load_network(final)
    assert net.D is not None and net.G.resolution == 16 and net.G.num_ws == 6
    for k, v in full.G_ema.state_dict().items():
        assert torch.equal(net.G.state_dict()[k], v), k
    assert net.meta["kimg"] == pytest.approx(0.048)
    G = editkit.load_generator(final)
    assert torch.isfinite(G(torch.randn(2, 16))).all()

    # interrupted after 3 steps, then resumed in a fresh trainer
    part = GeneratorTrainer(_tiny_cfg(data, tmp_path / "part"), show_progress=False)
    state = part.run(stop_after_steps=3)
    assert state == tmp_path / "part" / STATE_FILE and part.step == 3
    resumed = GeneratorTrainer(_tiny_cfg(data, tmp_path / "part"), resume=tmp_path / "part", show_progress=False)
    assert resumed.step == 3
    resumed.run()
    for name in ("G", "D", "G_ema"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k} differs after resume"
    assert torch.equal(full.pl_mean, resumed.pl_mean)

    # a mismatching architecture refuses to resume; a non-state file is a CheckpointError
    with pytest.raises(UsageError, match="channel_max"):
        GeneratorTrainer(_tiny_cfg(data, tmp_path / "x", channel_max=8), resume=tmp_path / "part")
    with pytest.raises(CheckpointError):
        read_training_state(final)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_SCRIPT = """
import sys, torch
from editkit.training.generator_trainer import GeneratorTrainer, TrainConfig
cfg = TrainConfig(**__import__('json').loads(sys.argv[1]))
t = GeneratorTrainer(cfg, show_progress=False)
t.run()
t.close()
"""


def test_two_process_gloo_matches_single_process(tmp_path):
    data = _write_images(tmp_path / "data")
    # 'none' noise and mbstd group 1 take out the per-rank differences (noise RNG, std groups). R1 is off:
    # its gradient on D's output bias is exactly 0 up to rounding, and Adam turns rounding noise into
    # a full-size step, so that one parameter would differ by design.
    kw = dict(kimg=0.032, noise_mode="none", mbstd_group=1, snapshot_kimg=0, sample_kimg=0, pl_weight=0.0,
              r1_gamma=0.0)
    single = GeneratorTrainer(_tiny_cfg(data, tmp_path / "single", **kw), show_progress=False)
    single.run()
    cfg = _tiny_cfg(data, tmp_path / "ddp", **kw)
    import dataclasses
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = []
    port = _free_port()
    for rank in range(2):
        e = dict(env, WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                 MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, str(script), json.dumps(dataclasses.asdict(cfg))], env=e,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    net = editkit.load_network(tmp_path / "ddp" / FINAL_NETWORK)
    for k, v in single.G_ema.state_dict().items():
        assert torch.allclose(net.G.state_dict()[k], v, atol=1e-5, rtol=1e-4), k
    for k, v in single.D.state_dict().items():
        assert torch.allclose(net.D.state_dict()[k], v, atol=1e-5, rtol=1e-4), k


# ------------------------------------------------------------------ CLI

def test_cli_train_generator(tmp_path):
    from editkit.cli import main

    data = _write_images(tmp_path / "data", n=8)
    out = tmp_path / "run"
    rc = main(["train", "generator", "--data", str(data), "--out", str(out), "--resolution", "8", "--kimg", "0.008",
               "--batch", "4", "--z-dim", "8", "--w-dim", "8", "--channel-base", "64", "--channel-max", "8",
               "--cache-dir", "none", "--no-progress", "--threads", "1", "--grid", "2"])
    assert rc == 0
    assert editkit.load_generator(out / FINAL_NETWORK).resolution == 8
    assert main(["train", "generator", "--data", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert main(["train", "generator", "--data", str(data), "--out", str(out), "--resolution", "12"]) == 2
