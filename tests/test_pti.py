"""``--method pti``: per-face generator tuning, and its regularisers keeping edits as strong as without it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_tiny_generator
from inversion import invert
from inversion.metrics import psnr
from inversion.pti import PTISettings, tune_generator


def _mse(a, b):
    return (a - b).pow(2).flatten(1).mean(1)


@pytest.fixture(scope="module")
def setup():
    """A tiny generator, a pivot code, a target with detail the pivot lacks, and two W+ edits."""
    G = make_tiny_generator(0, 16)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        pivot = G.mapping(torch.randn(1, 16, generator=g))
        target = G.synthesis(pivot + 0.3 * torch.randn(1, G.num_ws, 16, generator=g), noise_mode="const")
        target = (target + 0.2 * torch.randn(target.shape, generator=g)).clamp(-1, 1)
        edit = torch.randn(1, G.num_ws, 16, generator=g) * 0.25
        other = torch.randn(1, G.num_ws, 16, generator=g) * 0.25
    return G, pivot, target, edit, other


def _edit_ratio(G0, G1, pivot, d) -> float:
    with torch.no_grad():
        m0 = (G0.synthesis(pivot + d, noise_mode="const") - G0.synthesis(pivot, noise_mode="const")).abs().mean()
        m1 = (G1.synthesis(pivot + d, noise_mode="const") - G1.synthesis(pivot, noise_mode="const")).abs().mean()
    return float(m1 / m0)


def test_regularised_tuning_keeps_edit_strength(setup):
    G, pivot, target, edit, other = setup
    before = {k: v.clone() for k, v in G.state_dict().items()}
    base_psnr = float(psnr(G.synthesis(pivot, noise_mode="const"), target))
    free = tune_generator(G, target, pivot, _mse, PTISettings(steps=300, lr=3e-3, locality_weight=0, offsets_weight=0))
    reg = tune_generator(G, target, pivot, _mse, PTISettings(steps=300, lr=3e-3), offsets=edit)
    # both fit the face far better than the pivot alone
    assert float(psnr(free.image, target)) > base_psnr + 6
    assert float(psnr(reg.image, target)) > base_psnr + 4
    # unregularised tuning makes edits markedly stronger (the failure the issue measured: 1.55 here) ...
    assert _edit_ratio(G, free.generator, pivot, edit) > 1.3
    # ... the regularisers keep the requested edit within 10 % of the untuned generator's (0.98 here),
    # and bend an unseen edit less than free tuning does (0.95 vs 1.19 here; not guaranteed in general:
    # PTI's random locality samples rarely point along a given direction)
    assert abs(_edit_ratio(G, reg.generator, pivot, edit) - 1) < 0.1
    assert abs(_edit_ratio(G, reg.generator, pivot, other) - 1) < abs(_edit_ratio(G, free.generator, pivot, other) - 1)
    # the shared generator is untouched: only the per-face copy was tuned
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert free.identity == "missing" and len(reg.history) == 300


def test_identity_term_and_invert_method(setup):
    G, pivot, target, edit, _ = setup
    calls = []

    def identity(images):  # a stand-in embedding network: the identity term takes part when given
        calls.append(images.shape[0])
        return images.mean(dim=(2, 3))

    out = tune_generator(G, target, pivot, _mse, PTISettings(steps=3), identity=identity)
    assert out.identity == "used" and len(calls) == 1 + 3
    res = invert(G, target.expand(2, -1, -1, -1), method="pti", steps=20, pti=PTISettings(steps=20, lr=3e-3),
                 loss_fn=_mse)
    assert res.method == "pti" and len(res.generators) == 2 and res.ws.shape == (2, G.num_ws, G.w_dim)
    assert res.generators[0] is not G and res.generators[0] is not res.generators[1]
    assert res.metrics["identity_loss"] == "missing"
    assert np.all(np.asarray(res.metrics["psnr"]) > np.asarray(res.metrics["pivot_psnr"]))
