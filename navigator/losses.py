"""ContraFeat losses (contrafeat.md §3-4): focus masks, masked squared-cosine similarity of feature
variations, the binary and prototype contrastive losses, and the diversity term.

Conventions: a *variation* at one sensor layer is a tensor [B, C, H, W]; a list of them (one per
sensor layer) is what the multi-layer functions take.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

MASK_EPS = 1e-6   # min-max normalisation of the focus mask
SIM_EPS = 1e-6    # Σ mask in the similarity denominator
COS_EPS = 1e-8    # per-position norms in the binary loss's cosine (nn.CosineSimilarity: max(||x||, eps))
PROTO_EPS = 1e-6  # per-position normalisation in the prototype loss's cosine (x / (||x|| + 1e-6), the authors')
FEAT_EPS = 1e-10  # per-position L2 normalisation of features (LPIPS convention)


def _at_least_f32(x: torch.Tensor) -> torch.Tensor:
    """Losses run in float32 (half-precision sensor outputs are upcast); float64 stays float64."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def focus_mask(delta: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] variation -> [B, H, W]: channel L2 norm, min-max normalised per sample (not detached)."""
    m = torch.linalg.vector_norm(delta, dim=1)
    flat = m.flatten(1)
    lo = flat.min(dim=1).values[:, None, None]
    hi = flat.max(dim=1).values[:, None, None]
    return (m - lo) / (hi - lo + MASK_EPS)


def _unit(x: torch.Tensor, eps: float = COS_EPS) -> torch.Tensor:
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(eps)


