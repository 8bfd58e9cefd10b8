"""Traversals: frames along a direction, grids, looping GIFs, ordering by perceptual magnitude and
removal of near-duplicate directions."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from editkit.render import bounce, to_uint8
from editkit.render import save_gif as write_gif

from .losses import SIM_EPS, focus_mask, normalize_features
from .model import Navigator


def _as_batch(ws: torch.Tensor) -> torch.Tensor:
    return ws[None] if ws.dim() == 2 else ws


def strengths(strength: float | tuple[float, float], frames: int) -> torch.Tensor:
    """``frames`` evenly spaced strengths across [-s, s] (or [lo, hi])."""
    lo, hi = (-abs(strength), abs(strength)) if isinstance(strength, (int, float)) else strength
    return torch.linspace(float(lo), float(hi), int(frames))


@torch.no_grad()
def traversal_frames(G, nav: Navigator, ws: torch.Tensor, k: int, strength: float | tuple[float, float] = 1.0,
                     frames: int = 9, noise_mode: str = "const", batch_size: int = 8) -> np.ndarray:
    """Frames of ``ws`` (one code [L, w_dim] or [1, L, w_dim]) edited along direction k across
    [-strength, +strength]: uint8 [frames, H, W, 3]."""
    w = _as_batch(ws)[:1]
    dev = w.device
    s = strengths(strength, frames).to(dev)
    codes = nav.to(dev).edit(w.expand(len(s), -1, -1), k, s)
    out = [G.synthesis(codes[i:i + batch_size], noise_mode=noise_mode) for i in range(0, len(codes), batch_size)]
    return to_uint8(torch.cat(out))


def _resize(frames: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or frames.shape[1] == size:
        return frames
    t = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    t = F.interpolate(t, size=(size, size), mode="area" if size < frames.shape[1] else "bilinear",
                      align_corners=None if size < frames.shape[1] else False)
    return t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def traversal_grid(G, nav: Navigator, ws: torch.Tensor, directions: Sequence[int] | None = None,
                   strength: float = 1.0, frames: int = 7, cell_size: int | None = None,
                   noise_mode: str = "const") -> np.ndarray:
    """One row per (direction, code), one column per strength: uint8 [rows·S, frames·S, 3]."""
    ks = list(range(nav.num_directions)) if directions is None else list(directions)
    rows = []
    for k in ks:
        for w in _as_batch(ws):
            f = _resize(traversal_frames(G, nav, w, k, strength, frames, noise_mode), cell_size)
            rows.append(np.concatenate(list(f), axis=1))
    return np.concatenate(rows, axis=0)


def save_gif(path: str | Path, frames: Sequence[np.ndarray], duration_ms: float = 100.0) -> Path:
    """A looping GIF that plays forward then back, ``duration_ms`` per frame."""
    return write_gif(path, bounce(frames), int(round(duration_ms)))


def _features(sensor: Callable, images: torch.Tensor) -> list[torch.Tensor]:
    return [normalize_features(f.float()) for f in sensor(images)]


@torch.no_grad()
def direction_magnitude(G, nav: Navigator, ws: torch.Tensor, k: int, strength: float, sensor: Callable | None = None,
                        distance: Callable | None = None, noise_mode: str = "const") -> float:
    """Mean perceptual distance between G(w − s·D_k) and G(w + s·D_k) over the codes ``ws``.

    ``distance(a, b) -> [N]`` (e.g. :class:`navigator.sensors.LPIPSAlex`, the paper's LPIPS) is used
    when given; otherwise an LPIPS-like distance on ``sensor`` features (per-position normalised,
    squared difference summed over channels, averaged over positions, summed over layers).
    """
    if distance is None and sensor is None:
        raise ValueError("give a sensor or a distance")
    w = _as_batch(ws)
    imgs = G.synthesis(torch.cat([nav.edit(w, k, -strength), nav.edit(w, k, strength)]), noise_mode=noise_mode)
    if distance is not None:
        a, b = imgs.chunk(2)
        d = distance(a, b)
    else:
        fa, fb = zip(*[f.chunk(2) for f in _features(sensor, imgs)])
        d = sum(((x - y) ** 2).sum(1).mean(dim=(1, 2)) for x, y in zip(fa, fb))
    return float(d.float().mean())


def perceptual_magnitude(G, nav: Navigator, ws: torch.Tensor, sensor: Callable | None = None, strength: float = 1.0,
                         noise_mode: str = "const", distance: Callable | None = None) -> torch.Tensor:
    """[K]: :func:`direction_magnitude` of every direction at ``strength``."""
    return torch.tensor([direction_magnitude(G, nav, ws, k, strength, sensor, distance, noise_mode)
                         for k in range(nav.num_directions)])


def calibrate_strengths(G, nav: Navigator, ws: torch.Tensor, target: float, sensor: Callable | None = None,
                        distance: Callable | None = None, s_max: float = 10.0, steps: int = 10,
                        noise_mode: str = "const") -> list[tuple[float, float]]:
    """Recommended range (−s_k, s_k) per direction: the strength at which the perceptual distance
    between the two ends reaches ``target`` (bisection on [0, s_max]; s_max when never reached).
    Assign the result to ``nav.strength_range`` to store it with the navigator."""
    out = []
    for k in range(nav.num_directions):
        if direction_magnitude(G, nav, ws, k, s_max, sensor, distance, noise_mode) < target:
            out.append((-s_max, s_max))
            continue
        lo, hi = 0.0, s_max
        for _ in range(steps):
            mid = (lo + hi) / 2
            if direction_magnitude(G, nav, ws, k, mid, sensor, distance, noise_mode) < target:
                lo = mid
            else:
                hi = mid
        s = round((lo + hi) / 2, 4)
        out.append((-s, s))
    return out


def order_by_magnitude(magnitudes: torch.Tensor) -> list[int]:
    """Direction indices, largest perceptual magnitude first."""
    return [int(i) for i in torch.argsort(magnitudes, descending=True, stable=True)]


def layer_similarity(delta_a: torch.Tensor, delta_b: torch.Tensor) -> torch.Tensor:
    """De-duplication similarity at one layer, [B] (the authors' ``generate_discover_trav.get_sim``):
    Σ_hw cos²·M / (Σ_hw M + 1e-6), M = m_a ⊙ m_b the min-max focus masks, cos the per-position
    channel cosine. Unlike the training loss's (M·cos)², the mask weights the squared cosine."""
    M = focus_mask(delta_a) * focus_mask(delta_b)
    c2 = F.cosine_similarity(delta_a, delta_b, dim=1).square()
    return (c2 * M).sum(dim=(1, 2)) / (M.sum(dim=(1, 2)) + SIM_EPS)


@torch.no_grad()
def variation_overlap(G, nav: Navigator, ws: torch.Tensor, sensor: Callable, strength: float = 1.0,
                      noise_mode: str = "const") -> torch.Tensor:
    """[K, K]: :func:`layer_similarity` of the variations Δ_k = S(G(w + s·D_k)) − S(G(w)) (last minus
    middle frame of a traversal, as the authors), summed over the sensor layers and averaged over
    the codes ``ws``. A direction scores the number of layers against itself; duplicates score high."""
    w = _as_batch(ws)
    base = [f.float() for f in sensor(G.synthesis(w, noise_mode=noise_mode))]
    deltas = []
    for k in range(nav.num_directions):
        edited = sensor(G.synthesis(nav.edit(w, k, strength), noise_mode=noise_mode))
        deltas.append([e.float() - b for e, b in zip(edited, base)])
    K = nav.num_directions
    out = torch.zeros(K, K, dtype=torch.float64)
    for j in range(K):
        for k in range(j, K):
            v = sum(layer_similarity(a, b).double().mean() for a, b in zip(deltas[j], deltas[k])).cpu()
            out[j, k] = out[k, j] = v
    return out


def remove_near_duplicates(overlap: torch.Tensor, order: Sequence[int] | None = None, threshold: float = 0.5,
                           start_from_last: bool = False) -> list[int]:
    """The directions kept, in ``order`` (default 0..K-1), by the authors' rule
    (``generate_discover_trav.get_duplicated_dirs``) on the similarities ``overlap`` [K, K]:
    with ``start_from_last=False`` (``edit_image.py``) a direction is dropped when its similarity
    to **any earlier** direction of ``order`` exceeds ``threshold``, dropped or not; with ``True``
    (the traversal script's default) when it exceeds it for **any later** one."""
    order = list(range(overlap.shape[0])) if order is None else list(order)
    kept = []
    for i, k in enumerate(order):
        others = order[i + 1:] if start_from_last else order[:i]
        if not any(float(overlap[k, j]) > threshold for j in others):
            kept.append(k)
    return kept
