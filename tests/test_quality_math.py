"""Generic math of the generator-quality measure: Fréchet distance and k-NN precision/recall."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from editkit.quality import compare_features, feature_stats, frechet_distance, frechet_distance_features, precision_recall


def gauss(n, d, shift=0.0, scale=1.0, seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, d)) * scale + shift


def test_identical_sets_score_zero():
    x = gauss(500, 16)
    s = compare_features(x, x.copy())
    assert s.fd == pytest.approx(0.0, abs=1e-8)
    assert s.precision == 1.0 and s.recall == 1.0


def test_closed_form_for_diagonal_gaussians():
    # FD of N(m1, diag(a)) and N(m2, diag(b)) = |m1-m2|^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    want = ((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(want, rel=1e-10)
    # and for a rotated (non-diagonal) pair, where the square root of the product matters
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    assert frechet_distance(m1, q @ np.diag(a) @ q.T, m2, q @ np.diag(b) @ q.T) == pytest.approx(want, rel=1e-8)


def test_statistics_of_samples():
    x = gauss(20000, 4, shift=2.0, scale=3.0, seed=2)
    mu, cov = feature_stats(x)
    assert np.allclose(mu, 2.0, atol=0.1) and np.allclose(np.diag(cov), 9.0, rtol=0.05)


def test_shifted_gaussians_are_ordered():
    real = gauss(1000, 8, seed=3)
    fds, precisions, recalls = [], [], []
    for shift in (0.0, 0.5, 1.0, 2.0):
        fake = gauss(1000, 8, shift=shift, seed=4)
        s = compare_features(real, fake)
        fds.append(s.fd), precisions.append(s.precision), recalls.append(s.recall)
    assert fds == sorted(fds) and fds[0] < 0.1 and fds[-1] == pytest.approx(8 * 4.0, rel=0.15)
    assert precisions == sorted(precisions, reverse=True) and recalls == sorted(recalls, reverse=True)
    assert precisions[0] > 0.85 and precisions[-1] < 0.3


def test_precision_and_recall_separate_fidelity_from_coverage():
    real = gauss(1000, 4, seed=5)
    collapsed = gauss(1000, 4, scale=0.2, seed=6)  # inside the real manifold, covers little of it
    spread = gauss(1000, 4, scale=3.0, seed=7)     # covers the real manifold, mostly outside it
    p_c, r_c = precision_recall(real, collapsed)
    p_s, r_s = precision_recall(real, spread)
    assert p_c > 0.95 and r_c < 0.3
    assert r_s > 0.95 and p_s < 0.5


def _textures(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 32, 32, generator=g)
    return F.avg_pool2d(x, 3, stride=1, padding=1) + 0.1 * torch.rand(n, 3, 32, 32, generator=g)


def _features(x):
    """Simple image features: colour means/stds and gradient energies at two scales."""
    feats = [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
    for s in (1, 2):
        y = F.avg_pool2d(x, s) if s > 1 else x
        feats += [(y[..., 1:, :] - y[..., :-1, :]).abs().mean(dim=(2, 3)), (y[..., 1:] - y[..., :-1]).abs().mean(dim=(2, 3))]
    return torch.cat(feats, dim=1)


def test_blurred_copy_scores_worse_than_a_fresh_sample():
    real, fresh = _textures(400, 0), _textures(400, 1)
    blurred = F.avg_pool2d(fresh, 3, stride=1, padding=1)
    good, bad = compare_features(_features(real), _features(fresh)), compare_features(_features(real), _features(blurred))
    assert bad.fd > 10 * good.fd
    assert bad.precision < good.precision


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance_features(np.full((4, 2), np.nan), gauss(4, 2))
    with pytest.raises(ValueError, match="feature sizes"):
        precision_recall(gauss(10, 2), gauss(10, 3))
    with pytest.raises(ValueError, match="k must"):
        precision_recall(gauss(3, 2), gauss(3, 2), k=3)
