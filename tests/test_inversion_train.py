"""Encoder training: exact resume, real images (folder and zip), outputs, option checks, DDP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny_generator
from editkit.errors import BadInputError, UsageError
from inversion import load_encoder
from inversion.train_encoder import EncoderTrainConfig, RealImages, load_checkpoint, sample_codes, train_encoder

TINY = dict(batch_size=4, width=8, lr=1e-3, checkpoint_every=2, preview_every=2)


pytestmark = pytest.mark.usefixtures("no_vgg16")


def _state(enc):
    return {k: v.clone() for k, v in enc.state_dict().items()}


def test_resume_is_exact(tmp_path):
    G = make_tiny_generator()
    straight = train_encoder(G, EncoderTrainConfig(steps=4, **TINY), tmp_path / "a", progress=False)
    train_encoder(G, EncoderTrainConfig(steps=2, **TINY), tmp_path / "b", progress=False)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 2
    resumed = train_encoder(G, EncoderTrainConfig(steps=4, **TINY), tmp_path / "b", progress=False)
    a, b = _state(straight), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["net.base.fc2.weight"], torch.zeros_like(a["net.base.fc2.weight"]))  # it trained
    lines = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4]
    with pytest.raises(UsageError, match="different settings"):
        train_encoder(G, EncoderTrainConfig(steps=6, **{**TINY, "lr": 5e-4}), tmp_path / "b", progress=False)


def _write_faces(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"face{i}.png"
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_training_with_real_images_folder_and_zip(tmp_path):
    G = make_tiny_generator()
    paths = _write_faces(tmp_path / "faces")
    zpath = tmp_path / "faces.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in paths:
            zf.write(p, f"sub/{p.name}")
    ds = RealImages(zpath, 16)
    assert len(ds) == 3 and ds[0].shape == (3, 16, 16) and -1 <= ds[0].min() and ds[0].max() <= 1
    for src in (tmp_path / "faces", zpath):
        out = tmp_path / f"run_{Path(src).suffix or 'dir'}"
        enc = train_encoder(G, EncoderTrainConfig(steps=2, real_data=str(src), real_fraction=0.5, **TINY), out,
                            progress=False)
        assert (out / "preview.png").is_file() and (out / "config.json").is_file()
        back = load_encoder(out / "encoder.safetensors")
        x = torch.rand(2, 3, 16, 16) * 2 - 1
        with torch.no_grad():
            assert torch.equal(back(x), enc(x))
    with pytest.raises(BadInputError, match="no images"):
        RealImages(_empty(tmp_path), 16)


def _empty(tmp_path: Path) -> Path:
    d = tmp_path / "empty"
    d.mkdir(exist_ok=True)
    return d


def test_sample_codes_are_style_mixed():
    G = make_tiny_generator()
    ws = sample_codes(G, 8, torch.Generator().manual_seed(0), mix_prob=1.0)
    assert ws.shape == (8, G.num_ws, G.w_dim)
    assert all(not torch.equal(w[0], w[-1]) for w in ws)  # crossover inside every code
    same = sample_codes(G, 8, torch.Generator().manual_seed(0), mix_prob=0.0)
    assert all(torch.equal(w[0], w[-1]) for w in same)


@pytest.mark.slow
def test_torchrun_ddp_two_ranks(tmp_path):
    """Two gloo ranks on the CPU train in lock-step and rank 0 writes the encoder."""
    G = make_tiny_generator()
    from editkit import save_network

    gpath = tmp_path / "g.safetensors"
    save_network(gpath, G)
    script = tmp_path / "run.py"
    script.write_text(
        "import sys, torch\n"
        "torch.set_num_threads(1)\n"
        "import editkit\n"
        "from inversion.train_encoder import EncoderTrainConfig, train_encoder\n"
        f"G = editkit.load_generator({str(gpath)!r})\n"
        f"train_encoder(G, EncoderTrainConfig(steps=2, batch_size=4, width=8), {str(tmp_path / 'ddp')!r}, progress=False)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    torchrun = Path(sys.executable).with_name("torchrun")
    subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script)], check=True, env=env,
                   timeout=300)
    assert (tmp_path / "ddp" / "encoder.safetensors").is_file()
    assert load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")["step"] == 2


@pytest.mark.slow
def test_e4e_encoder_trains_for_a_512_wide_generator(tmp_path):
    from editkit.networks import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=512, w_dim=512, resolution=16, channel_base=256, channel_max=16).eval()
    enc = train_encoder(G, EncoderTrainConfig(arch="e4e", steps=1, batch_size=2, lr=1e-4), tmp_path, progress=False)
    assert enc.arch == "e4e" and enc.num_ws == G.num_ws == 6
    back = load_encoder(tmp_path / "encoder.safetensors")
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(back(x), enc(x), atol=1e-6)


def test_interrupt_saves_a_state_that_resumes_exactly(tmp_path, monkeypatch):
    import inversion.train_encoder as te

    G = make_tiny_generator()
    cfg = dict(TINY, checkpoint_every=100)
    straight = train_encoder(G, EncoderTrainConfig(steps=4, **cfg), tmp_path / "a", progress=False)
    real_sample = te.sample_codes
    calls = []

    def interrupt_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(te, "sample_codes", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        train_encoder(G, EncoderTrainConfig(steps=4, **cfg), tmp_path / "b", progress=False)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 2
    monkeypatch.setattr(te, "sample_codes", real_sample)
    resumed = train_encoder(G, EncoderTrainConfig(steps=4, **cfg), tmp_path / "b", progress=False)
    a, b = _state(straight), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
