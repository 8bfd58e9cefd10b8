"""`editkit invert` and `editkit train encoder` on a tiny generator."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny_generator
from editkit.cli import main
from inversion import load_encoder, save_encoder
from inversion.encoders import build_encoder

PHOTO = Path(__file__).parent / "fixtures" / "align" / "fr_obama_240p.jpg"  # one face


pytestmark = pytest.mark.usefixtures("no_vgg16")


@pytest.fixture
def models(tmp_path):
    from editkit import save_network

    G = make_tiny_generator()
    gpath = tmp_path / "g.safetensors"
    save_network(gpath, G)
    torch.manual_seed(0)
    enc = build_encoder("light", G.num_ws, G.w_dim, G.resolution, latent_avg=G.w_avg.clone(), width=8)
    for p in enc.net.parameters():
        torch.nn.init.normal_(p, std=0.02)
    epath = save_encoder(tmp_path / "enc.safetensors", enc)
    crop = tmp_path / "crop.png"
    with torch.no_grad():
        img = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3)), truncation_psi=0.5)
    Image.fromarray(((img[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()).resize(
        (64, 64), Image.LANCZOS).save(crop)
    return G, gpath, epath, crop


def test_invert_aligned_crop_writes_latents_recon_and_quality(models, tmp_path, capsys):
    G, gpath, epath, crop = models
    out = tmp_path / "res" / "latents.npz"
    rc = main(["invert", str(crop), "--aligned", "--generator", str(gpath), "--encoder", str(epath),
               "--method", "hybrid", "--steps", "30", "-o", str(out)])
    assert rc == 0
    data = np.load(out)
    assert data["ws"].shape == (1, G.num_ws, G.w_dim) and np.isfinite(data["ws"]).all()
    assert str(data["method"]) == "hybrid"
    report = json.loads((tmp_path / "res" / "latents.quality.json").read_text())
    assert 0 < report["steps"] <= 30 and report["method"] == "hybrid"  # early stopping may end sooner
    assert report["faces"][0]["steps"] == report["steps"]
    assert report["faces"][0]["psnr"] == pytest.approx(float(data["psnr"][0]), abs=1e-3)
    face = report["faces"][0]  # identity of input and reconstruction (editkit.facenets descriptors)
    assert face["identity_distance"] == pytest.approx(float(data["identity_distance"][0]), abs=1e-3)
    assert face["identity_distance"] >= 0 and -1 <= face["identity_similarity"] <= 1
    assert report["mean"]["identity_similarity"] == pytest.approx(face["identity_similarity"], abs=1e-4)
    assert report["mean"]["lpips"] is None and "fallback" in report["loss"]
    recon = np.asarray(Image.open(tmp_path / "res" / "latents.recon.png"))
    assert recon.shape[0] >= 16 and recon.shape[1] >= 32  # target | reconstruction
    # the stored code reproduces the reported reconstruction quality
    from inversion.metrics import psnr

    target = torch.from_numpy(np.array(Image.open(crop).resize((16, 16), Image.LANCZOS))).permute(2, 0, 1)[None]
    with torch.no_grad():
        rec = G.synthesis(torch.from_numpy(data["ws"]), noise_mode="const")
    assert float(psnr(rec, target.float() / 127.5 - 1)) == pytest.approx(float(data["psnr"][0]), abs=0.05)
    assert "PSNR" in capsys.readouterr().out
    # refuses to overwrite without --overwrite
    assert main(["invert", str(crop), "--aligned", "--generator", str(gpath), "--method", "optimize", "--steps", "2",
                 "-o", str(out)]) == 2
    assert main(["invert", str(crop), "--aligned", "--generator", str(gpath), "--method", "optimize", "--steps", "2",
                 "-o", str(out), "--overwrite"]) == 0
    assert str(np.load(out)["method"]) == "optimize"


def test_invert_photo_aligns_first(models, tmp_path):
    G, gpath, epath, _ = models
    out = tmp_path / "photo.npz"
    rc = main(["invert", str(PHOTO), "--generator", str(gpath), "--encoder", str(epath), "--method", "encoder",
               "-o", str(out)])
    assert rc == 0
    data = np.load(out)
    assert data["ws"].shape == (1, G.num_ws, G.w_dim)
    assert data["quad"].shape == (1, 4, 2) and list(data["face_index"]) == [0]


def test_invert_errors(models, tmp_path):
    _, gpath, _, crop = models
    assert main(["invert", str(tmp_path / "missing.jpg"), "--generator", str(gpath)]) == 3
    assert main(["invert", str(crop), "--aligned", "--generator", str(gpath), "--w-space", "z"]) == 2
    assert main(["invert", str(crop), "--aligned", "--generator", str(gpath), "--method", "encoder",
                 "-o", str(tmp_path / "x.npz")]) == 2  # no encoder given


def test_train_encoder_command(models, tmp_path):
    _, gpath, _, _ = models
    out = tmp_path / "enc_run"
    rc = main(["train", "encoder", "--generator", str(gpath), "--out", str(out), "--steps", "2", "--batch-size", "4",
               "--width", "8", "--device", "cpu", "--checkpoint-every", "1"])
    assert rc == 0
    enc = load_encoder(out / "encoder.safetensors")
    assert enc.arch == "light" and (out / "checkpoint.pt").is_file()
    assert main(["train", "encoder", "--generator", str(gpath), "--out", str(out), "--arch", "e4e"]) == 2


def test_train_encoder_id_weight_option(models, tmp_path):
    _, gpath, _, _ = models
    out = tmp_path / "enc_id"
    args = ["train", "encoder", "--generator", str(gpath), "--out", str(out), "--steps", "2", "--batch-size", "2",
            "--width", "8", "--device", "cpu", "--id-weight"]
    assert main(args + ["0.25"]) == 0
    assert json.loads((out / "config.json").read_text())["id_weight"] == 0.25
    assert all(json.loads(line)["identity"] > 0 for line in (out / "log.jsonl").read_text().splitlines())
    assert main(args[:4] + [str(tmp_path / "other")] + args[5:] + ["-1"]) == 2  # negative weight refused


def test_invert_identity_weight_and_precision_options(models, tmp_path):
    _, gpath, epath, crop = models
    out = tmp_path / "id.npz"
    base = ["invert", str(crop), "--aligned", "--generator", str(gpath), "--encoder", str(epath), "--steps", "3"]
    assert main(base + ["--id-weight", "0.5", "--precision", "float32", "--no-early-stop", "-o", str(out)]) == 0
    report = json.loads((tmp_path / "id.quality.json").read_text())
    assert "identity 0.5" in report["loss"] and report["precision"] == "float32" and report["steps"] == 3
    assert main(base + ["--precision", "fp8", "-o", str(tmp_path / "bad.npz")]) == 2


def test_invert_every_face_of_a_group_photo(models, tmp_path):
    _, gpath, epath, _ = models
    photo = Path(__file__).parent / "fixtures" / "align" / "dlib_voc_2008_001009.jpg"  # two faces
    out = tmp_path / "group.npz"
    assert main(["invert", str(photo), "--generator", str(gpath), "--encoder", str(epath), "--method", "encoder",
                 "-o", str(out)]) == 0
    data = np.load(out)
    assert list(data["face_index"]) == [0, 1] and data["ws"].shape[0] == 2 and data["quad"].shape == (2, 4, 2)
    assert not np.allclose(data["ws"][0], data["ws"][1])
    report = json.loads((tmp_path / "group.quality.json").read_text())
    assert [f["face"] for f in report["faces"]] == [0, 1]
    assert report["mean"]["psnr"] == pytest.approx(float(np.mean(data["psnr"])), abs=1e-3)
