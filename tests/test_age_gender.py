"""The UTKFace age/gender predictor learns labels from file names and round-trips through safetensors."""
from __future__ import annotations

import torch

from navigator.age_gender import load_age_gender, parse_utkface_name, train_age_gender


def test_parse_utkface_names():
    assert parse_utkface_name("utkface/26_1_2_20170116.jpg.chip.jpg") == (26, 1)
    assert parse_utkface_name("100_0_0_x.jpg") == (100, 0)
    assert parse_utkface_name("photo.jpg") is None


def test_learns_synthetic_labels_and_round_trips(tmp_path):
    g = torch.Generator().manual_seed(0)
    n = 400
    ages = torch.randint(1, 90, (n,), generator=g)
    fem = torch.randint(0, 2, (n,), generator=g)
    # brightness encodes age, the red/blue balance encodes gender, plus noise
    base = (ages.float() / 90 * 180 + 30).reshape(n, 1, 1, 1).expand(n, 3, 32, 32).clone()
    base[:, 0] += torch.where(fem == 1, 30.0, -30.0).reshape(n, 1, 1)
    images = (base + torch.randn(n, 3, 32, 32, generator=g) * 8).clamp(0, 255).to(torch.uint8)
    names = [f"{a}_{s}_0_x.jpg" for a, s in zip(ages.tolist(), fem.tolist())]
    pred = train_age_gender(images, names, steps=150, batch=64, holdout=0.2, progress=False, width=8)
    m = pred.metrics
    assert m["gender_accuracy"] > 0.85
    assert m["age_mae_years"] < 0.6 * m["age_mae_median_baseline"]
    path = pred.save(tmp_path / "ag.safetensors")
    again = load_age_gender(path)
    x = images[:8].float() / 127.5 - 1
    assert torch.allclose(pred(x), again(x)) and again.metrics == m
