"""Shared pieces of the product-surface tests: a tiny bundle and the photo fixtures."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

PRODUCT = Path(__file__).parent / "fixtures" / "product"
FACE_PHOTO = PRODUCT / "astronaut.jpg"  # NASA, public domain (scikit-image's astronaut): one face + a weak false detection
NO_FACE_PHOTO = PRODUCT / "camera.jpg"  # scikit-image's cameraman at a distance: no detectable face
REPO = Path(__file__).resolve().parents[1]
EDITKIT_BIN = Path(sys.executable).parent / "editkit"

LABELS = ["smile", None, "age", "agex"]


def build_tiny_bundle(out: Path, with_encoder: bool = True, alignment: str | dict = "utkface") -> Path:
    """A complete bundle around a random 16-px generator, a tiny light encoder and a 4-direction navigator."""
    from conftest import make_tiny_generator
    from editkit.bundle import write_bundle
    from inversion.encoders import build_encoder
    from navigator import Navigator

    G = make_tiny_generator(seed=0)
    enc = None
    if with_encoder:
        torch.manual_seed(1)
        enc = build_encoder("light", G.num_ws, G.w_dim, G.resolution, latent_avg=G.w_avg.detach().clone(),
                            width=8, max_channels=16, hidden=16)
    nav = Navigator(len(LABELS), G.num_ws, G.w_dim, direction_mode="free", labels=LABELS,
                    strength_range=[(-2.0, 2.0), (-1.0, 1.0), (-3.0, 3.0), (-1.0, 1.0)], seed=0)
    card = out.parent / f"{out.name}-card.md"
    card.write_text("# tiny test model\nRandom weights, for tests only.\n")
    write_bundle(out, name="tiny", generator=G, encoder=enc, navigators={"free": nav}, alignment=alignment,
                 licence="test only", provenance={"made_by": "tests/product_helpers.py"}, model_card=card)
    return out


def run_editkit(*args: str, env_home: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed console script as a subprocess."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if env_home is not None:
        env["EDITKIT_HOME"] = str(env_home)
    return subprocess.run([str(EDITKIT_BIN), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO)


def copy_face(dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FACE_PHOTO, dst)
    return dst


def mirrored_face(dst: Path) -> Path:
    """A second good photo: the face photo mirrored and saved as PNG."""
    from PIL import Image

    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(Image.open(FACE_PHOTO))[:, ::-1].copy()).save(dst)
    return dst


def truncated_copy(dst: Path) -> Path:
    data = FACE_PHOTO.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: len(data) // 3])
    return dst
