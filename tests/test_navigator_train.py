"""End-to-end navigator training on a tiny generator: both variants, NaN safety, exact resume, and a
2-process gloo run matching a single-process run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from navigator import load_navigator
from navigator.sensors import DiscriminatorSensor
from navigator.train import NavigatorTrainer, TrainConfig, style_mixed_codes, train_navigator

torch.set_num_threads(1)


def tiny_networks():
    from editkit.networks import Discriminator, Generator
    torch.manual_seed(0)
    G = Generator(z_dim=16, w_dim=16, resolution=16, channel_base=256, channel_max=16)
    D = Discriminator(resolution=16, channel_base=256, channel_max=16)
    return G, D


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDITKIT_CACHE", str(tmp_path / "cache"))


def config(variant, **kw):
    base = dict(variant=variant, num_directions=4, batch=4, pca_samples=2000, num_components=8,
                snapshot_every=0, grid_directions=2, grid_frames=3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("variant", ["binary", "prototype"])
def test_training_lowers_the_loss_and_writes_outputs(tmp_path, variant):
    G, D = tiny_networks()
    cfg = config(variant, kimg=0.1, snapshot_every=10)        # 25 iterations
    tr = NavigatorTrainer(G, cfg, tmp_path / "run", sensor=DiscriminatorSensor(D), progress=False)
    before = tr.evaluate()
    start = {k: v.clone() for k, v in tr.module.state_dict().items()}
    nav = tr.run()
    after = tr.evaluate()
    assert tr.iteration == 25
    assert after < before - 0.02, (before, after)
    assert not any(torch.equal(start[k], v) for k, v in tr.module.state_dict().items()
                   if k in ("nav.attention_logits", "nav.coefficients"))
    G_params = [p for p in G.parameters()]
    assert not any(p.requires_grad for p in G_params)
    out = tmp_path / "run"
    back = load_navigator(out / "navigator.safetensors")
    assert torch.allclose(back.offsets(), nav.offsets())
    assert back.info["variant"] == variant and back.info["training"]["batch"] == 4
    assert (out / "navigator-000010.safetensors").is_file() and (out / "traversal-000010.png").is_file()
    assert (out / "traversal-000025.png").is_file()
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == list(range(1, 26))
    assert all(r["img_per_sec"] > 0 and r["loss"] == r["loss"] for r in log)


def test_style_mixing_uses_segments():
    G, _ = tiny_networks()
    z = torch.randn(3, 2, 16)
    ws = style_mixed_codes(G, z)
    w0, w1 = G.mapping(z[:, 0]), G.mapping(z[:, 1])
    assert torch.allclose(ws[:, :3], w0[:, :3]) and torch.allclose(ws[:, 3:], w1[:, 3:])   # L = 6 -> 3 + 3


def test_nan_gradients_are_replaced(tmp_path):
    G, D = tiny_networks()

    class Poisoned(DiscriminatorSensor):
        def forward(self, img):
            return [f * float("nan") for f in super().forward(img)]

    tr = NavigatorTrainer(G, config("binary", kimg=0.008, div_lambda=0.0), tmp_path, sensor=Poisoned(D),
                          progress=False)
    before = tr.nav.offsets().detach().clone()
    loss = tr.step()
    assert loss != loss                                          # the loss itself was NaN
    assert torch.isfinite(tr.nav.offsets()).all()
    assert torch.allclose(tr.nav.offsets(), before)             # zeroed gradients: no move


@pytest.mark.parametrize("variant", ["binary", "prototype"])
def test_resume_equals_uninterrupted_run(tmp_path, variant):
    G, D = tiny_networks()
    cfg = config(variant, kimg=0.024, snapshot_every=3)         # 6 iterations, checkpoint at 3
    full = NavigatorTrainer(G, cfg, tmp_path / "full", sensor=DiscriminatorSensor(D), progress=False)
    full.run()
    first = NavigatorTrainer(G, cfg, tmp_path / "cut", sensor=DiscriminatorSensor(D), progress=False)
    first.run(max_iterations=4)                                  # "killed" after 4, last checkpoint at 3
    assert first.iteration == 4 and not (tmp_path / "cut" / "navigator.safetensors").exists()
    second = NavigatorTrainer(G, cfg, tmp_path / "cut", sensor=DiscriminatorSensor(D), progress=False)
    second.run()
    assert second.iteration == 6
    for k, v in full.module.state_dict().items():
        assert torch.equal(v, second.module.state_dict()[k]), k
    fa, sa = full.opt.state_dict()["state"], second.opt.state_dict()["state"]
    assert all(torch.equal(fa[i]["exp_avg_sq"], sa[i]["exp_avg_sq"]) for i in fa)
    log = [json.loads(x)["iteration"] for x in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3, 4, 5, 6]
    from editkit.errors import UsageError
    with pytest.raises(UsageError, match="batch"):
        NavigatorTrainer(G, config(variant, kimg=0.024, batch=6), tmp_path / "cut",
                         sensor=DiscriminatorSensor(D), progress=False).run()
    assert json.loads((tmp_path / "cut" / "config.json").read_text())["batch"] == 4
    # a fresh (non-resumed) run differs from the continued one, so the check above is meaningful
    fresh = NavigatorTrainer(G, cfg, tmp_path / "fresh", sensor=DiscriminatorSensor(D), progress=False)
    fresh.run(max_iterations=3)
    assert not torch.equal(fresh.nav.offsets(), full.nav.offsets())


def test_ctrl_c_saves_a_state_that_resumes_exactly(tmp_path):
    G, D = tiny_networks()
    cfg = config("prototype", kimg=0.02)                          # 5 iterations, no periodic checkpoints
    full = NavigatorTrainer(G, cfg, tmp_path / "full", sensor=DiscriminatorSensor(D), progress=False)
    full.run()

    class Interrupting(DiscriminatorSensor):
        calls = 0

        def forward(self, img):
            Interrupting.calls += 1
            if Interrupting.calls == 7:                           # inside iteration 4 (2 sensor calls each)
                raise KeyboardInterrupt
            return super().forward(img)

    cut = NavigatorTrainer(G, cfg, tmp_path / "cut", sensor=Interrupting(D), progress=False)
    with pytest.raises(KeyboardInterrupt):
        cut.run()
    assert cut.iteration == 3 and (tmp_path / "cut" / "training-state.safetensors").is_file()
    resumed = NavigatorTrainer(G, cfg, tmp_path / "cut", sensor=DiscriminatorSensor(D), progress=False)
    resumed.run()
    assert resumed.iteration == 5
    assert torch.equal(resumed.nav.offsets(), full.nav.offsets())
    assert torch.equal(resumed.prototypes, full.prototypes)


@pytest.mark.parametrize("source", ["free", "ganspace"])
def test_other_direction_sources_train(tmp_path, source):
    G, D = tiny_networks()
    cfg = config("binary", kimg=0.008, directions=source, n_colors=0)       # 2 iterations, per-layer mixing
    tr = NavigatorTrainer(G, cfg, tmp_path, sensor=DiscriminatorSensor(D), progress=False)
    d0 = tr.nav.directions().detach().clone()
    tr.run()
    moved = not torch.allclose(tr.nav.directions(), d0)
    assert moved == (source == "free")                                       # ganspace: only the attention
    assert tr.nav.attention_mode == "learned"


# contrafeat.md §8: K, N, batch, kimg, sigma, n_colors (0 = one per layer), lr, div lambda
PAPER_TABLE = {
    "paper-binary": ("binary", 30, 100, 12, 200, 1.0, 2, 0.05, 0.1),
    "paper-prototype": ("prototype", 30, 100, 10, 200, 1.0, 2, 0.05, 0.1),
    "paper-real-image": ("binary", 64, 300, 8, 200, 0.5, 0, 0.1, 0.01),
}


@pytest.mark.parametrize("name", list(PAPER_TABLE))
def test_presets_are_the_published_runs(name):
    c = TrainConfig.preset(name)
    assert (c.variant, c.num_directions, c.num_components, c.batch, c.kimg, c.sigma, c.n_colors, c.lr,
            c.div_lambda) == PAPER_TABLE[name]
    assert c.pca_samples == 1_000_000 and c.precision == "auto" and c.noise_mode == "random"
    assert c.sensor == "alexnet" and c.directions == "pca"
    c.validate()


def test_preset_aliases_and_overrides():
    assert TrainConfig.preset("final", batch=6) == TrainConfig.preset("paper-real-image", batch=6)
    assert TrainConfig.preset("paper") == TrainConfig.preset("paper-binary")
    assert TrainConfig.preset("paper-prototype", kimg=1.0).kimg == 1.0
    from editkit.errors import UsageError
    with pytest.raises(UsageError):
        TrainConfig.preset("huge")


def test_cli_preset_reaches_the_trainer(tmp_path, monkeypatch):
    """`editkit train navigator --preset NAME`: the preset's values, explicit options on top."""
    import types

    import editkit
    import navigator.train as T
    from editkit.cli import main

    seen = {}

    def fake_train(G, cfg, out, **kw):
        seen["cfg"] = cfg
        return types.SimpleNamespace(num_directions=cfg.num_directions, info={"precision": "fp32"})

    monkeypatch.setattr(T, "train_navigator", fake_train)
    G, _ = tiny_networks()
    gpath = editkit.save_network(tmp_path / "g.safetensors", G)
    base = ["train", "navigator", "--generator", str(gpath), "--device", "cpu", "--no-progress"]
    for name, row in PAPER_TABLE.items():
        assert main([*base, "--out", str(tmp_path / name), "--preset", name]) == 0
        c = seen["cfg"]
        assert (c.variant, c.num_directions, c.num_components, c.batch, c.kimg, c.sigma, c.n_colors, c.lr,
                c.div_lambda, c.pca_samples) == (*row, 1_000_000)
    assert main([*base, "--out", str(tmp_path / "o"), "--preset", "paper-prototype", "--batch", "4", "--kimg", "2"]) == 0
    assert (seen["cfg"].variant, seen["cfg"].batch, seen["cfg"].kimg, seen["cfg"].lr) == ("prototype", 4, 2.0, 0.05)
    assert main([*base, "--out", str(tmp_path / "v"), "--variant", "prototype"]) == 0
    assert seen["cfg"].batch == 10                                  # no --preset: the variant's paper run
    assert main([*base, "--out", str(tmp_path / "w"), "--preset", "paper-huge"]) == 2


