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
    G = editkit.load_generator(bundle.generator_path)
    assert (G.resolution, G.num_ws) == (64, 10)
    assert bundle.alignment == "utkface"
    assert bundle.model_card_path is not None and "UTKFace" in bundle.model_card_path.read_text()
    from navigator.io import load_navigator

    for name in ("binary", "prototype"):
        nav = load_navigator(bundle.navigator_path(name))
        assert 16 <= nav.num_directions <= 32 and nav.num_ws == 10
        assert all(lo < 0 < hi for lo, hi in nav.strength_range)


def test_default_navigator_discovers_at_least_six_attributes(bundle):
    """The paper's 'discovered attributes': distinct top attributes over the directions (from the build's
    responses, stored with the navigator), at least 6 for the default navigator."""
    from navigator.io import load_navigator

    nav = load_navigator(bundle.navigator_path())
    tops = {t[0][0] for t in nav.info["top_attributes"]}
    assert len(tops) >= 6, tops
    assert len(nav.info["top_attributes"]) == nav.num_directions


def _faces() -> torch.Tensor:
    arr = [np.asarray(Image.open(p).convert("RGB").resize((64, 64), Image.LANCZOS)) for p in sorted(UTKFACE.glob("*.jpg"))]
    return torch.from_numpy(np.stack(arr)).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_hybrid_reconstruction_quality(bundle):
    from inversion import invert, load_encoder

    G = editkit.load_generator(bundle.generator_path)
    enc = load_encoder(bundle.encoder_path)
    faces = _faces()
    enc_only = invert(G, faces, method="encoder", encoder=enc)
    hybrid = invert(G, faces, method="hybrid", encoder=enc)
    assert hybrid.metrics["psnr_mean"] > enc_only.metrics["psnr_mean"] + 1.0
    assert hybrid.metrics["psnr_mean"] >= 22.0, hybrid.metrics


@pytest.mark.parametrize("label,attribute", [("skin-light", "skin_brightness")])  # the names the bundle keeps
def test_named_direction_moves_its_attribute(bundle, label, attribute):
    """A direction's name says what +strength does: recomputed with the offline probe on fresh samples."""
    from navigator.io import load_navigator
    from navigator.probe import ATTRIBUTES, LandmarkProbe

    nav = load_navigator(bundle.navigator_path())
    if label not in nav.labels:
        pytest.skip(f"the default navigator has no direction named {label!r}")
    k = nav.labels.index(label)
    G = editkit.load_generator(bundle.generator_path)
    ws = G.mapping(torch.randn(12, G.z_dim, generator=torch.Generator().manual_seed(5)), truncation_psi=0.5)
    s = nav.strength_range[k][1]
    probe = LandmarkProbe()
    a = ATTRIBUTES.index(attribute)
    with torch.no_grad():
        d = probe(G.synthesis(nav.edit(ws, k, s)))[:, a] - probe(G.synthesis(nav.edit(ws, k, -s)))[:, a]
    d = d[torch.isfinite(d)]
    assert d.mean() > 0 and d.mean() / (d.std() / len(d) ** 0.5) > 2.0, d


def test_build_report_matches_the_shipped_files(bundle):
    report = json.loads(bundle.path("build_report.json").read_text())
    assert report["default_navigator"] == bundle.default_navigator
    for name in ("binary", "prototype", "ganspace", "sefa"):
        assert {"disentanglement", "discovered_attributes"} <= set(report["metrics"][name])
