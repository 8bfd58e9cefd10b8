"""e4e encoder: golden numerics against the official code, official checkpoint layout, file formats."""
from __future__ import annotations

import functools
import json
import math
import zlib

import pytest
import torch

from editkit.errors import CheckpointError
from inversion import Encoder4Editing, LightEncoder, load_encoder, save_encoder
from inversion.encoders import build_encoder, encoder_from_e4e_checkpoint

E4E = "e4e"


def _manifest(fixtures_dir, name):
    return json.loads((fixtures_dir / E4E / name).read_text())


def recipe_weights(manifest: list, seed: int) -> dict:
    """The golden README's recipe: deterministic weights per (name, shape)."""
    sd = {}
    for name, shape, _ in manifest:
        if name.endswith("num_batches_tracked"):
            sd[name] = torch.zeros(shape, dtype=torch.int64)
            continue
        g = torch.Generator().manual_seed((zlib.crc32(name.encode()) + seed) % 2 ** 31)
        x = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("running_var"):
            x = 1 + 0.1 * x.abs()
        elif len(shape) >= 2:
            x = x / math.sqrt(math.prod(shape[1:]))
        else:
            x = 0.1 * x
        sd[name] = x
    return sd


def test_e4e_state_dict_keys_match_manifest(fixtures_dir):
    manifest = _manifest(fixtures_dir, "manifest-encoder.json")["encoder"]
    with torch.device("meta"):
        enc = Encoder4Editing(stylegan_size=1024)
    sd = enc.state_dict()
    assert list(sd) == [n for n, _, _ in manifest]
    assert all(tuple(sd[n].shape) == tuple(s) for n, s, _ in manifest)


def test_e4e_golden_codes(fixtures_dir):
    """Recipe weights + the golden input reproduce the official encoder's raw codes (< 1e-4)."""
    golden = torch.load(fixtures_dir / E4E / "recipe-golden.pt", weights_only=True)
    manifest = _manifest(fixtures_dir, "manifest-encoder.json")["encoder"]
    with torch.device("meta"):
        enc = Encoder4Editing(stylegan_size=1024)
    enc.load_state_dict(recipe_weights(manifest, int(golden["seed"])), strict=True, assign=True)
    enc.eval()
    with torch.no_grad():
        codes = enc(golden["x"][:1])
    assert codes.shape == (1, 18, 512)
    err = (codes - golden["codes"][:1]).abs().max().item()
    assert err < 1e-4, err
    # The coarse rows all share the base code w0 plus their own delta: rows differ.
    assert (codes[0, 1] - codes[0, 0]).abs().max() > 1e-3


def test_official_checkpoint_layout_loads_completely(fixtures_dir):
    """Every encoder.* entry of e4e_ffhq_encode.pt maps onto Encoder4Editing, with the right shape."""
    man = _manifest(fixtures_dir, "manifest-e4e_ffhq_encode.json")
    assert man["top_level_keys"] == ["state_dict", "latent_avg", "opts"]
    state = {n: torch.empty(s, dtype=getattr(torch, d), device="meta") for n, s, d in man["state_dict"]}
    ckpt = {"state_dict": state, "latent_avg": torch.zeros(man["latent_avg_shape"]),
            "opts": {"encoder_type": "Encoder4Editing", "stylegan_size": 1024, "start_from_latent_avg": True}}
    enc = encoder_from_e4e_checkpoint(ckpt)
    n_enc = sum(1 for n in state if n.startswith("encoder."))
    assert n_enc == 621
    assert len(enc.net.state_dict()) == n_enc
    assert sum(p.numel() for p in enc.net.parameters()) == 267_136_704
    assert (enc.num_ws, enc.w_dim, enc.input_size) == (18, 512, 256)