def test_precision_policy():
    from navigator.train import resolve_precision
    assert resolve_precision("auto", "cuda") == "mixed" and resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cuda") == "bf16" and resolve_precision("fp32", "cuda") == "fp32"
    from editkit.errors import UsageError
    with pytest.raises(UsageError):
        resolve_precision("fp8", "cuda")


def test_gradients_cleaned_as_the_authors():
    from navigator.train import clean_gradients
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([float("nan"), float("inf"), -float("inf"), 2.0])
    clean_gradients([p])
    assert p.grad.tolist() == [0.0, 1e5, -1e5, 2.0]


def test_mixed_precision_runs_the_generators_float16_blocks(tmp_path):
    """'mixed': the generator's own num_fp16_res blocks in float16, the sensor sees float32 images and the
    loss is float32; the generator's precision is restored afterwards."""
    from editkit.networks import Discriminator, Generator
    torch.manual_seed(0)
    G = Generator(z_dim=16, w_dim=16, resolution=16, channel_base=256, channel_max=16, num_fp16_res=2,
                  conv_clamp=256)
    D = Discriminator(resolution=16, channel_base=256, channel_max=16)
    seen = []

    class Spy(DiscriminatorSensor):
        def forward(self, img):
            seen.append(img.dtype)
            return super().forward(img)

    block_dtypes = []
    hook = G.synthesis.b16.conv1.register_forward_hook(lambda m, i, o: block_dtypes.append(o.dtype))
    tr = NavigatorTrainer(G, config("prototype", kimg=0.008, precision="mixed"), tmp_path / "m",
                          sensor=Spy(D), progress=False)
    loss = tr.step()
    hook.remove()
    assert tr.precision == "mixed" and tr.nav.info["precision"] == "mixed"
    assert torch.float16 in block_dtypes and set(seen) == {torch.float32}
    assert G.synthesis.half_dtype is None and torch.isfinite(torch.tensor(loss))
    fp32 = NavigatorTrainer(G, config("prototype", kimg=0.008), tmp_path / "f", sensor=Spy(D), progress=False)
    assert fp32.precision == "fp32" and fp32.g_half is None


