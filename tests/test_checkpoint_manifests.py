"""Every full-size official layout maps completely onto editkit's generator (no missing/unexpected keys)."""
from __future__ import annotations

import json

import pytest
import torch

from editkit.checkpoints.formats import _nvidia_g_kwargs, rosinality_to_editkit
from editkit.networks import Generator


def _shapes(module_or_dict):
    items = module_or_dict.state_dict().items() if hasattr(module_or_dict, "state_dict") else module_or_dict.items()
    return {k: tuple(v.shape) for k, v in items}


@pytest.mark.parametrize("name", ["manifest-ffhq-1024-config-f.json", "manifest-ffhq-256-paper256.json", "tiny-manifest.json"])
def test_nvidia_manifest_maps_completely(fixtures_dir, name):
    m = json.loads((fixtures_dir / "golden/nvidia" / name).read_text())
    layout = {k: tuple(s) for k, s, _ in m["G_ema" if "G_ema" in m else "params"]}
    state = {k: torch.empty(s, device="meta") for k, s in layout.items()}
    kwargs = _nvidia_g_kwargs(m["init_kwargs"], state)
    with torch.device("meta"):
        G = Generator(**kwargs)
    assert _shapes(G) == layout
    assert G.num_ws == m["num_ws"]


@pytest.mark.parametrize("name,res", [("manifest-ffhq-1024.json", 1024), ("manifest-ffhq-256.json", 256), ("tiny-manifest.json", 32)])
def test_rosinality_manifest_maps_completely(fixtures_dir, name, res):
    m = json.loads((fixtures_dir / "golden/rosinality" / name).read_text())
    sd = {k: torch.empty(s, device="meta") for k, s, _ in m["g_ema"]}
    used = set()

    class Tracking(dict):
        def __getitem__(self, key):
            used.add(key)
            return dict.__getitem__(self, key)

    out, kwargs = rosinality_to_editkit(Tracking(sd))
    with torch.device("meta"):
        G = Generator(**kwargs)
    own = _shapes(G)
    assert kwargs["resolution"] == res and G.num_ws == m["n_latent"]
    assert set(out) == {k for k in own if not k.endswith("resample_filter")}
    assert all(tuple(out[k].shape) == own[k] for k in out)
    # every source tensor is used except constant FIR kernels
    unused = {k for k in sd if k not in used}
    assert all(k.endswith(("blur.kernel", "upsample.kernel")) for k in unused), sorted(unused)[:5]


def test_e4e_manifest_decoder_maps_completely(fixtures_dir):
    m = json.loads((fixtures_dir / "golden/e4e/manifest-e4e_ffhq_encode.json").read_text())
    sd = {k[len("decoder."):]: torch.empty(s, device="meta") for k, s, _ in m["state_dict"] if k.startswith("decoder.")}
    out, kwargs = rosinality_to_editkit(sd)
    with torch.device("meta"):
        G = Generator(**kwargs)
    assert G.num_ws == m["latent_avg_shape"][0] == 18
    assert set(out) == {k for k in _shapes(G) if not k.endswith("resample_filter")}