def normalize_features(x: torch.Tensor) -> torch.Tensor:
    """Per-position L2 normalisation over channels: x / (||x[:, :, h, w]|| + 1e-10)."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + FEAT_EPS)


def layer_similarity(delta_a: torch.Tensor, delta_b: torch.Tensor) -> torch.Tensor:
    """σ at one layer, [B]: Σ_hw (M·c)² / (Σ_hw M + 1e-6), M = m_a ⊙ m_b, c = per-position cosine."""
    M = focus_mask(delta_a) * focus_mask(delta_b)
    c = (_unit(delta_a) * _unit(delta_b)).sum(dim=1)
    return (M * c).pow(2).sum(dim=(1, 2)) / (M.sum(dim=(1, 2)) + SIM_EPS)


def variation_similarity(deltas_a: Sequence[torch.Tensor], deltas_b: Sequence[torch.Tensor]) -> torch.Tensor:
    """σ summed over the feature layers, [B]."""
    if len(deltas_a) != len(deltas_b) or not deltas_a:
        raise ValueError("need two equally long, non-empty lists of variations")
    return sum(layer_similarity(a, b) for a, b in zip(deltas_a, deltas_b))


def similarity_matrix(deltas: Sequence[torch.Tensor], prototypes: Sequence[torch.Tensor]) -> torch.Tensor:
    """[B, K]: σ(Δ_i, Π_k) summed over layers; Π_k is resized (bilinear) to each layer's size.

    The focus masks come from the raw Δ_i and Π_k; the per-position normalisation x / (||x|| + 1e-6)
    happens only inside the cosine (the authors' ``memcont_utils.extract_loss_L_by_maskdiff``).
    """
    total = None
    for d, p in zip(deltas, prototypes):
        if p.shape[-2:] != d.shape[-2:]:
            p = F.interpolate(p, size=d.shape[-2:], mode="bilinear", align_corners=False)
        md, mp = focus_mask(d), focus_mask(p)                      # [B,H,W], [K,H,W]
        M = md[:, None] * mp[None]                                 # [B,K,H,W]
        du = d / (torch.linalg.vector_norm(d, dim=1, keepdim=True) + PROTO_EPS)
        pu = p / (torch.linalg.vector_norm(p, dim=1, keepdim=True) + PROTO_EPS)
        c = torch.einsum("bchw,kchw->bkhw", du, pu)
        s = (M * c).pow(2).sum(dim=(2, 3)) / (M.sum(dim=(2, 3)) + SIM_EPS)
        total = s if total is None else total + s
    return total


def diversity_loss(offsets: torch.Tensor) -> torch.Tensor:
    """Σ_{j≠k} cos(D_j, D_k)² over the flattened offsets [K, ...] (each unordered pair counted twice)."""
    flat = _unit(offsets.flatten(1), COS_EPS)
    cos = flat @ flat.T
    off = ~torch.eye(cos.shape[0], dtype=torch.bool, device=cos.device)
    return cos[off].pow(2).sum()


# -- binary variant --------------------------------------------------------------------------------

def sample_binary(half: int, num_directions: int, sigma: float, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Draw, per pair, a direction p, a different direction n, strengths s and t in U(-σ, σ)."""
    if num_directions < 2:
        raise ValueError("the binary variant needs at least 2 directions")
    p = torch.randint(0, num_directions, (half,), generator=gen)
    n = (p + torch.randint(1, num_directions, (half,), generator=gen)) % num_directions
    s = (torch.rand(half, generator=gen) * 2 - 1) * sigma
    t = (torch.rand(half, generator=gen) * 2 - 1) * sigma
    return {"p": p, "n": n, "s": s, "t": t}


def binary_codes(ws: torch.Tensor, offsets: torch.Tensor, draw: dict[str, torch.Tensor]) -> torch.Tensor:
    """Codes for one synthesis call, [5·b/2, L, w_dim]: bases a, bases b, query, positive, negative.

    Pair i couples sample i (a) with sample i + b/2 (b): q = a + s·D_p, positive = b + s·D_p (same
    direction *and* strength), negative = b + t·D_n.
    """
    half = ws.shape[0] // 2
    a, b = ws[:half], ws[half:2 * half]
    dev = ws.device
    p, n = draw["p"].to(dev), draw["n"].to(dev)
    s, t = draw["s"].to(dev, ws.dtype)[:, None, None], draw["t"].to(dev, ws.dtype)[:, None, None]
    q = a + s * offsets[p]
    pos = b + s * offsets[p]
    neg = b + t * offsets[n]
    return torch.cat([a, b, q, pos, neg], dim=0)


def binary_loss(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over pairs of −σ(Δ_q, Δ_+) + σ(Δ_q, Δ_−), from sensor features of the :func:`binary_codes` images."""
    dq, dp, dn = [], [], []
    for f in features:
        base_a, base_b, q, pos, neg = _at_least_f32(f).chunk(5, dim=0)
        dq.append(q - base_a)
        dp.append(pos - base_b)
        dn.append(neg - base_b)
    return (-variation_similarity(dq, dp) + variation_similarity(dq, dn)).mean()


# -- prototype variant -----------------------------------------------------------------------------

def sample_prototype(batch: int, num_directions: int, sigma: float, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Draw, per sample, a direction q and strength s in U(-σ, σ); and the mirror coin (p = 0.5)."""
    q = torch.randint(0, num_directions, (batch,), generator=gen)
    s = (torch.rand(batch, generator=gen) * 2 - 1) * sigma
    mirror = torch.rand((), generator=gen) < 0.5
    return {"q": q, "s": s, "mirror": mirror}


def prototype_codes(ws: torch.Tensor, offsets: torch.Tensor, draw: dict[str, torch.Tensor]) -> torch.Tensor:
    """Symmetric edits, [2b, L, w_dim]: w + (s/2)·D_q then w − (s/2)·D_q."""
    q = draw["q"].to(ws.device)
    half_step = (draw["s"].to(ws.device, ws.dtype) / 2)[:, None, None] * offsets[q]
    return torch.cat([ws + half_step, ws - half_step], dim=0)


def prototype_images(raw: torch.Tensor, mirror: bool | torch.Tensor) -> torch.Tensor:
    """tanh(P), or its negated horizontal flip −flip(tanh P) when ``mirror``."""
    img = torch.tanh(raw)
    return -torch.flip(img, dims=[-1]) if bool(mirror) else img


def prototype_loss(features: Sequence[torch.Tensor], prototype_features: Sequence[torch.Tensor],
                   q: torch.Tensor) -> torch.Tensor:
    """−mean_i S[i, q_i] + mean_{i, k≠q_i} S[i, k].

    ``features``: sensor maps of the :func:`prototype_codes` images (plus half, then minus half).
    The variation is the **raw** difference plus − minus (contrafeat.md §4): normalising the maps
    before differencing gives a different gradient, and a huge one wherever a map is zero across
    channels. Prototype maps enter raw too; :func:`similarity_matrix` normalises inside the cosine.
    """
    deltas = []
    for f in features:
        plus, minus = _at_least_f32(f).chunk(2, dim=0)
        deltas.append(plus - minus)
    S = similarity_matrix(deltas, [_at_least_f32(p) for p in prototype_features])   # [B, K]
    q = q.to(S.device)
    onehot = F.one_hot(q, S.shape[1]).bool()
    pos = S[onehot].mean()
    neg = S[~onehot].mean() if S.shape[1] > 1 else S.new_zeros(())
    return -pos + neg
