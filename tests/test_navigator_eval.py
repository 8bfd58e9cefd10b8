"""Metrics, the offline attribute probe, traversals/GIFs, ordering and de-duplication, and the CLI."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from navigator import Navigator
from navigator import metrics, probe, traverse
from navigator.bases import uniform_attention
from navigator.sensors import DiscriminatorSensor

torch.set_num_threads(1)
FIXTURES = Path(__file__).parent / "fixtures" / "navigator"


def tiny_networks():
    from editkit.networks import Discriminator, Generator
    torch.manual_seed(0)
    return (Generator(z_dim=16, w_dim=16, resolution=16, channel_base=256, channel_max=16),
            Discriminator(resolution=16, channel_base=256, channel_max=16))


# -- metrics ---------------------------------------------------------------------------------------

def test_disentanglement_and_discovered_hand_cases():
    R = torch.tensor([[1.0, 0.5, 0.0], [0.0, -2.0, 1.0], [0.0, 0.0, 0.0]])
    N = metrics.normalized_responses(R)
    assert torch.allclose(N, torch.tensor([[1, 0.5, 0], [0, 1, 0.5], [0, 0, 0]], dtype=N.dtype))
    assert metrics.disentanglement_score(R) == pytest.approx((0.5 + 0.5 + 0.0) / 3)   # dead row counts 0
    assert metrics.disentanglement_score(R, top=2) == pytest.approx(0.5)
    assert metrics.disentanglement_score(torch.tensor([[4.0, 1.0, 3.0]])) == pytest.approx(0.25)
    assert metrics.discovered_attributes(R) == 2
    assert metrics.discovered_attributes(torch.tensor([[1.0, 0.2], [0.9, 0.1]])) == 1
    assert metrics.discovered_attributes(R, top=1) == 1


class LinearG(torch.nn.Module):
    """synthesis(ws) = ws as a 3-channel 'image'; mapping(z) = z broadcast."""
    z_dim = w_dim = 4
    num_ws = 3

    def __init__(self):
        super().__init__()
        self.register_buffer("w_avg", torch.zeros(4))

    def mapping(self, z, truncation_psi=1.0):
        return (truncation_psi * z)[:, None].repeat(1, 3, 1)

    def synthesis(self, ws, noise_mode="const"):
        assert noise_mode == "const"
        return ws[:, None].repeat(1, 3, 1, 1)


def test_attribute_responses_exact_for_linear_case():
    G = LinearG()
    dirs = torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0]])
    att = torch.tensor([[1.0, 0, 0], [0.25, 0.25, 0.5]])
    nav = Navigator(2, 3, 4, direction_mode="fixed", attention_mode="fixed", fixed_directions=dirs,
                    fixed_attention=att)
    predictor = lambda img: img[:, 0].sum(dim=1)                          # noqa: E731  [N, 4]
    r = metrics.attribute_responses(G, nav, predictor, n_samples=10, strength=0.3, batch_size=4,
                                    standardize=False)
    expected = 2 * 0.3 * att.sum(1)[:, None] * nav.directions()          # f(w+sD) − f(w−sD) = 2s Σ_l D[l]
    assert torch.allclose(r, expected, atol=1e-5)
    rs = metrics.attribute_responses(G, nav, predictor, n_samples=10, strength=0.3, batch_size=4)
    assert not torch.allclose(rs, r)                                     # standardised by the base spread


def test_summarize_and_heatmap(tmp_path):
    R = torch.tensor([[1.0, 0.5], [0.1, 2.0]])
    s = metrics.summarize(R, ["a", "b"], order=[1, 0], top=2)
    assert s["directions"][0]["direction"] == 1 and s["directions"][0]["top"][0]["attribute"] == "b"
    assert s["discovered_attributes"] == 2
    json.dumps(s)
    img = metrics.heatmap_image(np.array(s["normalized"]), ["1", "0"], ["a", "b"], title="t")
    assert img.dtype == np.uint8 and img.ndim == 3
    cm = metrics.colormap(np.array([0.0, 1.0]))
    assert tuple(cm[0]) == (68, 1, 84) and tuple(cm[1]) == (253, 231, 37)
    p = metrics.save_heatmap(tmp_path / "h.png", np.array(s["normalized"]), ["1", "0"], ["a", "b"])
    assert p.stat().st_size > 100


# -- probe -----------------------------------------------------------------------------------------

def test_head_pose_recovers_known_rotation():
    W = H = 256
    R = probe.rotation_from_euler(yaw=12.0, pitch=-8.0, roll=5.0)
    assert probe.euler_from_rotation(R) == pytest.approx((12.0, -8.0, 5.0), abs=1e-6)
    cam = probe.camera_matrix(W, H)
    P = (R @ probe.MODEL_POINTS.T).T + np.array([0, 0, 2000.0])
    uv = (cam @ P.T).T
    uv = uv[:, :2] / uv[:, 2:]
    lm = np.zeros((68, 2))
    lm[list(probe.MODEL_LANDMARKS)] = uv
    yaw, pitch, roll = probe.head_pose(lm, W, H)
    assert (yaw, pitch, roll) == pytest.approx((12.0, -8.0, 5.0), abs=0.5)


def test_landmark_ratios_hand_cases():
    eye = np.array([(0, 0), (1, -1), (2, -1), (3, 0), (2, 1), (1, 1)], float)
    assert probe.eye_aspect_ratio(eye) == pytest.approx(4 / 6)
    lm = np.zeros((68, 2))
    lm[36:42] = eye - eye.mean(0)
    lm[42:48] = eye - eye.mean(0) + (10, 0)                 # inter-ocular distance 10
    lm[[61, 62, 63]] = [(-1, 20), (0, 20), (1, 20)]
    lm[[67, 66, 65]] = [(-1, 22), (0, 22), (1, 22)]          # inner-lip gap 2
    lm[48], lm[54] = (-5, 21), (5, 21)
    assert probe.interocular(lm) == pytest.approx(10)
    assert probe.mouth_openness(lm) == pytest.approx(0.2)
    assert probe.smile_width(lm) == pytest.approx(1.0)
    assert probe.eye_openness(lm) == pytest.approx(4 / 6)
    lm[0], lm[16] = (-20, 0), (30, 0)
    size, fx, fy = probe.face_geometry(lm, 100, 200)
    assert size == pytest.approx(0.5) and fx == pytest.approx(lm[:, 0].mean() / 100)


def test_region_colour_hue_and_brightness():
    img = np.zeros((4, 4, 3), np.uint8)
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    img[:2] = (255, 0, 0)
    assert probe.region_color(img, mask) == pytest.approx((0.299, 0.0), abs=1e-6)
    img[:2] = (0, 255, 0)
    assert probe.region_color(img, mask)[1] == pytest.approx(120.0, abs=1e-6)
    img[:2] = (0, 0, 255)
    assert probe.region_color(img, mask)[1] == pytest.approx(-120.0, abs=1e-6)
    assert np.isnan(probe.region_color(img, np.zeros((4, 4), bool))[0])


def test_probe_on_a_real_aligned_face():
    from PIL import Image
    p = probe.LandmarkProbe()
    img = np.array(Image.open(FIXTURES / "face_256.png").convert("RGB"))
    lm, found = p.landmarks(img)
    assert found and lm.shape == (68, 2)
    a = dict(zip(probe.ATTRIBUTES, p.attributes(img)))
    assert abs(a["yaw"]) < 15 and abs(a["roll"]) < 10
    assert 0.1 < a["eye_open"] < 0.5 and 0 <= a["mouth_open"] < 0.5
    assert abs(a["face_x"] - 0.5) < 0.05 and 0.3 < a["face_size"] < 0.8
    assert 0 < a["skin_hue"] < 50 and a["skin_brightness"] > a["hair_brightness"]
    b = dict(zip(probe.ATTRIBUTES, p.attributes(np.ascontiguousarray(img[:, ::-1]))))
    assert np.sign(b["yaw"]) == -np.sign(a["yaw"])                            # mirror flips the yaw
    small = np.array(Image.fromarray(img).resize((64, 64), Image.LANCZOS))   # upsampled before dlib
    c = dict(zip(probe.ATTRIBUTES, p.attributes(small)))
    assert abs(c["face_x"] - a["face_x"]) < 0.02 and abs(c["yaw"] - a["yaw"]) < 3
    big = np.array(Image.fromarray(img).resize((1024, 1024), Image.LANCZOS))  # downsampled to 512
    d = dict(zip(probe.ATTRIBUTES, p.attributes(big)))
    assert abs(d["face_x"] - a["face_x"]) < 0.02 and abs(d["yaw"] - a["yaw"]) < 3
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    assert p(t).shape == (1, len(probe.ATTRIBUTES))


# -- traversals ------------------------------------------------------------------------------------

def test_traversal_frames_grid_and_gif(tmp_path):
    from PIL import Image
    G, _ = tiny_networks()
    nav = Navigator(3, G.num_ws, G.w_dim, direction_mode="free", seed=0)
    ws = G.mapping(torch.randn(1, 16))[0]
    frames = traverse.traversal_frames(G, nav, ws, 1, 2.0, frames=5)
    assert frames.shape == (5, 16, 16, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[2], traverse.to_uint8(G.synthesis(ws[None], noise_mode="const"))[0])
    end = traverse.to_uint8(G.synthesis(nav.edit(ws[None], 1, 2.0), noise_mode="const"))[0]
    assert np.array_equal(frames[-1], end)
    lohi = traverse.traversal_frames(G, nav, ws, 1, (0.0, 2.0), frames=2)
    assert np.array_equal(lohi[0], frames[2])
    grid = traverse.traversal_grid(G, nav, ws, [0, 2], 1.0, frames=3, cell_size=8)
    assert grid.shape == (2 * 8, 3 * 8, 3)
    assert traverse.bounce([1, 2, 3, 4]) == [1, 2, 3, 4, 3, 2]
    gif = traverse.save_gif(tmp_path / "t.gif", frames[[0, 2, 4]], duration_ms=100)
    im = Image.open(gif)
    assert im.n_frames == 4 and im.info["duration"] == 100 and im.info["loop"] == 0


def test_ordering_and_near_duplicates():
    overlap = torch.tensor([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    assert traverse.remove_near_duplicates(overlap, threshold=0.5) == [0, 2]
    assert traverse.remove_near_duplicates(overlap, order=[1, 0, 2], threshold=0.5) == [1, 2]
    assert traverse.remove_near_duplicates(overlap, threshold=0.5, start_from_last=True) == [1, 2]
    chain = torch.tensor([[1.0, 0.9, 0.0], [0.9, 1.0, 0.9], [0.0, 0.9, 1.0]])   # 1 ~ 0, 2 ~ 1 (dropped)
    assert traverse.remove_near_duplicates(chain, threshold=0.5) == [0]          # "dropped or not"
    assert traverse.order_by_magnitude(torch.tensor([0.1, 3.0, 1.0])) == [1, 2, 0]
    G, D = tiny_networks()
    u = torch.randn(3, G.w_dim)
    u[1] = u[0]                                                   # direction 1 duplicates 0
    att = uniform_attention(3, G.num_ws)
    att[2] = 0                                                    # direction 2 does nothing
    att[2, 0] = 1e-3
    nav = Navigator(3, G.num_ws, G.w_dim, direction_mode="fixed", attention_mode="fixed", fixed_directions=u,
                    fixed_attention=att)
    ws = G.mapping(torch.randn(2, 16))
    sensor = DiscriminatorSensor(D)
    ov = traverse.variation_overlap(G, nav, ws, sensor, strength=2.0)
    n_layers = len(sensor(G.synthesis(ws[:1])))
    assert torch.allclose(ov.diag(), torch.full((3,), float(n_layers), dtype=ov.dtype), atol=1e-3)
    assert ov[0, 1] == pytest.approx(float(ov[0, 0]), abs=1e-4) and ov[0, 2] < 0.8 * n_layers
    assert traverse.remove_near_duplicates(ov, threshold=0.8 * n_layers) == [0, 2]
    mags = traverse.perceptual_magnitude(G, nav, ws, sensor, strength=2.0)
    assert mags[0] == pytest.approx(float(mags[1]), rel=1e-4) and mags[2] < mags[0]
    assert traverse.order_by_magnitude(mags)[-1] == 2


def test_calibrated_strengths_reach_the_target():
    G, D = tiny_networks()
    u = torch.randn(1, G.w_dim).repeat(2, 1)
    att = uniform_attention(2, G.num_ws)
    att[1] *= 0.5                                                 # direction 1 is half as strong per unit
    nav = Navigator(2, G.num_ws, G.w_dim, direction_mode="fixed", attention_mode="fixed", fixed_directions=u,
                    fixed_attention=att)
    ws = G.mapping(torch.randn(2, 16))
    sensor = DiscriminatorSensor(D)
    target = 0.5 * float(traverse.direction_magnitude(G, nav, ws, 0, 1.0, sensor))
    ranges = traverse.calibrate_strengths(G, nav, ws, target, sensor=sensor, s_max=4.0, steps=12)
    for k, (lo, hi) in enumerate(ranges):
        assert lo == -hi and 0 < hi < 4
        assert traverse.direction_magnitude(G, nav, ws, k, hi, sensor) == pytest.approx(target, rel=0.02)
    assert ranges[1][1] == pytest.approx(2 * ranges[0][1], rel=0.02)   # same direction, half the attention
    assert traverse.calibrate_strengths(G, nav, ws, 1e9, sensor=sensor, s_max=2.0) == [(-2.0, 2.0)] * 2


# -- CLI -------------------------------------------------------------------------------------------

def test_cli_train_and_evaluate(tmp_path, monkeypatch, capsys):
    import editkit
    from editkit.cli import main
    monkeypatch.setenv("EDITKIT_CACHE", str(tmp_path / "cache"))
    G, D = tiny_networks()
    net = editkit.save_network(tmp_path / "tiny.safetensors", G, D)
    out = tmp_path / "nav"
    common = ["--generator", str(net), "--directions", "3", "--batch", "4", "--pca-samples", "1000",
              "--components", "6", "--no-progress"]
    assert main(["train", "navigator", *common, "--out", str(out), "--kimg", "0.02", "--variant", "prototype",
                 "--sensor", "discriminator", "--snapshot-every", "0", "--preset", "final", "--sigma", "0.7"]) == 0
    from navigator import load_navigator
    info = load_navigator(out / "navigator.safetensors").info["training"]
    assert (info["num_directions"], info["lr"], info["sigma"], info["n_colors"]) == (3, 0.1, 0.7, 0)
    assert main(["train", "navigator", *common, "--out", str(tmp_path / "x"), "--variant", "triplet"]) == 2
    assert main(["train", "navigator", *common, "--out", str(tmp_path / "y"), "--batch", "3"]) == 2
    G2 = editkit.save_network(tmp_path / "g_only.safetensors", G)
    assert main(["train", "navigator", "--generator", str(G2), "--out", str(tmp_path / "z"),
                 "--sensor", "discriminator", "--no-progress"]) == 2
    capsys.readouterr()
    ev = tmp_path / "eval"
    args = ["evaluate", "--generator", str(net), "--samples", "3", "--batch-size", "3", "--probe", "dlib", "--no-detect",
            "--no-progress", "--out", str(ev)]
    assert main([*args, "--navigator", str(out / "navigator.safetensors")]) == 0
    printed = capsys.readouterr().out
    assert "disentanglement score" in printed and "discovered attributes" in printed
    assert "landmark/region probe (dlib 68 landmarks + colour regions) (15 attributes)" in printed
    assert "NOT the paper's numbers" in printed and "24 face attributes" in printed
    assert "3 samples (paper 500)" in printed and "15 attributes (paper 24)" in printed
    res = json.loads((ev / "evaluation.json").read_text())
    assert res["protocol"]["paper_numbers"] is False and res["protocol"]["attributes"] == 15
    assert (res["strength"], res["truncation"], res["noise"], res["top"], res["order_by"]) == (0.1, 0.5, "const", 3, "index")
    assert len(res["directions"]) == 3 and 0 <= res["disentanglement_score"] <= 1
    assert np.array(res["normalized"]).shape == (3, len(probe.ATTRIBUTES))
    assert (ev / "heatmap.png").stat().st_size > 100
    assert main([*args, "--navigator", str(out / "navigator.safetensors")]) == 2      # outputs exist
    assert main([*args, "--navigator", "sefa", "--baseline-directions", "2", "--overwrite",
                 "--baseline-layers", "0-1,4"]) == 0
    assert main([*args, "--navigator", "sefa", "--overwrite", "--baseline-layers", "x"]) == 2
    assert main([*args, "--navigator", "sefa", "--overwrite", "--baseline-layers", "0-9"]) == 2   # num_ws = 6
    assert len(json.loads((ev / "evaluation.json").read_text())["directions"]) == 2
    assert main([*args, "--navigator", str(out / "navigator.safetensors"), "--overwrite", "--order", "magnitude",
                 "--sensor", "random-alexnet", "--top", "2"]) == 0
    res = json.loads((ev / "evaluation.json").read_text())
    assert res["magnitudes"] == sorted(res["magnitudes"], reverse=True) and sorted(res["order"]) == [0, 1, 2]
    assert res["top"] == 2
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    assert main([*args, "--navigator", str(bad), "--overwrite"]) == 3


def test_t_statistic_ignores_a_noisy_attribute():
    """A consistent small effect beats a large but random one under statistic='t'."""
    from navigator.model import Navigator

    class FakeG:
        z_dim, w_dim, num_ws = 4, 4, 2
        w_avg = torch.zeros(4)

        def mapping(self, z, truncation_psi=1.0):
            return z[:, None, :].repeat(1, 2, 1)

        def synthesis(self, ws, noise_mode="const"):
            return ws[:, :, :1].mean(1)[:, :, None, None].expand(-1, 3, 2, 2)

    gen = torch.Generator().manual_seed(0)

    def predictor(images):
        return torch.stack([images.mean(dim=(1, 2, 3)), 100 * torch.randn(len(images), generator=gen)], dim=1)

    nav = Navigator(2, 2, 4, direction_mode="fixed", attention_mode="fixed",
                    fixed_directions=torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    t = metrics.attribute_responses(FakeG(), nav, predictor, n_samples=64, strength=0.1, batch_size=16, statistic="t")
    assert t[0, 0].abs() > 50 and t[0, 1].abs() < 4   # direction 0 moves attribute 0 consistently
    assert t[1, 0].abs() < 1e-3                          # direction 1 does not touch attribute 0
    with pytest.raises(ValueError):
        metrics.attribute_responses(FakeG(), nav, predictor, n_samples=4, statistic="median")
