"""The generator-quality measure: face-network features of generated vs real faces.

Both sets are faces at the generator's resolution with the same framing (real ones are the training
set's images resized exactly as the trainer resizes them; generated ones are quantised to uint8 like
them), then go through the same path into the pretrained face-recognition network of
:mod:`editkit.facenets`: the whole square crop, resized to its 150-px input. Features are its 128-D
descriptors (``descriptor``) or the 256-D globally pooled maps of its trunk before the last linear
layer (``trunk``). The scores (:mod:`editkit.quality`): Fréchet distance (FD, lower is better) and
k-NN precision/recall (higher is better). Real-set features are cached on disk.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .quality import QualityScores, compare_features

SPACES = ("descriptor", "trunk")
DEFAULT_SAMPLES = 5000


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _resize_matrix(n_in: int, size: int) -> torch.Tensor:
    """[size, n_in] weights of face-api's legacy bilinear resize along one axis (taken from
    :func:`editkit.facenets.preprocess.resize_bilinear_legacy` applied to unit impulses)."""
    from .facenets.preprocess import resize_bilinear_legacy

    impulses = torch.eye(n_in, dtype=torch.float64).reshape(n_in, 1, n_in, 1)
    return resize_bilinear_legacy(impulses, size)[:, 0, :, 0].T.float()


def face_features(images: torch.Tensor, spaces: tuple[str, ...] = SPACES, batch_size: int = 64,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Features {space: [N, D] float64} of square face images [N,3,H,W] (uint8, or float in [-1, 1]).

    The resize to the network's 150 px is face-api's legacy bilinear written as two matrix products
    (the same weights; float32 instead of float64 arithmetic), ~100x faster than per-pixel gathers.
    """
    from . import facenets

    bad = [s for s in spaces if s not in SPACES]
    if bad or not spaces:
        raise ValueError(f"feature spaces must be among {', '.join(SPACES)}, got {spaces!r}")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise ValueError(f"expected square images [N,3,R,R], got {tuple(images.shape)}")
    net = facenets.load("recognition")
    R = _resize_matrix(images.shape[-1], 150)
    mean = torch.tensor(facenets.MEAN_RGB)[:, None, None]
    u8 = _to_uint8(images)
    out: dict[str, list[np.ndarray]] = {s: [] for s in spaces}
    with torch.inference_mode():
        for lo in range(0, len(u8), batch_size):
            x = R @ u8[lo:lo + batch_size].float() @ R.T
            pooled = net.features((x - mean) / 255.0)["conv256_down_out"].mean(dim=(2, 3))
            if "trunk" in out:
                out["trunk"].append(pooled.double().numpy())
            if "descriptor" in out:
                out["descriptor"].append(net.fc(pooled).double().numpy())
            if progress is not None:
                progress(min(lo + batch_size, len(u8)), len(u8))
    return {s: np.concatenate(v) for s, v in out.items()}


def generate_images(G, n: int, seed: int = 0, truncation: float = 1.0, batch_size: int = 64) -> torch.Tensor:
    """``n`` generator samples (seeded latents, random synthesis noise) as uint8 [N,3,R,R]."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the synthesis noise
    dev = G.w_avg.device if hasattr(G, "w_avg") else "cpu"
    out = []
    with torch.no_grad():
        for lo in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - lo), G.z_dim, generator=g).to(dev)
            out.append(_to_uint8(G(z, truncation_psi=truncation)).cpu())
    return torch.cat(out)


def real_images(source: str | Path, resolution: int, n: int, seed: int = 0, part: int = 0) -> torch.Tensor:
    """``n`` images of a training set, uint8 [N,3,R,R], decoded as the trainer does: block ``part`` of a
    seeded permutation (different parts are disjoint, e.g. the reference set and a real-vs-real check)."""
    from .training.data import default_cache_dir, load_dataset

    data = load_dataset(source, resolution, cache_dir=default_cache_dir())
    if (part + 1) * n > len(data):
        raise ValueError(f"{n} real images (part {part}) requested, the set has {len(data)}")
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[part * n:(part + 1) * n]
    return data.images[idx.sort().values]


def real_features(source: str | Path, resolution: int, n: int, space: str = "descriptor", seed: int = 0,
                  part: int = 0, cache: bool = True) -> np.ndarray:
    """Features of ``n`` real images (every space is computed in one pass and cached in the user cache
    folder, keyed by source, size and choice)."""
    from .paths import cache_dir

    src = Path(source)
    st = src.stat()

    def path_of(sp: str) -> Path:
        key = json.dumps([str(src.resolve()), st.st_size, st.st_mtime_ns, resolution, n, sp, seed, part, 1])
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return cache_dir() / "quality" / f"{src.stem}-{resolution}px-{sp}-{n}-p{part}-{digest}.npy"

    if cache and path_of(space).exists():
        return np.load(path_of(space))
    feats = face_features(real_images(src, resolution, n, seed, part), SPACES)
    if cache:
        from .atomic import atomic_path

        for sp, f in feats.items():
            path_of(sp).parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path_of(sp)) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, f)
    return feats[space]


@dataclass
class GeneratorQuality(QualityScores):
    """FD and precision/recall of a generator against a real set, in one feature space."""

    space: str = ""
    truncation: float = 1.0


def measure_generator(G, real: str | Path, n_fake: int = DEFAULT_SAMPLES, n_real: int = DEFAULT_SAMPLES,
                      spaces: tuple[str, ...] = SPACES, k: int = 3, truncation: float = 1.0, seed: int = 0,
                      real_seed: int = 0) -> dict[str, GeneratorQuality]:
    """The measure of ``G`` against ``n_real`` images of the set ``real``, for each feature space."""
    fake = face_features(generate_images(G, n_fake, seed=seed, truncation=truncation), spaces)
    out = {}
    for space in spaces:
        s = compare_features(real_features(real, G.resolution, n_real, space, seed=real_seed), fake[space], k=k)
        out[space] = GeneratorQuality(**s.as_dict(), space=space, truncation=truncation)
    return out


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of uint8 images (the sanity check's degraded copy), uint8 out."""
    from torchvision.transforms.functional import gaussian_blur

    size = 2 * int(np.ceil(3 * sigma)) + 1
    return gaussian_blur(images.float(), [size, size], [sigma, sigma]).round().clamp(0, 255).to(torch.uint8)


def model_card_section(q: dict) -> list[str]:
    """The model card's generator-quality section (markdown lines) from build_report['generator_quality']."""
    lines = ["## Generator quality (measured)",
             f"Face-network features (`editkit.generator_quality`: the 128-D descriptors and 256-D pooled trunk of the"
             f" face-recognition network) of generated faces (truncation {q['truncation']:g}) against as many real"
             f" UTKFace faces (a fixed seeded choice) at 64 px, same crop. FD: Fréchet distance (lower is better);"
             f" precision/recall: k-NN manifolds, k={q['k']} (Kynkäänniemi et al. 2019), descriptor space."
             f" `benchmarks/generator_quality.py`; {q.get('note', '')}", "",
             "| set | faces | FD descriptor | FD trunk | precision | recall | note |", "|---|---|---|---|---|---|---|"]
    for name, r in q["rows"].items():
        lines.append(f"| {name} | {r['n']:,} | {r['fd_descriptor']:.4f} | {r['fd_trunk']:.3f} | {r['precision']:.3f} |"
                     f" {r['recall']:.3f} | {r['note']} |")
    lines += ["", "Sanity checks: " + ", ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in q["checks"].items()), ""]
    return lines
