"""Hand-computed checks of every ContraFeat formula (contrafeat.md §2-4)."""
import math

import pytest
import torch
import torch.nn.functional as F

from navigator import losses
from navigator.model import Navigator, SMOOTHING_KERNEL, rms_normalize, smooth_attention, uniform_attention

torch.set_num_threads(1)
K0, K1 = 0.27406862, 0.45186276


def test_smoothing_kernel_values():
    assert SMOOTHING_KERNEL[0] == pytest.approx(K0, abs=1e-7)
    assert SMOOTHING_KERNEL[1] == pytest.approx(K1, abs=1e-7)
    assert sum(SMOOTHING_KERNEL) == pytest.approx(1.0)


def test_smooth_attention_hand_cases_with_reflect_padding():
    out = smooth_attention(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]]))
    expected = torch.tensor([[K1, K0, 0, 0], [2 * K0, K1, K0, 0], [0, 0, K0, K1]])
    assert torch.allclose(out, expected, atol=1e-6)
    x = torch.rand(3, 7)   # same as torch's reflect pad + conv1d
    ref = F.conv1d(F.pad(x[:, None], (1, 1), mode="reflect"), torch.tensor([[[K0, K1, K0]]]))[:, 0]
    assert torch.allclose(smooth_attention(x), ref, atol=1e-6)


def test_attention_is_softmax_then_smoothing():
    nav = Navigator(1, 3, 4, direction_mode="free")
    with torch.no_grad():
        nav.attention_logits.copy_(torch.log(torch.tensor([[1.0, 1.0, 2.0]])))
    p = torch.tensor([0.25, 0.25, 0.5])                    # softmax
    expected = torch.tensor([K1 * p[0] + 2 * K0 * p[1],     # reflect: x[-1] -> x[1]
                             K0 * p[0] + K1 * p[1] + K0 * p[2],
                             2 * K0 * p[1] + K1 * p[2]])
    assert torch.allclose(nav.attention()[0], expected, atol=1e-6)
    # Smoothing the logits first (the wrong order) gives something else.
    wrong = torch.softmax(smooth_attention(nav.attention_logits.detach()), -1)[0]
    assert not torch.allclose(wrong, expected, atol=1e-3)


def test_rms_normalize_gives_norm_sqrt_dim():
    u = rms_normalize(torch.tensor([3.0, 4.0]))
    assert torch.allclose(u, torch.tensor([3.0, 4.0]) / math.sqrt(12.5), atol=1e-6)
    assert u.norm().item() == pytest.approx(math.sqrt(2), rel=1e-6)
    basis = torch.linalg.qr(torch.randn(16, 16))[0]
    for mode, kw in (("pca", {"basis": basis, "num_components": 5}), ("free", {})):
        nav = Navigator(3, 6, 16, direction_mode=mode, **kw)
        assert torch.allclose(nav.directions().norm(dim=1), torch.full((3,), 4.0), atol=1e-4)  # sqrt(16)


def test_pca_directions_lie_in_top_components():
    basis = torch.linalg.qr(torch.randn(16, 16))[0]
    nav = Navigator(4, 6, 16, direction_mode="pca", basis=basis, num_components=3)
    rest = basis[:, 3:]
    assert torch.allclose(nav.directions() @ rest, torch.zeros(4, 13), atol=1e-4)


def test_offsets_are_outer_products_and_edit_adds_them():
    nav = Navigator(2, 3, 4, direction_mode="free", seed=0)
    D = nav.offsets()
    a, u = nav.attention(), nav.directions()
    assert D.shape == (2, 3, 4)
    assert torch.allclose(D[1, 2], a[1, 2] * u[1])
    ws = torch.randn(2, 3, 4)
    assert torch.allclose(nav.edit(ws, 1, 0.5), ws + 0.5 * D[1])
    per = nav.edit(ws, torch.tensor([0, 1]), torch.tensor([2.0, -1.0]))
    assert torch.allclose(per[0], ws[0] + 2 * D[0]) and torch.allclose(per[1], ws[1] - D[1])
    assert torch.allclose(nav.edit(ws[0], 0, 1.0), ws[0] + D[0])


