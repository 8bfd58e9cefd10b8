"""Generator inference precision: bf16 only where it is native (detection mocked), within 40 dB PSNR of
float32 on golden-size generators; float32 stays the exact mode."""
from __future__ import annotations

import math

import pytest
import torch

import editkit
from editkit import precision as prec
from editkit.errors import UsageError
from product_helpers import build_tiny_bundle

GOLDEN_TOL = 1e-5
MIN_PSNR_DB = 40.0


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of images in [-1, 1] (peak-to-peak 2)."""
    return 10 * math.log10(4.0 / (a - b).square().mean().item())


def _fake_cpu(monkeypatch, flags: set[str], onednn: bool) -> None:
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(prec, "_onednn_bf16", lambda: onednn)


@pytest.mark.parametrize("flags,onednn,native", [
    ({"avx2", "fma"}, False, False),                                   # AVX2 only (e.g. AMD Zen 3)
    ({"avx512f", "avx512bw", "avx512vl", "avx512dq"}, True, False),  # AVX-512 without BF16: oneDNN emulates
    ({"avx512f", "avx512_bf16"}, True, True),                         # Zen 4, Cooper Lake
    ({"amx_bf16", "amx_tile"}, True, True),                           # Sapphire Rapids
    ({"avx512_bf16"}, False, False),                                  # torch built without oneDNN bf16
])
def test_bf16_is_used_only_where_the_cpu_runs_it_natively(monkeypatch, flags, onednn, native):
    _fake_cpu(monkeypatch, flags, onednn)
    assert prec.cpu_bf16_supported() is native
    assert prec.resolve_precision("auto", "cpu") == ("bf16" if native else "float32")
    assert prec.resolve_precision("float32", "cpu") == "float32"  # the exact mode is always available
    assert prec.resolve_precision("bf16", "cpu") == "bf16"        # explicit request: honoured (maybe slow)
    with pytest.raises(ValueError, match="unknown precision"):
        prec.resolve_precision("fp8", "cpu")
    assert prec.resolve_precision("auto", "cuda") == "float32"  # explicit bf16 only on GPUs


def test_cpu_flags_are_read_from_this_machine():
    flags = prec.cpu_flags()
    assert isinstance(flags, frozenset)
    if flags:  # Linux: the detection looks at real flags, e.g. x86 always has 'fpu' or Arm 'fp'
        assert {"fpu", "fp", "sse2", "asimd"} & flags


@pytest.mark.parametrize("name", ["nvidia/tiny.pkl", "rosinality/tiny.pt"])
def test_bf16_output_within_tolerance_of_float32(fixtures_dir, name):
    G = editkit.load_generator(fixtures_dir / "golden" / name)
    ws = G.mapping(torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(0)), truncation_psi=0.7)
    ws[3:] = ws[3:] + 0.5 * torch.randn(3, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(1))  # W+
    with torch.no_grad():
        ref = G.synthesis(ws)
        assert prec.apply_precision(G, "bf16") == "bf16" and G.precision == "bf16"
        out, single = G.synthesis(ws), G.synthesis(ws[2:3])  # batched and fused (batch of one) paths
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert 0 < (out - ref).abs().max()  # it really ran in reduced precision
    assert _psnr(out, ref) >= MIN_PSNR_DB and _psnr(single, ref[2:3]) >= MIN_PSNR_DB
    # synthesis with gradients (inversion, training) stays float32
    grad_out = G.synthesis(ws)
    assert torch.equal(grad_out, ref)
    assert prec.apply_precision(G, "float32") == "float32"
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws), ref)


def test_exact_mode_matches_golden_files(fixtures_dir):
    g = torch.load(fixtures_dir / "golden/nvidia/tiny-golden.pt", weights_only=True)
    G = editkit.load_generator(fixtures_dir / "golden/nvidia/tiny.pkl")
    prec.apply_precision(G, "bf16")
    prec.apply_precision(G, "float32")
    with torch.no_grad():
        for _ in range(2):  # the second call uses the cached demodulation sums
            assert (G.synthesis(g["ws_psi07"], noise_mode="const") - g["img_const_psi07"]).abs().max() < GOLDEN_TOL
            assert (G.synthesis(g["ws_plus"], noise_mode="const") - g["img_const_wplus"]).abs().max() < GOLDEN_TOL
            assert (G.synthesis(g["ws_plus"][1:2]) - g["img_const_wplus"][1:2]).abs().max() < GOLDEN_TOL


def test_cached_weight_copies_follow_weight_updates(tiny_generator):
    G = tiny_generator
    ws = G.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        before = G.synthesis(ws)
        G.synthesis.b8.conv1.weight.mul_(1.5).add_(0.1)  # in place: same storage, new version
        after = G.synthesis(ws)
        fresh = editkit.Generator.from_config(G.config)
        fresh.load_state_dict(G.state_dict())
        expected = fresh.eval().synthesis(ws)
    assert not torch.equal(before, after)
    assert torch.equal(after, expected)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("prec") / "tiny")


def test_editor_default_follows_detection_and_float32_can_be_forced(monkeypatch, bundle):
    _fake_cpu(monkeypatch, {"avx512_bf16"}, True)
    ed = editkit.Editor(bundle, method="encoder")
    assert ed.precision == "bf16" and ed.G.precision == "bf16"
    exact = editkit.Editor(bundle, method="encoder", precision="float32")
    assert exact.precision == "float32" and exact.G.precision == "float32"
    ws = exact.G.mapping(torch.randn(2, exact.G.z_dim, generator=torch.Generator().manual_seed(0)))
    a, b = ed.synthesize(ws).astype(float), exact.synthesize(ws).astype(float)
    mse = ((a - b) ** 2).mean()
    assert mse > 0 and 10 * math.log10(255.0 ** 2 / mse) >= MIN_PSNR_DB  # the uint8 images it renders
    _fake_cpu(monkeypatch, {"avx2"}, False)
    assert editkit.Editor(bundle, method="encoder").precision == "float32"
    with pytest.raises(UsageError, match="unknown precision"):
        editkit.Editor(bundle, method="encoder", precision="half")
