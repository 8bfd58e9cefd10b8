"""The bundled model ships complete and meets its quality bars, checked at a small scale."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import editkit
from editkit.bundle import load_bundle, verify_bundle
from editkit.registry import bundled_path

UTKFACE = Path(__file__).parent / "fixtures" / "utkface"


@pytest.fixture(scope="module")
def bundle():
    return verify_bundle(load_bundle(bundled_path()))


def test_bundle_is_complete_and_within_budget(bundle):
    assert bundle.total_bytes() <= 50 * 2 ** 20
    G = editkit.load_generator(bundle.generator_path())
    assert (G.resolution, G.num_ws) == (64, 10)
    assert bundle.alignment == "utkface"
    assert bundle.model_card_path() is not None and "UTKFace" in bundle.model_card_path().read_text()
    from navigator.io import load_navigator

    for name in ("binary", "prototype"):
        nav = load_navigator(bundle.navigator_path(name))
        assert 16 <= nav.num_directions <= 32 and nav.num_ws == 10
        assert all(lo < 0 < hi for lo, hi in nav.strength_range)


def test_directions_are_named_with_at_least_six_attributes(bundle):
    from navigator.io import load_navigator

    nav = load_navigator(bundle.navigator_path())
    names = {n.rsplit("-", 1)[0] if n and n.rsplit("-", 1)[-1].isdigit() else n for n in nav.labels if n}
    assert len(names) >= 6, nav.labels


def _faces() -> torch.Tensor:
    arr = [np.asarray(Image.open(p).convert("RGB").resize((64, 64), Image.LANCZOS)) for p in sorted(UTKFACE.glob("*.jpg"))]
    return torch.from_numpy(np.stack(arr)).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_hybrid_reconstruction_quality(bundle):
    from inversion import invert, load_encoder

    G = editkit.load_generator(bundle.generator_path())
    enc = load_encoder(bundle.encoder_path())
    faces = _faces()
    enc_only = invert(G, faces, method="encoder", encoder=enc)
    hybrid = invert(G, faces, method="hybrid", encoder=enc)
    assert hybrid.metrics["psnr_mean"] > enc_only.metrics["psnr_mean"] + 1.0
    assert hybrid.metrics["psnr_mean"] >= 22.0, hybrid.metrics


def test_age_direction_changes_predicted_age(bundle):
    """The direction labelled 'age' moves the age predictor's output the way its name says."""
    from navigator.age_gender import load_age_gender
    from navigator.io import load_navigator

    nav = load_navigator(bundle.navigator_path())
    if "age" not in nav.labels:
        pytest.skip("the default navigator has no direction named 'age'")
    k = nav.labels.index("age")
    G = editkit.load_generator(bundle.generator_path())
    ag = load_age_gender(bundle.path("age_gender.safetensors"))
    ws = G.mapping(torch.randn(16, G.z_dim, generator=torch.Generator().manual_seed(0)), truncation_psi=0.5)
    s = nav.strength_range[k][1]
    with torch.no_grad():
        older = ag(G.synthesis(nav.edit(ws, k, s)))[:, 0]
        younger = ag(G.synthesis(nav.edit(ws, k, -s)))[:, 0]
    assert (older - younger).mean() > 3.0


def test_build_report_matches_the_shipped_files(bundle):
    report = json.loads(bundle.path("build_report.json").read_text())
    assert report["default_navigator"] == bundle.default_navigator
    for name in ("binary", "prototype", "ganspace", "sefa"):
        assert {"disentanglement", "discovered_attributes"} <= set(report["metrics"][name])