@functools.lru_cache(maxsize=1)
def _small_e4e_checkpoint_cached(seed=0):
    """An official-layout checkpoint for a 16-px generator (num_ws 6): same code path, small file."""
    torch.manual_seed(seed)
    enc = Encoder4Editing(stylegan_size=16).eval()
    for m in enc.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    sd = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    sd["decoder.style.1.weight"] = torch.randn(4, 4)
    latent_avg = torch.randn(6, 512)
    return enc, {"state_dict": sd, "latent_avg": latent_avg,
                 "opts": {"encoder_type": "Encoder4Editing", "stylegan_size": 16, "checkpoint_path": "x"}}


def _small_e4e_checkpoint():
    raw, ckpt = _small_e4e_checkpoint_cached()
    return raw, {**ckpt, "state_dict": dict(ckpt["state_dict"])}


def test_load_encoder_end_to_end_official_format(tmp_path):
    raw, ckpt = _small_e4e_checkpoint()
    path = tmp_path / "e4e_small.pt"
    torch.save(ckpt, path)
    enc = load_encoder(path)
    assert (enc.num_ws, enc.w_dim, enc.arch, enc.input_size) == (6, 512, "e4e", 256)
    assert not enc.training
    raw_sd = raw.state_dict()
    loaded = enc.net.state_dict()
    assert list(loaded) == list(raw_sd)
    assert all(torch.equal(loaded[k], raw_sd[k]) for k in raw_sd)
    assert torch.equal(enc.latent_avg, ckpt["latent_avg"])
    # (the forward numerics of Encoder4Editing are the golden test's job; LatentEncoder.forward is
    # checked on the light encoder, which shares it)
    assert enc.prepare(torch.zeros(1, 3, 64, 64)).shape[-1] == 256


def test_load_encoder_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_encoder(tmp_path / "missing.pt")
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_encoder(bad)
    torch.save({"state_dict": {"decoder.x": torch.zeros(1)}}, tmp_path / "nodec.pt")
    with pytest.raises(CheckpointError, match="encoder"):
        load_encoder(tmp_path / "nodec.pt")
    _, ckpt = _small_e4e_checkpoint()
    del ckpt["state_dict"]["encoder.latlayer1.weight"]
    torch.save(ckpt, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="missing"):
        load_encoder(tmp_path / "partial.pt")


def test_light_encoder_shapes_and_zero_init():
    net = LightEncoder(num_ws=10, w_dim=32, input_size=64, width=16)
    x = torch.randn(3, 3, 64, 64)
    out = net(x)
    assert out.shape == (3, 10, 32)
    assert torch.count_nonzero(out) == 0  # zero-initialised heads: starts at the average code
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    out = net(x)
    assert not torch.allclose(out[:, 1], out[:, 0])  # per-layer deltas are active


def test_light_encoder_stays_within_its_cpu_budget():
    """The 20 ms-per-64-px-face budget (timed in benchmarks/inversion.py), held as a deterministic op count:
    294 MFLOP today, i.e. ~6 ms at the ~50 GFLOP/s a 2-core CPU sustains; a wider net fails here."""
    from torch.utils.flop_counter import FlopCounterMode

    enc = build_encoder("light", num_ws=10, w_dim=256, resolution=64).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        enc(torch.randn(1, 3, 64, 64))
    assert counter.get_total_flops() < 400e6


def test_safetensors_roundtrip(tmp_path):
    enc = build_encoder("light", num_ws=6, w_dim=16, resolution=16, latent_avg=torch.randn(16))
    for p in enc.parameters():
        torch.nn.init.normal_(p, std=0.1)
    path = save_encoder(tmp_path / "enc.safetensors", enc, meta={"note": "test"})
    back = load_encoder(path)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(enc.eval()(x), back(x))
    assert back.arch == "light" and back.input_size == 16
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not an editkit encoder"):
        load_encoder(tmp_path / "other.safetensors")


def test_build_encoder_rejects_incompatible_generator():
    with pytest.raises(ValueError, match="512"):
        build_encoder("e4e", num_ws=6, w_dim=16, resolution=16)
    with pytest.raises(ValueError, match="unknown"):
        build_encoder("resnet", num_ws=6, w_dim=16, resolution=16)