def test_python_api_with_named_sensor(tmp_path):
    G, _ = tiny_networks()
    cfg = config("binary", kimg=0.008, sensor="random-alexnet", directions="sefa")
    nav = train_navigator(G, cfg, tmp_path / "api", progress=False)
    assert nav.info["sensor"] == "random-alexnet" and nav.info["method"] == "sefa+attention"
    assert (tmp_path / "api" / "navigator.safetensors").is_file()


DDP_SCRIPT = r"""
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {root!r})
from tests.test_navigator_train import tiny_networks, config
from navigator.sensors import DiscriminatorSensor
from navigator.train import NavigatorTrainer
import torch.distributed as dist
out = sys.argv[1]
for variant in ("binary", "prototype"):
    G, D = tiny_networks()
    cfg = config(variant, kimg=0.012, noise_mode="const", batch=4)
    tr = NavigatorTrainer(G, cfg, out + "/" + variant, sensor=DiscriminatorSensor(D), progress=False)
    tr.run()
dist.destroy_process_group()
"""


@pytest.mark.slow  # ~20 s on 2 cores: two torch start-ups; run with `pytest -m slow`
def test_two_process_gloo_matches_single_process(tmp_path):
    root = str(Path(__file__).resolve().parents[1])
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT.format(root=root))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=root)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path / "ddp")], env=env, capture_output=True, text=True,
                          timeout=240, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for variant in ("binary", "prototype"):
        G, D = tiny_networks()
        cfg = config(variant, kimg=0.012, noise_mode="const", batch=4)
        single = NavigatorTrainer(G, cfg, tmp_path / "single" / variant, sensor=DiscriminatorSensor(D),
                                  progress=False)
        single.run()
        ddp = load_navigator(tmp_path / "ddp" / variant / "navigator.safetensors")
        assert torch.allclose(ddp.offsets(), single.nav.offsets(), atol=1e-5, rtol=1e-4), variant
        assert not torch.allclose(ddp.offsets(), NavigatorTrainer(
            G, cfg, tmp_path / "x" / variant, sensor=DiscriminatorSensor(D), progress=False).nav.offsets())


