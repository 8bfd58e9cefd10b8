"""The generator reproduces the official implementations' outputs (golden files, float32 CPU)."""
from __future__ import annotations

import pytest
import torch

import editkit

TOL = 1e-5  # README: max abs error < 1e-5 against the golden outputs


def _golden(fixtures_dir, name):
    return torch.load(fixtures_dir / "golden" / name, map_location="cpu", weights_only=True)


def _maxerr(a, b):
    return (a - b).abs().max().item()


def test_nvidia_pickle_reproduces_official_outputs(fixtures_dir):
    g = _golden(fixtures_dir, "nvidia/tiny-golden.pt")
    net = editkit.load_network(fixtures_dir / "golden/nvidia/tiny.pkl")
    G = net.G
    assert (G.z_dim, G.w_dim, G.num_ws, G.resolution) == (32, 32, 8, 32)
    assert _maxerr(G.w_avg, g["w_avg"]) < TOL
    with torch.no_grad():
        assert _maxerr(G.mapping(g["z"], truncation_psi=1.0), g["ws_psi1"]) < TOL
        assert _maxerr(G.mapping(g["z"], truncation_psi=0.7), g["ws_psi07"]) < TOL
        assert _maxerr(G.synthesis(g["ws_psi07"], noise_mode="const"), g["img_const_psi07"]) < TOL
        assert _maxerr(G.synthesis(g["ws_psi07"], noise_mode="none"), g["img_none_psi07"]) < TOL
        assert _maxerr(G.synthesis(g["ws_plus"], noise_mode="const"), g["img_const_wplus"]) < TOL
        # batch of one takes the fused path: same function
        assert _maxerr(G.synthesis(g["ws_plus"][1:2]), g["img_const_wplus"][1:2]) < TOL
        assert _maxerr(G(g["z"], truncation_psi=0.7, noise_mode="const"), g["img_const_psi07"]) < TOL
    # the architecture came from the file, not from a name
    assert net.meta["init_kwargs"]["synthesis_kwargs"]["conv_clamp"] == 256
    assert G.config["conv_clamp"] == 256 and G.config["num_fp16_res"] == 2


def test_nvidia_pickle_discriminator_is_loaded(fixtures_dir):
    net = editkit.load_network(fixtures_dir / "golden/nvidia/tiny.pkl")
    assert net.D is not None
    img = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        logits = net.D(img)
        feats = net.D.features(img)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()
    assert [f.shape[-1] for f in feats] == [16, 8, 4]


def test_rosinality_checkpoint_reproduces_official_outputs(fixtures_dir):
    g = _golden(fixtures_dir, "rosinality/tiny-golden.pt")
    G = editkit.load_generator(fixtures_dir / "golden/rosinality/tiny.pt")
    assert (G.num_ws, G.resolution) == (8, 32)
    with torch.no_grad():
        assert _maxerr(G.mapping(g["z"])[:, 0], g["w"]) < TOL
        assert _maxerr(G(g["z"], noise_mode="const"), g["img_z"]) < TOL
        assert _maxerr(G(g["z"], truncation_psi=0.7, noise_mode="const"), g["img_trunc07"]) < TOL
        assert _maxerr(G.synthesis(g["ws_plus"], noise_mode="const"), g["img_wplus"]) < TOL


def test_noise_modes_differ_as_expected(fixtures_dir):
    G = editkit.load_generator(fixtures_dir / "golden/nvidia/tiny.pkl")
    ws = G.mapping(torch.randn(2, 32))
    with torch.no_grad():
        a, b = G.synthesis(ws, "const"), G.synthesis(ws, "const")
        r1, r2 = G.synthesis(ws, "random"), G.synthesis(ws, "random")
    assert torch.equal(a, b)
    assert not torch.equal(r1, r2)
    with pytest.raises(ValueError):
        G.synthesis(ws, "bogus")


def test_generator_is_differentiable_wrt_ws(tiny_generator):
    ws = tiny_generator.mapping(torch.randn(2, 16)).clone().requires_grad_(True)
    tiny_generator.synthesis(ws, noise_mode="random").square().mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_generator.parameters())


@pytest.mark.parametrize("arch", ["skip", "resnet", "orig"])
@pytest.mark.parametrize("res", [4, 8, 32])
def test_any_resolution_and_architecture(arch, res):
    G = editkit.Generator(z_dim=8, w_dim=8, resolution=res, channel_base=64, channel_max=8, architecture=arch,
                          conv_clamp=256)
    assert G.num_ws == 2 * (res.bit_length() - 1) - 2
    with torch.no_grad():
        img = G(torch.randn(3, 8))
    assert img.shape == (3, 3, res, res) and torch.isfinite(img).all()


def test_native_format_round_trip(tmp_path, fixtures_dir):
    src = fixtures_dir / "golden/nvidia/tiny.pkl"
    dst = editkit.convert(src, tmp_path / "tiny.safetensors")
    a, b = editkit.load_network(src), editkit.load_network(dst)
    assert b.meta["converted_from"] == "tiny.pkl" and b.D is not None
    ws = a.G.mapping(torch.randn(2, 32), truncation_psi=0.5)
    with torch.no_grad():
        assert torch.equal(a.G.synthesis(ws), b.G.synthesis(ws))
        assert torch.equal(a.D(a.G.synthesis(ws)), b.D(a.G.synthesis(ws)))
    assert torch.equal(a.G.w_avg, b.G.w_avg)


def test_rosinality_training_checkpoint_without_latent_avg(tmp_path, fixtures_dir):
    ckpt = torch.load(fixtures_dir / "golden/rosinality/tiny.pt", weights_only=True)
    torch.save({"g": ckpt["g_ema"], "g_ema": ckpt["g_ema"], "d": {}, "args": {"size": 32}}, tmp_path / "train.pt")
    net = editkit.load_network(tmp_path / "train.pt")
    assert "estimated" in net.meta["w_avg"]
    # the estimate is the mean of mapped samples (checked against an independent draw)
    with torch.no_grad():
        ref = net.G.mapping(torch.randn(20000, 32, generator=torch.Generator().manual_seed(1)))[:, 0].mean(0)
    assert (net.G.w_avg - ref).norm() / ref.norm() < 0.05


@pytest.mark.parametrize("dtype,tol", [(torch.float16, 0.02), (torch.bfloat16, 0.1)])
def test_half_precision_high_resolution_blocks(fixtures_dir, dtype, tol):
    """num_fp16_res blocks run in half precision on request (meant for CUDA; also runs on the CPU)."""
    G = editkit.load_generator(fixtures_dir / "golden/nvidia/tiny.pkl")
    ws = G.mapping(torch.randn(3, 32, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        ref = G.synthesis(ws)
        out = G.set_precision(dtype).synthesis(ws)
        G.set_precision(None)
        again = G.synthesis(ws)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert 0 < (out - ref).abs().max() < tol
    assert torch.equal(again, ref)