def test_uniform_attention_sums_to_one_over_range():
    att = uniform_attention(2, 6, [1, 2, 3])
    assert torch.allclose(att[0], torch.tensor([0, 1 / 3, 1 / 3, 1 / 3, 0, 0]))


# -- losses ----------------------------------------------------------------------------------------

def _maps(vectors):
    """[positions][channels] -> [1, C, 1, P]."""
    return torch.tensor(vectors, dtype=torch.float32).T[None, :, None, :]


def test_focus_mask_hand_case():
    m = losses.focus_mask(_maps([[3, 4], [0, 0], [0, 1]]))
    assert m.shape == (1, 1, 3)
    assert torch.allclose(m[0, 0], torch.tensor([5, 0, 1]) / (5 + 1e-6), atol=1e-6)


def test_focus_mask_is_not_detached():
    d = _maps([[3.0, 4.0], [0.0, 1.0], [1.0, 1.0]]).requires_grad_(True)
    losses.focus_mask(d).sum().backward()
    assert d.grad is not None and d.grad.abs().sum() > 0


def test_similarity_hand_case():
    a = _maps([[1, 0], [0, 2], [0, 0]])
    b = _maps([[2, 0], [1, 1], [0, 0]])
    # masks: a (1,2,0)/2 = (.5,1,0); b (2,√2,0)/2 = (1,.7071,0); M = (.5,.7071,0); cos = (1,.7071,·)
    expected = (0.5 ** 2 + (0.70710678 * 0.70710678) ** 2) / (0.5 + 0.70710678)
    assert losses.layer_similarity(a, b).item() == pytest.approx(expected, abs=1e-5)
    assert losses.variation_similarity([a, a], [b, b]).item() == pytest.approx(2 * expected, abs=1e-5)


def test_similarity_is_sign_invariant_and_zero_for_orthogonal():
    a = torch.randn(3, 8, 4, 4)
    b = torch.randn(3, 8, 4, 4)
    assert torch.allclose(losses.variation_similarity([a], [b]), losses.variation_similarity([a], [-b]), atol=1e-6)
    orth = _maps([[1, 0], [0, 1], [0, 0]]), _maps([[0, 1], [1, 0], [0, 0]])
    assert losses.layer_similarity(*orth).item() == pytest.approx(0.0, abs=1e-6)
    # masks are applied before squaring: the score is Σ(M·c)²/ΣM, not Σ M·c²/ΣM
    one_hot = _maps([[1, 0], [0, 0]])
    assert losses.layer_similarity(one_hot, one_hot).item() == pytest.approx(1 / (1 + 1e-6), abs=1e-5)


def test_similarity_matrix_matches_pairwise():
    d = [torch.randn(3, 5, 4, 4), torch.randn(3, 6, 2, 2)]
    p = [torch.randn(2, 5, 4, 4), torch.randn(2, 6, 2, 2)]
    S = losses.similarity_matrix(d, p)
    for i in range(3):
        for k in range(2):
            ref = losses.variation_similarity([x[i:i + 1] for x in d], [x[k:k + 1] for x in p])
            assert S[i, k].item() == pytest.approx(ref.item(), abs=1e-5)


def test_diversity_hand_case():
    off = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).reshape(2, 1, 2)
    assert losses.diversity_loss(off).item() == pytest.approx(2 * 0.5, abs=1e-6)   # both ordered pairs
    assert losses.diversity_loss(torch.eye(3).reshape(3, 1, 3)).item() == pytest.approx(0.0, abs=1e-7)
    assert losses.diversity_loss(torch.tensor([[1.0, 0], [-2.0, 0]]).reshape(2, 1, 2)).item() == pytest.approx(2.0)


def test_binary_pairing_rules():
    g = torch.Generator().manual_seed(0)
    draw = losses.sample_binary(500, 3, 0.5, g)
    assert (draw["p"] != draw["n"]).all()
    assert draw["s"].abs().max() <= 0.5 and draw["t"].abs().max() <= 0.5
    assert set(draw["n"].tolist()) == {0, 1, 2}
    ws = torch.randn(4, 3, 2)              # b = 4: pairs (0, 2) and (1, 3)
    off = torch.randn(3, 3, 2)
    d = {"p": torch.tensor([0, 2]), "n": torch.tensor([1, 0]), "s": torch.tensor([0.3, -0.2]),
         "t": torch.tensor([0.7, 0.1])}
    base_a, base_b, q, pos, neg = losses.binary_codes(ws, off, d).chunk(5)
    assert torch.equal(base_a, ws[:2]) and torch.equal(base_b, ws[2:])
    assert torch.allclose(q[1], ws[1] - 0.2 * off[2])
    assert torch.allclose(pos[1], ws[3] - 0.2 * off[2])     # other image, same direction and strength
    assert torch.allclose(neg[0], ws[2] + 0.7 * off[1])     # other image, other direction, own strength


