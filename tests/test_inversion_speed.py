"""Inversion speed features: per-face early stopping, batching, reduced precision and progress."""
from __future__ import annotations

import pytest
import torch

import importlib
from conftest import make_tiny_generator
from editkit.errors import UsageError
from inversion import invert
from inversion.losses import ReconstructionLoss
from inversion.metrics import psnr
from inversion.optimize import Convergence, ProjectorSchedule, optimize_latents

inv_mod = importlib.import_module("inversion.invert")  # the module (the package exports the function)


pytestmark = pytest.mark.usefixtures("no_vgg16")


@pytest.fixture(scope="module")
def generator():
    return make_tiny_generator()


@pytest.fixture(scope="module")
def codes_and_images(generator):
    G = generator
    z = torch.randn(3 * G.num_ws, G.z_dim, generator=torch.Generator().manual_seed(3))
    ws = G.mapping(z, truncation_psi=0.7)[:, 0].reshape(3, G.num_ws, G.w_dim)
    with torch.no_grad():
        return ws, G.synthesis(ws, noise_mode="const")


def pixel_loss():
    return ReconstructionLoss(use_vgg=False, quiet=True)


def test_convergence_rule():
    c = Convergence(patience=3, rel_tol=0.01, min_fraction=0.0)
    assert not c.converged([1.0, 0.9, 0.8], 2, 100)  # too few steps to judge
    assert not c.converged([1.0, 0.9, 0.8, 0.7, 0.6], 4, 100)  # still improving
    assert c.converged([1.0, 0.5, 0.5, 0.4999, 0.4999, 0.4999], 5, 100)  # < 1 % in the last 3 steps
    assert not Convergence(patience=3, rel_tol=0.01, min_fraction=0.5).converged([1.0] * 10, 9, 100)


def test_faces_are_optimised_independently(generator, codes_and_images):
    """Per-face parameters: a face's result does not depend on the other faces of its batch."""
    G = generator
    _, images = codes_and_images
    sched = ProjectorSchedule(steps=15, lr=0.05, lr_rampup=0.0, w_noise=0.0)
    together = optimize_latents(G, images, pixel_loss(), schedule=sched)
    alone = optimize_latents(G, images[1:2], pixel_loss(), schedule=sched)
    assert torch.allclose(together.ws[1], alone.ws[0], atol=1e-5)
    assert together.face_steps == [15, 15, 15]


def test_early_stopping_freezes_converged_faces(generator, codes_and_images):
    """A face that starts at its own code converges at once and leaves the batch; the others go on."""
    G = generator
    ws_true, images = codes_and_images
    init = torch.stack([ws_true[0], G.w_avg.expand(G.num_ws, -1), G.w_avg.expand(G.num_ws, -1)])
    sched = ProjectorSchedule(steps=80, lr=0.05, lr_rampup=0.0, w_noise=0.0)
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, pred, target):
            seen.append(pred.shape[0])
            return (pred - target).pow(2).flatten(1).mean(1)

    conv = Convergence(patience=5, rel_tol=1e-3, min_fraction=0.1)
    out = optimize_latents(G, images, Spy(), init_ws=init, schedule=sched, convergence=conv)
    assert out.face_steps[0] < 15 < 80  # the solved face stopped almost at once
    assert out.face_steps[0] < min(out.face_steps[1:])
    assert seen[0] == 3 and 2 in seen  # it left the batch: later steps rendered fewer faces
    assert sum(seen) < 3 * max(out.face_steps)  # fewer face-steps than without stopping
    assert torch.allclose(out.ws[0], ws_true[0], atol=0.05)  # its code stayed where it converged
    # without early stopping every face runs the whole schedule
    full = optimize_latents(G, images, Spy(), init_ws=init, schedule=sched)
    assert full.face_steps == [80, 80, 80]


def test_invert_defaults_batch_all_faces_and_report_progress(generator, codes_and_images, monkeypatch):
    _, images = codes_and_images
    calls = []
    res = invert(generator, images, method="optimize", steps=30, progress=lambda s, t, l: calls.append((s, t)),
                 measure=False)
    assert [t for _, t in calls] == [30] * len(calls)  # one batch: all faces of the photo together
    assert calls[-1] == (30, 30)
    assert len(res.metrics["steps"]) == 3 and max(res.metrics["steps"]) == res.steps
    calls.clear()
    invert(generator, images, method="optimize", steps=30, batch_size=2, early_stop=False,
           progress=lambda s, t, l: calls.append((s, t)), measure=False)
    steps = [s for s, _ in calls]
    assert steps == sorted(steps) and calls[-1] == (60, 60)  # counted over both batches, monotone
    assert inv_mod.auto_batch_size(64) >= 16 and inv_mod.auto_batch_size(1024) < inv_mod.auto_batch_size(256)


def test_progress_completes_when_faces_stop_early(generator, codes_and_images):
    ws_true, images = codes_and_images
    calls = []
    invert(generator, images, method="optimize", steps=400, stop_psnr=20.0, measure=False,
           progress=lambda s, t, l: calls.append((s, t)))
    assert len(calls) < 400 and calls[-1] == (400, 400)


def test_precision_is_reduced_only_where_supported(monkeypatch):
    assert inv_mod.bf16_supported("cuda") is False
    from editkit import precision

    assert inv_mod.bf16_supported("cpu") == precision.cpu_bf16_supported()
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    assert inv_mod.bf16_supported("cpu") is True and inv_mod.bf16_supported("cuda") is False
    monkeypatch.setattr(inv_mod, "bf16_supported", lambda device: False)
    assert inv_mod.resolve_precision("auto", "cpu") == "float32"
    monkeypatch.setattr(inv_mod, "bf16_supported", lambda device: True)
    assert inv_mod.resolve_precision("auto", "cpu") == "bfloat16"
    assert inv_mod.resolve_precision("float32", "cpu") == "float32"  # the exact mode is always available
    with pytest.raises(UsageError, match="precision"):
        inv_mod.resolve_precision("fp8", "cpu")


def test_bfloat16_optimisation_stays_close_to_float32(generator, codes_and_images, monkeypatch):
    """bf16 autocast changes the arithmetic (results differ) but ends within 0.5 dB of float32."""
    G = generator
    _, images = codes_and_images
    sched = ProjectorSchedule(steps=60, lr=0.1, lr_rampup=0.0, w_noise=0.0)
    res, ws = {}, {}
    for precision in ("float32", "bfloat16"):
        out = optimize_latents(G, images, pixel_loss(), schedule=sched, precision=precision)
        assert out.ws.dtype == torch.float32
        ws[precision] = out.ws
        with torch.no_grad():
            res[precision] = psnr(G.synthesis(out.ws, noise_mode="const"), images)
    assert not torch.equal(ws["float32"], ws["bfloat16"])  # reduced precision was really used
    assert res["float32"].mean() > 18  # the optimisation worked at all
    assert (res["bfloat16"] - res["float32"]).abs().max() < 0.5
    monkeypatch.setattr(inv_mod, "bf16_supported", lambda device: True)
    assert invert(G, images[:1], method="optimize", steps=2, measure=False).precision == "bfloat16"
