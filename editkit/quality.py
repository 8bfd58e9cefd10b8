"""Generator quality in a feature space: Fréchet distance and k-NN precision/recall.

* Fréchet distance (the FID formula, Heusel et al. 2017) between Gaussians fitted to two feature
  sets: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``. The matrix square root is taken as
  ``S1^(1/2) S2 S1^(1/2)`` (symmetric PSD, same trace of the square root), so the result is real and
  stable without scipy.
* Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of
  balls around its points with the radius to the point's k-th nearest neighbour in the same set;
  precision = fraction of generated points inside the real manifold, recall = fraction of real
  points inside the generated manifold.

The feature extractor is separate (:mod:`editkit.generator_quality` uses the face networks); every
function here takes plain ``[N, D]`` arrays or tensors.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


def _as_f64(x) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"features must be [N >= 2, D], got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("features contain NaN or infinite values")
    return a


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], covariance [D, D]) of features [N, D] in float64 (unbiased covariance, like FID)."""
    a = _as_f64(features)
    return a.mean(axis=0), np.cov(a, rowvar=False)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: means {mu1.shape}/{mu2.shape}, covariances {s1.shape}/{s2.shape}")
    r1 = _sqrt_psd(s1)
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum())
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean, 0.0))


def frechet_distance_features(a, b) -> float:
    """Fréchet distance between the Gaussians fitted to feature sets a [N, D] and b [M, D]."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def _kth_radius(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row of x."""
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
    return torch.cat(out)


def _inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    """For each point: is it within radius of at least one centre?"""
    out = []
    for i in range(0, len(points), chunk):
        d = torch.cdist(points[i:i + chunk], centres)
        out.append((d <= radii[None]).any(dim=1))
    return torch.cat(out)


def precision_recall(real, fake, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """Improved precision and recall of ``fake`` [M, D] against ``real`` [N, D] with k-NN manifolds."""
    r = torch.as_tensor(_as_f64(real))
    f = torch.as_tensor(_as_f64(fake))
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature sizes differ: {r.shape[1]} vs {f.shape[1]}")
    if not 1 <= k < min(len(r), len(f)):
        raise ValueError(f"k must be in 1..{min(len(r), len(f)) - 1}, got {k}")
    precision = _inside(f, r, _kth_radius(r, k, chunk), chunk).double().mean().item()
    recall = _inside(r, f, _kth_radius(f, k, chunk), chunk).double().mean().item()
    return float(precision), float(recall)


@dataclass
class QualityScores:
    """The measure for one pair of feature sets."""

    fd: float
    precision: float
    recall: float
    n_real: int
    n_fake: int
    k: int

    def as_dict(self) -> dict:
        return asdict(self)


def compare_features(real, fake, k: int = 3) -> QualityScores:
    """Fréchet distance and precision/recall of ``fake`` features against ``real`` features."""
    p, r = precision_recall(real, fake, k=k)
    return QualityScores(fd=frechet_distance_features(real, fake), precision=p, recall=r,
                         n_real=len(real), n_fake=len(fake), k=k)
