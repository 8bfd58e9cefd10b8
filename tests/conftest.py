"""Shared fixtures: golden files copied from the official implementations and tiny generators."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"

# Small ops dominate the tests: few threads avoid OpenMP spin-waits on a loaded 2-core machine.
torch.set_num_threads(int(os.environ.get("EDITKIT_TEST_THREADS", "1")))


@pytest.fixture
def no_vgg16(monkeypatch, tmp_path):
    """Tests must not depend on a VGG16 file that happens to be in the user's torch cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("EDITKIT_VGG16", raising=False)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


def make_tiny_generator(seed: int = 0, resolution: int = 16):
    """A small random generator (num_ws = 2*log2(res)-2) with a w_avg that is not zero."""
    from editkit.networks import Generator

    torch.manual_seed(seed)
    G = Generator(z_dim=16, w_dim=16, resolution=resolution, channel_base=256, channel_max=16)
    with torch.no_grad():
        G.mapping(torch.randn(256, 16), update_w_avg=False)
        G.mapping.w_avg.copy_(G.mapping(torch.randn(512, 16))[:, 0].mean(0))
    return G.eval().requires_grad_(False)


@pytest.fixture
def tiny_generator():
    return make_tiny_generator()
