"""Fixed bases and baseline navigators: the W PCA basis (cached), GANSpace, SeFa and "+attention".

Every baseline is a :class:`~navigator.model.Navigator` with fixed directions, so traversals,
metrics and the CLI work on it unchanged. Fixed attention is uniform over the chosen layers and
sums to 1 like a learned one, so strengths are comparable across navigators.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import torch
from safetensors.torch import load_file, save_file

from editkit.atomic import atomic_path
from editkit.errors import UsageError
from editkit.paths import cache_dir

from .model import Navigator, rms_normalize, uniform_attention

DEFAULT_PCA_SAMPLES = 100_000


def mapping_fingerprint(G: torch.nn.Module) -> str:
    """SHA-256 (hex) of the mapping network's weights: the W distribution depends on nothing else."""
    h = hashlib.sha256()
    module = getattr(G, "mapping", G)
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class PCABasis:
    """Principal components of W = mapping(z), z ~ N(0, I), no truncation."""

    mean: torch.Tensor        # [w_dim]
    components: torch.Tensor  # [w_dim, w_dim], column j = j-th component, sorted by variance
    variances: torch.Tensor   # [w_dim], descending
    num_samples: int

    def top(self, n: int) -> torch.Tensor:
        """[w_dim, n]: the first n components."""
        return self.components[:, :n]