DDP_RESUME_SCRIPT = r"""
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {root!r})
from tests.test_navigator_train import tiny_networks, config
from navigator.sensors import DiscriminatorSensor
from navigator.train import NavigatorTrainer
import torch.distributed as dist
out, phase = sys.argv[1], sys.argv[2]
for variant in ("binary", "prototype"):
    G, D = tiny_networks()
    cfg = config(variant, kimg=0.016, batch=4, snapshot_every=2)     # 4 iterations, random noise per process
    if phase == "first":
        NavigatorTrainer(G, cfg, out + "/full/" + variant, sensor=DiscriminatorSensor(D), progress=False).run()
        NavigatorTrainer(G, cfg, out + "/cut/" + variant, sensor=DiscriminatorSensor(D),
                         progress=False).run(max_iterations=2)       # "interrupted" after the checkpoint at 2
    else:
        tr = NavigatorTrainer(G, cfg, out + "/cut/" + variant, sensor=DiscriminatorSensor(D), progress=False)
        assert tr.load_checkpoint() and tr.iteration == 2
        NavigatorTrainer(G, cfg, out + "/cut/" + variant, sensor=DiscriminatorSensor(D), progress=False).run()
dist.destroy_process_group()
"""


@pytest.mark.slow  # two torchrun launches of 2 processes: ~30 s on 2 idle cores, 110 s measured on a loaded machine
def test_two_process_gloo_resume_matches_uninterrupted(tmp_path):
    """A 2-process (gloo, torchrun) run stopped after its checkpoint and resumed by a new torchrun launch
    ends where an uninterrupted 2-process run ends: weights, optimiser and every process's noise stream
    are restored (random generator noise, drawn per process)."""
    from safetensors.torch import load_file
    root = str(Path(__file__).resolve().parents[1])
    script = tmp_path / "ddp_resume.py"
    script.write_text(DDP_RESUME_SCRIPT.format(root=root))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=root)
    for phase in ("first", "resume"):
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                               "2", str(script), str(tmp_path / "ddp"), phase], env=env, capture_output=True,
                              text=True, timeout=240, cwd=root)
        assert proc.returncode == 0, proc.stderr[-3000:]
    for variant in ("binary", "prototype"):
        full = tmp_path / "ddp" / "full" / variant
        cut = tmp_path / "ddp" / "cut" / variant
        a, b = load_navigator(full / "navigator.safetensors"), load_navigator(cut / "navigator.safetensors")
        assert torch.equal(a.offsets(), b.offsets()), variant
        sa, sb = load_file(str(full / "training-state.safetensors")), load_file(str(cut / "training-state.safetensors"))
        assert sa.keys() == sb.keys() and "rng.torch.1" in sa
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (variant, k)
        mid = load_navigator(cut / "navigator-000002.safetensors")
        assert not torch.equal(mid.offsets(), b.offsets())            # the resumed run did train on
        log = [json.loads(x)["iteration"] for x in (cut / "log.jsonl").read_text().splitlines()]
        assert log == [1, 2, 3, 4]