def test_binary_loss_hand_case():
    z = torch.zeros(1, 2, 1, 2)
    e0 = _maps([[1, 0], [0, 0]])
    e1 = _maps([[0, 1], [0, 0]])
    feats = [torch.cat([z, z, e0, 2 * e0, e1])]        # Δq = e0, Δ+ = 2e0 (same), Δ− = e1 (orthogonal)
    assert losses.binary_loss(feats).item() == pytest.approx(-1 / (1 + 1e-6), abs=1e-5)
    feats = [torch.cat([z, z, e0, e1, -3 * e0])]       # swapped: positive orthogonal, negative = −3Δq
    assert losses.binary_loss(feats).item() == pytest.approx(1 / (1 + 1e-6), abs=1e-5)


def test_prototype_symmetric_edit_and_mirror():
    ws = torch.randn(2, 3, 4)
    off = torch.randn(2, 3, 4)
    d = {"q": torch.tensor([1, 0]), "s": torch.tensor([0.8, -0.4]), "mirror": torch.tensor(False)}
    plus, minus = losses.prototype_codes(ws, off, d).chunk(2)
    assert torch.allclose(plus - minus, torch.stack([0.8 * off[1], -0.4 * off[0]]), atol=1e-6)
    assert torch.allclose(plus + minus, 2 * ws, atol=1e-6)
    raw = torch.randn(2, 3, 4, 5)
    assert torch.allclose(losses.prototype_images(raw, False), torch.tanh(raw))
    assert torch.allclose(losses.prototype_images(raw, True), -torch.flip(torch.tanh(raw), dims=[-1]))


def test_prototype_loss_hand_case():
    e = torch.eye(2)
    # two samples, H=1, W=2: the variation lives at position 0 along e_{q_i}; position 1 unchanged
    plus = torch.stack([torch.stack([e[0], e[0]], -1), torch.stack([e[1], e[0]], -1)])[:, :, None]
    minus = torch.stack([torch.stack([-e[0], e[0]], -1), torch.stack([-e[1], e[0]], -1)])[:, :, None]
    feats = [torch.cat([plus, minus])]
    protos = [torch.stack([torch.stack([3 * e[k], 0 * e[k]], -1) for k in range(2)])[:, :, None]]
    good = losses.prototype_loss(feats, protos, torch.tensor([0, 1]))
    bad = losses.prototype_loss(feats, protos, torch.tensor([1, 0]))
    assert good.item() == pytest.approx(-1 / (1 + 1e-6), abs=1e-5)
    assert bad.item() == pytest.approx(1 / (1 + 1e-6), abs=1e-5)
    # a negative strength flips Δ: the squared score does not change
    flipped = losses.prototype_loss([torch.cat([minus, plus])], protos, torch.tensor([0, 1]))
    assert flipped.item() == pytest.approx(good.item(), abs=1e-6)


@pytest.mark.parametrize("mode", ["pca", "free"])
def test_subset_keeps_chosen_directions_in_order(mode):
    kw = {"basis": torch.linalg.qr(torch.randn(6, 6))[0], "num_components": 3} if mode == "pca" else {}
    nav = Navigator(4, 3, 6, direction_mode=mode, labels=["a", "b", "c", "d"],
                    strength_range=[(-1, 1), (-2, 2), (-3, 3), (-4, 4)], seed=0, **kw)
    sub = nav.subset([2, 0])
    assert sub.num_directions == 2 and sub.labels == ["c", "a"] and sub.strength_range == [(-3, 3), (-1, 1)]
    assert torch.allclose(sub.offsets(), nav.offsets()[[2, 0]])
    with pytest.raises(Exception):
        nav.subset([4])