def _covariance_pca(sum_w: torch.Tensor, sum_ww: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mean = sum_w / n
    cov = (sum_ww - n * torch.outer(mean, mean)) / max(n - 1, 1)
    evals, evecs = torch.linalg.eigh(cov)
    order = torch.argsort(evals, descending=True)
    evecs = evecs[:, order]
    # Fix the sign of each component (largest-magnitude entry positive) so bases are reproducible.
    idx = evecs.abs().argmax(dim=0)
    signs = torch.sign(evecs[idx, torch.arange(evecs.shape[1])])
    signs[signs == 0] = 1
    return mean.float(), (evecs * signs).float(), evals[order].clamp_min(0).float()


@torch.no_grad()
def pca_basis(G: torch.nn.Module, n_samples: int = DEFAULT_PCA_SAMPLES, batch_size: int = 4096, seed: int = 0,
              cache: bool = True, progress: bool = False) -> PCABasis:
    """PCA of W from ``n_samples`` mapped codes; cached per generator under :func:`cache_dir` ``/pca``.

    Streamed: float64 sums of w and wwᵀ over batches, then an exact ``eigh`` of the covariance, so the
    authors' 1,000,000 samples (their ``torch.pca_lowrank(q=w_dim)``, an exact SVD at that rank) need
    O(w_dim²) memory, not a 10⁶ × w_dim matrix. Same result as the SVD of all samples at once.
    """
    if n_samples < 2:
        raise UsageError("PCA needs at least 2 samples")
    path = cache_dir() / "pca" / f"{mapping_fingerprint(G)[:24]}-n{n_samples}-s{seed}.safetensors"
    if cache and path.is_file():
        try:
            t = load_file(str(path))
            return PCABasis(t["mean"], t["components"], t["variances"], n_samples)
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
            pass
    device = G.w_avg.device if hasattr(G, "w_avg") else torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    w_dim = G.w_dim
    sum_w = torch.zeros(w_dim, dtype=torch.float64, device=device)
    sum_ww = torch.zeros(w_dim, w_dim, dtype=torch.float64, device=device)
    done = 0
    from rich.progress import Progress  # local: only for long runs
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("PCA of W", total=n_samples)
        while done < n_samples:
            n = min(batch_size, n_samples - done)
            z = torch.randn(n, G.z_dim, generator=gen).to(device)
            w = G.mapping(z, truncation_psi=1.0)[:, 0].double()
            sum_w += w.sum(0)
            sum_ww += w.T @ w
            done += n
            bar.update(task, advance=n)
    mean, comps, var = _covariance_pca(sum_w.cpu(), sum_ww.cpu(), n_samples)
    basis = PCABasis(mean, comps, var, n_samples)
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                save_file({"mean": mean, "components": comps, "variances": var}, str(tmp),
                          metadata={"n_samples": str(n_samples), "seed": str(seed)})
        except OSError:
            pass  # a read-only cache must not stop the work
    return basis


def sefa_directions(affine_weights: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """SeFa closed form: eigenvectors of AᵀA, A = the given style-affine weights stacked ([sum C, w_dim]),
    each style channel's weight vector unit-normalised. Returns (vectors [w_dim, w_dim] as columns,
    eigenvalues), sorted by eigenvalue, descending (float64 ``eigh``; the authors' float32
    ``np.linalg.eig`` returns nearly the same order, with neighbours of almost equal eigenvalue swapped)."""
    if not affine_weights:
        raise UsageError("SeFa needs at least one style-affine weight")
    A = torch.cat([w.detach().double().cpu() for w in affine_weights], dim=0)
    A = A / A.norm(dim=1, keepdim=True).clamp_min(1e-12)
    evals, evecs = torch.linalg.eigh(A.T @ A)
    order = torch.argsort(evals, descending=True)
    evecs = evecs[:, order]
    idx = evecs.abs().argmax(dim=0)
    signs = torch.sign(evecs[idx, torch.arange(evecs.shape[1])])
    signs[signs == 0] = 1
    return (evecs * signs).float(), evals[order].float()


def _check_k(k: int, available: int, what: str) -> None:
    if not 1 <= k <= available:
        raise UsageError(f"{what}: asked for {k} directions, 1..{available} available")


def ganspace(G: torch.nn.Module | None = None, num_directions: int = 30, layers: Sequence[int] | None = None,
             basis: PCABasis | None = None, n_samples: int = DEFAULT_PCA_SAMPLES, num_ws: int | None = None) -> Navigator:
    """GANSpace baseline: u_k = k-th PCA component, uniform attention over ``layers`` (all if None)."""
    if basis is None:
        if G is None:
            raise UsageError("ganspace needs a generator or a PCA basis")
        basis = pca_basis(G, n_samples)
    L = num_ws if num_ws is not None else G.num_ws
    w_dim = basis.components.shape[0]
    _check_k(num_directions, w_dim, "GANSpace")
    return Navigator(num_directions, L, w_dim, direction_mode="fixed", attention_mode="fixed",
                     fixed_directions=basis.top(num_directions).T,
                     fixed_attention=uniform_attention(num_directions, L, layers),
                     info={"method": "ganspace", "layers": list(layers) if layers is not None else None,
                           "pca_samples": basis.num_samples})


def sefa(G: torch.nn.Module, num_directions: int = 30, layers: Sequence[int] | None = None) -> Navigator:
    """SeFa baseline: u_k = k-th eigenvector of AᵀA over the style affines the authors select (every
    conv affine and only the last toRGB: :meth:`Generator.affine_weights`); uniform attention over W+
    ``layers`` (all if None)."""
    vecs, _ = sefa_directions(G.affine_weights(torgb="last"))
    _check_k(num_directions, vecs.shape[1], "SeFa")
    L = G.num_ws
    return Navigator(num_directions, L, G.w_dim, direction_mode="fixed", attention_mode="fixed",
                     fixed_directions=vecs[:, :num_directions].T,
                     fixed_attention=uniform_attention(num_directions, L, layers),
                     info={"method": "sefa", "affines": "convs+last-torgb", "layers": list(layers) if layers is not None else None})


def with_learned_attention(nav: Navigator, seed: int | None = None) -> Navigator:
    """The "+attention" variant of a fixed-direction baseline: same directions, trainable attention."""
    info = dict(nav.info)
    info["method"] = f"{info.get('method', 'fixed')}+attention"
    return Navigator(nav.num_directions, nav.num_ws, nav.w_dim, direction_mode="fixed", attention_mode="learned",
                     fixed_directions=nav.directions().detach().cpu(), labels=nav.labels,
                     strength_range=nav.strength_range, info=info, seed=seed)


def contrafeat_navigator(G: torch.nn.Module, num_directions: int, num_components: int = 100,
                         basis: PCABasis | None = None, n_samples: int = DEFAULT_PCA_SAMPLES,
                         seed: int | None = None, free: bool = False) -> Navigator:
    """A fresh ContraFeat navigator: learned attention and directions in the top-N PCA subspace
    (``free=True``: free directions in W)."""
    info = {"method": "contrafeat"}
    if free:
        return Navigator(num_directions, G.num_ws, G.w_dim, direction_mode="free", info=info, seed=seed)
    if basis is None:
        basis = pca_basis(G, n_samples)
    n = min(num_components, basis.components.shape[1])
    info.update(num_components=n, pca_samples=basis.num_samples)
    return Navigator(num_directions, G.num_ws, G.w_dim, direction_mode="pca", basis=basis.top(n),
                     num_components=n, info=info, seed=seed)


def baseline_navigator(G: torch.nn.Module, method: str, num_directions: int, layers: Sequence[int] | None = None,
                       n_samples: int = DEFAULT_PCA_SAMPLES) -> Navigator:
    """A baseline by name: ``'pca'``/``'ganspace'`` or ``'sefa'``."""
    if method in ("pca", "ganspace"):
        return ganspace(G, num_directions, layers=layers, n_samples=n_samples)
    if method == "sefa":
        return sefa(G, num_directions, layers=layers)
    raise UsageError(f"unknown baseline {method!r} (use ganspace or sefa)")


__all__ = ["PCABasis", "pca_basis", "ganspace", "sefa", "sefa_directions", "with_learned_attention",
           "contrafeat_navigator", "baseline_navigator", "cache_dir", "mapping_fingerprint", "rms_normalize"]
