"""The ``facenets`` navigator sensor: stage outputs of the shipped pretrained face networks."""
from __future__ import annotations

import pytest
import torch

from editkit import facenets
from editkit.errors import UsageError
from navigator.sensors import FACENET_TRUNKS, FaceNetSensor, build_sensor


def test_default_sensor_maps_shapes_and_gradients():
    s = build_sensor("facenets")
    assert isinstance(s, FaceNetSensor) and s.name == "facenets"
    assert s.trunks == ("landmarks", "expression", "age-gender")
    img = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    feats = s(img)
    assert [tuple(f.shape[1:]) for f in feats[:4]] == [(32, 56, 56), (64, 28, 28), (128, 14, 14), (256, 7, 7)]
    assert len(feats) == 4 + 4 + 5 and tuple(feats[-1].shape[1:]) == (256, 7, 7)
    sum(f.square().mean() for f in feats).backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in s.parameters())
    s.train()
    assert not s.training


def test_sensor_equals_the_networks_on_faceapi_inputs():
    s = build_sensor("facenets-landmarks+recognition")
    assert s.name == "facenets-landmarks+recognition" and len(s(torch.zeros(1, 3, 32, 32))) == 8
    img = torch.rand(1, 3, 48, 48) * 2 - 1
    rgb = (img + 1) * 127.5
    ref = facenets.load("recognition").features(facenets.to_input(rgb, 150))["conv64_down"]
    assert torch.allclose(s(img)[5], ref, atol=1e-5)
    assert s.nets["landmarks"] is not facenets.load("landmarks68")  # a private copy: .to() leaves the cache alone


def test_unknown_trunk_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown facenets sensor trunk"):
        build_sensor("facenets-arcface")
    assert set(FACENET_TRUNKS) == {"landmarks", "expression", "age-gender", "recognition"}


def test_train_navigator_cli_with_facenets_sensor(tmp_path):
    import editkit
    from conftest import make_tiny_generator
    from editkit.cli import main
    from navigator import load_navigator

    net = editkit.save_network(tmp_path / "g.safetensors", make_tiny_generator())
    out = tmp_path / "nav"
    assert main(["train", "navigator", "--generator", str(net), "--out", str(out), "--directions", "2",
                 "--batch", "4", "--kimg", "0.008", "--pca-samples", "500", "--components", "4",
                 "--sensor", "facenets-landmarks", "--snapshot-every", "0", "--no-progress"]) == 0
    nav = load_navigator(out / "navigator.safetensors")
    assert nav.info["sensor"] == "facenets-landmarks"
