"""PCA basis (cache), GANSpace, SeFa, +attention, save/load, sensors."""
import math

import pytest
import torch

from editkit.errors import CheckpointError, MissingWeightsError, UsageError
from navigator import Navigator, load_navigator, save_navigator
from navigator import bases, sensors

torch.set_num_threads(1)


class LinearMapping(torch.nn.Module):
    """w = z · diag(3, 1, 0.5) + (1, 2, 3), broadcast to num_ws layers."""

    def __init__(self, num_ws=4):
        super().__init__()
        self.register_buffer("scale", torch.tensor([3.0, 1.0, 0.5]))
        self.register_buffer("shift", torch.tensor([1.0, 2.0, 3.0]))
        self.num_ws = num_ws
        self.calls = 0

    def forward(self, z, truncation_psi=1.0):
        self.calls += 1
        return (z * self.scale + self.shift)[:, None].repeat(1, self.num_ws, 1)


class FakeG(torch.nn.Module):
    z_dim = w_dim = 3
    num_ws = 4

    def __init__(self):
        super().__init__()
        self.mapping = LinearMapping()

    @property
    def w_avg(self):
        return self.mapping.shift


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDITKIT_CACHE", str(tmp_path / "cache"))


def test_pca_basis_recovers_axes_and_is_cached(tmp_path):
    G = FakeG()
    b = bases.pca_basis(G, n_samples=20000, batch_size=5000)
    assert torch.allclose(b.mean, torch.tensor([1.0, 2.0, 3.0]), atol=0.05)
    assert torch.allclose(b.variances, torch.tensor([9.0, 1.0, 0.25]), rtol=0.05)
    assert torch.allclose(b.components.abs(), torch.eye(3), atol=0.02)
    files = list((tmp_path / "cache" / "pca").glob("*.safetensors"))
    assert len(files) == 1 and bases.mapping_fingerprint(G)[:24] in files[0].name
    calls = G.mapping.calls
    again = bases.pca_basis(G, n_samples=20000, batch_size=5000)
    assert G.mapping.calls == calls                    # served from the cache
    assert torch.equal(again.components, b.components)
    G.mapping.scale[0] = 0.1                           # other weights -> other key -> recomputed
    other = bases.pca_basis(G, n_samples=20000, batch_size=5000)
    assert G.mapping.calls > calls and other.variances[0] < 2


def test_ganspace_baseline():
    G = FakeG()
    nav = bases.ganspace(G, num_directions=2, layers=[1, 2], n_samples=4000)
    assert nav.direction_mode == "fixed" and nav.attention_mode == "fixed"
    assert torch.allclose(nav.directions().abs(), torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]) * math.sqrt(3), atol=0.05)
    assert torch.allclose(nav.attention()[0], torch.tensor([0, 0.5, 0.5, 0]))
    assert not any(p.requires_grad for p in nav.parameters())
    with pytest.raises(UsageError):
        bases.ganspace(G, num_directions=4, n_samples=100)


def test_sefa_normalises_rows_and_sorts_eigenpairs():
    # rows normalised -> A = [[1,0],[0,1],[0,1]] -> AᵀA = diag(1, 2): top eigenvector is e1.
    vecs, vals = bases.sefa_directions([torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 2.0]])])
    assert torch.allclose(vals, torch.tensor([2.0, 1.0]), atol=1e-6)
    assert torch.allclose(vecs[:, 0].abs(), torch.tensor([0.0, 1.0]), atol=1e-6)
    # without the normalisation the 3 would dominate: make sure that is not what happens
    assert vecs[1, 0].abs() > 0.99


def test_sefa_navigator_on_tiny_generator(tiny_G):
    nav = bases.sefa(tiny_G, num_directions=5)
    assert nav.offsets().shape == (5, tiny_G.num_ws, tiny_G.w_dim)
    assert torch.allclose(nav.directions().norm(dim=1), torch.full((5,), math.sqrt(tiny_G.w_dim)), atol=1e-4)
    plus = bases.with_learned_attention(nav, seed=0)
    assert torch.allclose(plus.directions(), nav.directions())
    assert [n for n, p in plus.named_parameters() if p.requires_grad] == ["attention_logits"]
    assert plus.info["method"] == "sefa+attention"


@pytest.fixture
def tiny_G():
    from editkit.networks import Generator
    torch.manual_seed(0)
    return Generator(z_dim=16, w_dim=16, resolution=16, channel_base=256, channel_max=16)


