"""The ContraFeat navigator: K directions, each a layer attention over W+ times a direction in W.

One class covers the method and every baseline so that traversal, metrics and the CLI treat them
alike. Per direction k:

* attention a_k in R^L: either learned (``softmax(logits)`` then the fixed 3-tap Gaussian smoothing
  with reflect padding) or fixed (GANSpace / SeFa: uniform over a layer range, summing to 1);
* direction u_k in R^w_dim: learned coefficients in the top-N PCA subspace of W (``'pca'``), a free
  learned vector (``'free'``), or fixed (``'fixed'``: PCA / SeFa components). Always RMS-normalised
  so that ||u_k|| = sqrt(w_dim).

The edit of strength s is ``w+ + s * a_k ⊗ u_k``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from editkit.errors import UsageError

#: 1-D Gaussian, kernel size 3, sigma 1, normalised: (e^-0.5, 1, e^-0.5) / sum.
_G = math.exp(-0.5)
SMOOTHING_KERNEL = (_G / (1 + 2 * _G), 1 / (1 + 2 * _G), _G / (1 + 2 * _G))

DIRECTION_MODES = ("pca", "free", "fixed")
_PER_DIRECTION = ("attention_logits", "fixed_attention", "coefficients", "free_directions", "fixed_directions")
ATTENTION_MODES = ("learned", "fixed")


def smooth_attention(weights: torch.Tensor) -> torch.Tensor:
    """Apply the fixed 3-tap Gaussian (0.2741, 0.4519, 0.2741) along the last axis, reflect padding."""
    if weights.shape[-1] < 2:
        return weights
    left = torch.cat([weights[..., 1:2], weights[..., :-1]], dim=-1)    # x[l-1], reflect at 0 -> x[1]
    right = torch.cat([weights[..., 1:], weights[..., -2:-1]], dim=-1)  # x[l+1], reflect at L-1 -> x[L-2]
    k0, k1, k2 = SMOOTHING_KERNEL
    return k0 * left + k1 * weights + k2 * right


def rms_normalize(u: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """u / sqrt(mean(u^2) + eps) along the last axis, so that ||u|| = sqrt(dim)."""
    return u / torch.sqrt(u.pow(2).mean(dim=-1, keepdim=True) + eps)


def uniform_attention(num_directions: int, num_ws: int, layers: Sequence[int] | None = None) -> torch.Tensor:
    """[K, L] attention, uniform over ``layers`` (all if None) and summing to 1."""
    att = torch.zeros(num_directions, num_ws)
    idx = list(range(num_ws)) if layers is None else sorted(set(int(i) for i in layers))
    if not idx or min(idx) < 0 or max(idx) >= num_ws:
        raise UsageError(f"layer range {idx} outside 0..{num_ws - 1}")
    att[:, idx] = 1.0 / len(idx)
    return att


class Navigator(nn.Module):
    """K directions in W+ with per-direction layer attention (see the module docstring)."""

    def __init__(
        self,
        num_directions: int,
        num_ws: int,
        w_dim: int,
        direction_mode: str = "pca",
        attention_mode: str = "learned",
        basis: torch.Tensor | None = None,
        num_components: int = 100,
        fixed_directions: torch.Tensor | None = None,
        fixed_attention: torch.Tensor | None = None,
        labels: Sequence[str | None] | None = None,
        strength_range: Sequence[Sequence[float]] | None = None,
        info: dict | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        if direction_mode not in DIRECTION_MODES:
            raise UsageError(f"direction_mode must be one of {DIRECTION_MODES}, got {direction_mode!r}")
        if attention_mode not in ATTENTION_MODES:
            raise UsageError(f"attention_mode must be one of {ATTENTION_MODES}, got {attention_mode!r}")
        if num_directions < 1 or num_ws < 1 or w_dim < 1:
            raise UsageError("num_directions, num_ws and w_dim must be positive")
        self.num_directions, self.num_ws, self.w_dim = int(num_directions), int(num_ws), int(w_dim)
        self.direction_mode, self.attention_mode = direction_mode, attention_mode
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        K, L = self.num_directions, self.num_ws

        if attention_mode == "learned":
            self.attention_logits = nn.Parameter(torch.randn(K, L, generator=gen))
        else:
            att = fixed_attention if fixed_attention is not None else uniform_attention(K, L)
            if tuple(att.shape) != (K, L):
                raise UsageError(f"fixed attention must be [{K}, {L}], got {tuple(att.shape)}")
            self.register_buffer("fixed_attention", att.detach().float().clone())

        if direction_mode == "pca":
            if basis is None:
                raise UsageError("direction_mode='pca' needs the PCA basis [w_dim, N]")
            n = min(int(num_components), basis.shape[1])
            if basis.shape[0] != w_dim:
                raise UsageError(f"basis has {basis.shape[0]} rows, expected w_dim={w_dim}")
            self.register_buffer("basis", basis[:, :n].detach().float().clone())
            self.coefficients = nn.Parameter(torch.randn(K, n, generator=gen))
        elif direction_mode == "free":
            self.free_directions = nn.Parameter(torch.randn(K, w_dim, generator=gen))
        else:
            if fixed_directions is None or tuple(fixed_directions.shape) != (K, w_dim):
                got = None if fixed_directions is None else tuple(fixed_directions.shape)
                raise UsageError(f"fixed directions must be [{K}, {w_dim}], got {got}")
            self.register_buffer("fixed_directions", rms_normalize(fixed_directions.detach().float()).clone())

        self.labels: list[str | None] = list(labels) if labels is not None else [None] * K
        if len(self.labels) != K:
            raise UsageError(f"{len(self.labels)} labels for {K} directions")
        rng = strength_range if strength_range is not None else [(-1.0, 1.0)] * K
        self.strength_range: list[tuple[float, float]] = [(float(a), float(b)) for a, b in rng]
        if len(self.strength_range) != K:
            raise UsageError(f"{len(self.strength_range)} strength ranges for {K} directions")
        self.info: dict = dict(info or {})

    # -- the three views of the navigator -------------------------------------------------------
    def attention(self) -> torch.Tensor:
        """[K, L] layer attention: softmax over layers then Gaussian smoothing (or the fixed one)."""
        if self.attention_mode == "learned":
            return smooth_attention(torch.softmax(self.attention_logits, dim=-1))
        return self.fixed_attention

    def directions(self) -> torch.Tensor:
        """[K, w_dim] directions in W, RMS-normalised (norm sqrt(w_dim))."""
        if self.direction_mode == "pca":
            return rms_normalize(self.coefficients @ self.basis.T)
        if self.direction_mode == "free":
            return rms_normalize(self.free_directions)
        return self.fixed_directions

    def offsets(self) -> torch.Tensor:
        """[K, L, w_dim]: D_k = a_k ⊗ u_k."""
        return self.attention()[:, :, None] * self.directions()[:, None, :]

    def edit(self, ws: torch.Tensor, k: int | torch.Tensor, strength: float | torch.Tensor) -> torch.Tensor:
        """Return ``ws + strength * D_k``.

        ``ws`` is [N, L, w_dim] or [L, w_dim]; ``k`` an int or N indices; ``strength`` a float or N values.
        """
        squeeze = ws.dim() == 2
        if squeeze:
            ws = ws[None]
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise UsageError(f"codes must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        D = self.offsets().to(device=ws.device, dtype=ws.dtype)
        if isinstance(k, int):
            if not 0 <= k < self.num_directions:
                raise UsageError(f"direction {k} out of range 0..{self.num_directions - 1}")
            Dk = D[k][None]
        else:
            Dk = D[torch.as_tensor(k, device=ws.device).long()]
        s = torch.as_tensor(strength, dtype=ws.dtype, device=ws.device).reshape(-1, 1, 1)
        out = ws + s * Dk
        return out[0] if squeeze else out

    def forward(self) -> torch.Tensor:  # noqa: D401 - so DistributedDataParallel can wrap it
        """Same as :meth:`offsets`."""
        return self.offsets()

    @torch.no_grad()
    def negate(self, indices: Sequence[int]) -> "Navigator":
        """Flip the sign of directions ``indices`` in place (so +strength increases a named attribute);
        their strength ranges are mirrored."""
        for k in indices:
            for name in ("coefficients", "free_directions", "fixed_directions"):
                t = getattr(self, name, None)
                if t is not None:
                    t[k].neg_()
            lo, hi = self.strength_range[k]
            self.strength_range[k] = (-hi, -lo)
        return self

    def subset(self, indices: Sequence[int]) -> "Navigator":
        """A new navigator holding directions ``indices`` in that order (e.g. sorted by perceptual
        magnitude, near-duplicates dropped), with their labels and strength ranges."""
        idx = [int(i) for i in indices]
        if not idx or min(idx) < 0 or max(idx) >= self.num_directions:
            raise UsageError(f"direction indices must be in 0..{self.num_directions - 1}, got {idx}")
        cfg = self.config()
        sd = {k: v.detach()[idx] if k in _PER_DIRECTION else v.detach() for k, v in self.state_dict().items()}
        nav = Navigator(len(idx), self.num_ws, self.w_dim, self.direction_mode, self.attention_mode,
                        basis=sd.get("basis"), num_components=cfg["num_components"] or 0,
                        fixed_directions=sd.get("fixed_directions"), fixed_attention=sd.get("fixed_attention"),
                        labels=[self.labels[i] for i in idx], strength_range=[self.strength_range[i] for i in idx],
                        info=dict(self.info, subset_of=self.num_directions, subset=idx))
        nav.load_state_dict(sd)
        return nav.to(next(iter(sd.values())).device)

    # -- serialisation --------------------------------------------------------------------------
    def config(self) -> dict:
        """JSON-able constructor arguments (tensors excluded; they go in the state dict)."""
        return {
            "num_directions": self.num_directions,
            "num_ws": self.num_ws,
            "w_dim": self.w_dim,
            "direction_mode": self.direction_mode,
            "attention_mode": self.attention_mode,
            "num_components": int(self.basis.shape[1]) if self.direction_mode == "pca" else None,
            "labels": list(self.labels),
            "strength_range": [list(r) for r in self.strength_range],
            "info": self.info,
        }

    def extra_repr(self) -> str:
        return (f"K={self.num_directions}, num_ws={self.num_ws}, w_dim={self.w_dim}, "
                f"directions={self.direction_mode}, attention={self.attention_mode}")