@pytest.mark.parametrize("mode", ["pca", "free", "fixed", "ganspace-fixed-attention"])
def test_save_load_roundtrip(tmp_path, mode):
    basis = torch.linalg.qr(torch.randn(8, 8))[0]
    kw = {}
    if mode == "pca":
        kw = dict(direction_mode="pca", basis=basis, num_components=4)
    elif mode == "free":
        kw = dict(direction_mode="free")
    elif mode == "fixed":
        kw = dict(direction_mode="fixed", fixed_directions=torch.randn(3, 8))
    else:
        kw = dict(direction_mode="fixed", attention_mode="fixed", fixed_directions=torch.randn(3, 8),
                  fixed_attention=bases.uniform_attention(3, 5, [0, 1]))
    nav = Navigator(3, 5, 8, labels=["smile", None, "yaw"], strength_range=[(-2, 2), (-1, 1), (-3, 0.5)],
                    info={"variant": "binary"}, seed=1, **kw)
    path = save_navigator(nav, tmp_path / "nav.safetensors")
    back = load_navigator(path)
    assert torch.allclose(back.offsets(), nav.offsets())
    assert back.labels == ["smile", None, "yaw"] and back.strength_range[2] == (-3.0, 0.5)
    assert back.info == {"variant": "binary"} and back.num_directions == 3


def test_load_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        load_navigator(bad)
    with pytest.raises(CheckpointError):
        load_navigator(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not an editkit navigator"):
        load_navigator(tmp_path / "other.safetensors")


# -- sensors ---------------------------------------------------------------------------------------

def test_imagenet_sensor_needs_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(MissingWeightsError, match="alexnet-owt-7be5be79.pth"):
        sensors.build_sensor("alexnet")
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth"):
        sensors.build_sensor("vgg16")


def test_alexnet_sensor_loads_hub_cache_file_and_gives_five_relu_stages(tmp_path, monkeypatch):
    import torchvision
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    ref = sensors.random_alexnet(3).stages  # any torchvision-layout AlexNet features
    ref = torch.nn.Sequential(*[m for st in ref for m in st])
    ckpt = tmp_path / "th" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in ref.state_dict().items()},
               ckpt / "alexnet-owt-7be5be79.pth")
    s = sensors.build_sensor("alexnet")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    feats = s(x)
    assert [f.shape[1] for f in feats] == [64, 192, 384, 256, 256]
    assert all((f >= 0).all() for f in feats)                        # ReLU outputs
    assert torch.allclose(feats[-1], ref[:12](x), atol=1e-5)  # raw input, no normalisation
    assert not any(p.requires_grad for p in s.parameters())
    bad = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError):
        sensors.build_sensor("alexnet", weights=bad)
    # LPIPS-AlexNet: the same local trunk + the lpips package's linear heads
    lp = sensors.LPIPSAlex()
    assert torch.equal(lp.model.net.slice5[0].weight, ref[10].weight)
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.allclose(lp(a, a), torch.zeros(2), atol=1e-6)
    assert (lp(a, b) > 0).all() and lp(a, b).shape == (2,)
    with pytest.raises(CheckpointError):
        sensors.LPIPSAlex(weights=bad)


def test_random_alexnet_is_seeded_and_leaves_global_rng():
    state = torch.get_rng_state()
    a, b, c = sensors.random_alexnet(0), sensors.random_alexnet(0), sensors.random_alexnet(1)
    assert torch.equal(torch.get_rng_state(), state)
    x = torch.rand(1, 3, 16, 16)                      # upsampled to 64 px internally
    fa, fb, fc = a(x), b(x), c(x)
    assert all(torch.equal(u, v) for u, v in zip(fa, fb))
    assert not torch.allclose(fa[0], fc[0])
    assert fa[0].shape[-1] == 15
    import torchvision
    torch.manual_seed(0)
    full = torchvision.models.alexnet(weights=None)
    assert torch.equal(full.features[0].weight, a.stages[0][0].weight)
    assert torch.equal(full.features[10].bias, a.stages[4][0].bias)


def test_discriminator_sensor(tiny_G):
    from editkit.networks import Discriminator
    D = Discriminator(resolution=16, channel_base=256, channel_max=16)
    s = sensors.build_sensor("discriminator", discriminator=D)
    feats = s(torch.rand(2, 3, 16, 16))
    assert [tuple(f.shape[-2:]) for f in feats] == [(8, 8), (4, 4)]
    with pytest.raises(UsageError):
        sensors.build_sensor("discriminator")
    with pytest.raises(UsageError):
        sensors.build_sensor("resnet")


def test_streamed_pca_equals_the_authors_pca_lowrank_on_all_samples(tiny_G):
    """pca_basis streams float64 sums over batches; the result is what the authors' get_SVD
    (torch.pca_lowrank(w, q=w_dim, center=True) on every sample at once) gives."""
    n, bs = 3000, 512
    b = bases.pca_basis(tiny_G, n_samples=n, batch_size=bs, cache=False)
    gen = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(min(bs, n - i), tiny_G.z_dim, generator=gen) for i in range(0, n, bs)])
    with torch.no_grad():
        w = tiny_G.mapping(z, truncation_psi=1.0)[:, 0].double()
    torch.manual_seed(0)
    _, S, V = torch.pca_lowrank(w, q=w.shape[1], center=True, niter=2)
    assert torch.allclose(b.mean.double(), w.mean(0), atol=1e-6)
    assert torch.allclose(b.variances.double(), S ** 2 / (n - 1), rtol=1e-5)
    k = 8
    sign = torch.sign((b.components[:, :k].double() * V[:, :k]).sum(0))
    assert torch.allclose(b.components[:, :k].double() * sign, V[:, :k], atol=1e-5)
