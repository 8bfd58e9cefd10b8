"""The paper's two metrics (contrafeat.md §5) for any navigator and any attribute predictor, and a
heat-map picture of the responses drawn with numpy + PIL.

A predictor is any callable ``images [N, 3, H, W] in [-1, 1] -> [N, A]`` scores.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from editkit.atomic import atomic_path

from .model import Navigator

Predictor = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def attribute_responses(G, nav: Navigator, predictor: Predictor, n_samples: int = 500, strength: float = 0.25,
                        truncation: float = 0.5, batch_size: int = 16, seed: int = 0,
                        directions: Sequence[int] | None = None, standardize: bool = True,
                        progress: bool = False, statistic: str = "mean") -> torch.Tensor:
    """r [K, A]: mean over ``n_samples`` codes (truncation 0.5, constant noise) of
    f(G(w + s·D_k)) − f(G(w − s·D_k)).

    With ``standardize`` each attribute is divided by its standard deviation over the unedited
    samples, so attributes in different units (degrees, ratios) are comparable.

    ``statistic='t'`` returns instead the t-statistic of the per-sample differences (mean divided by its
    standard error): unit-free and noise-aware, so an attribute that a weak predictor measures noisily
    (e.g. head roll from landmarks on a 64-px face) does not win by chance.

    A predictor may define ``difference(out_plus, out_minus)`` (e.g. an identity distance instead of a
    subtraction) and ``values(out)`` (its per-image attributes, for standardising); see face_probe.py.
    """
    if statistic not in ("mean", "t"):
        raise ValueError(f"statistic must be 'mean' or 't', not {statistic!r}")
    from rich.progress import Progress
    dev = G.w_avg.device
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n_samples, G.z_dim, generator=gen)
    ks = list(range(nav.num_directions)) if directions is None else list(directions)
    nav = nav.to(dev)

    def f(codes: torch.Tensor) -> torch.Tensor:
        return predictor(G.synthesis(codes, noise_mode="const")).double().cpu()

    diff = getattr(predictor, "difference", None) or (lambda a, b: a - b)
    values = getattr(predictor, "values", None) or (lambda a: a)

    sums, sq, base = None, None, []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("attribute responses", total=n_samples)
        for i in range(0, n_samples, batch_size):
            ws = G.mapping(z[i:i + batch_size].to(dev), truncation_psi=truncation)
            if standardize and statistic == "mean":
                base.append(values(f(ws)))
            d = torch.stack([torch.nan_to_num(diff(f(nav.edit(ws, k, strength)), f(nav.edit(ws, k, -strength))))
                             for k in ks])  # [K, n, A]
            sums = d.sum(1) if sums is None else sums + d.sum(1)
            sq = d.square().sum(1) if sq is None else sq + d.square().sum(1)
            bar.update(task, advance=ws.shape[0])
    r = sums / n_samples
    if statistic == "t":
        var = (sq / n_samples - r.square()).clamp_min(0) * n_samples / max(n_samples - 1, 1)
        return (r / (var / n_samples).sqrt().clamp_min(1e-12)).float()
    if standardize:
        b = torch.cat(base)
        std = torch.tensor(np.nanstd(b.numpy(), axis=0, ddof=1))
        r = r / torch.where(torch.isfinite(std) & (std > 0), std, torch.ones_like(std))
    return r.float()


#: The authors summarise the first 30 directions (``eval_nav_nb_table2.ipynb``, cell 9).
PAPER_TOP = 30
#: The evaluation protocol of the paper's tables (``eval_nav_nb_table2.ipynb``, cells 8-12).
PAPER_PROTOCOL = {"samples": 500, "truncation": 0.5, "noise": "const", "strength": 0.1, "top": PAPER_TOP,
                  "attributes": 24,
                  "predictor": "the authors' ResNet-50 regressing 24 face attributes (not published as weights)"}


def protocol_note(predictor: str, n_attributes: int, samples: int, truncation: float, strength: float,
                  top: int | None, statistic: str = "mean") -> dict:
    """What an evaluation measured and how it differs from the paper's protocol (:data:`PAPER_PROTOCOL`).

    Scores are only the paper's numbers with the authors' attribute predictor and settings; with any
    other predictor (or attribute count) they rank methods on this predictor, nothing more.
    """
    diff = []
    P = PAPER_PROTOCOL
    if samples != P["samples"]:
        diff.append(f"{samples} samples (paper {P['samples']})")
    if truncation != P["truncation"]:
        diff.append(f"truncation {truncation} (paper {P['truncation']})")
    if strength != P["strength"]:
        diff.append(f"strength {strength} (paper {P['strength']})")
    if top != P["top"]:
        diff.append(f"first {top or 'all'} directions (paper {P['top']})")
    if n_attributes != P["attributes"]:
        diff.append(f"{n_attributes} attributes (paper {P['attributes']})")
    if statistic != "mean":
        diff.append(f"responses as {statistic} (paper: raw mean differences)")
    text = (f"attribute predictor: {predictor} ({n_attributes} attributes). These are NOT the paper's numbers: the "
            f"paper used {P['predictor']}; compare only with scores from the same predictor and settings.")
    return {"predictor": predictor, "attributes": n_attributes, "paper_numbers": False,
            "differences_from_paper_protocol": diff, "note": text}


def normalized_responses(R: torch.Tensor) -> torch.Tensor:
    """|R| with each row divided by its maximum (float64; rows that are all zero stay zero)."""
    A = R.abs().double()
    m = A.max(dim=1, keepdim=True).values
    return torch.where(m > 0, A / m.clamp_min(1e-300), torch.zeros_like(A))


def _first(R: torch.Tensor, top: int | None) -> torch.Tensor:
    if top is not None and top < 1:
        raise ValueError(f"top must be >= 1 or None, got {top}")
    return R if top is None else R[:top]


def disentanglement_score(R: torch.Tensor, top: int | None = PAPER_TOP) -> float:
    """Mean over the first ``top`` directions (the authors: 30; None: all) of largest − second-largest
    normalised response, i.e. 1 − second largest (a row whose maximum is tied scores 0).

    A direction with no response at all counts 0 (the authors' code would give NaN).
    """
    N = normalized_responses(_first(R, top))
    if N.shape[1] < 2:
        return 1.0
    top2 = N.topk(2, dim=1).values
    dead = top2[:, 0] == 0
    return float(torch.where(dead, torch.zeros_like(top2[:, 0]), top2[:, 0] - top2[:, 1]).mean())


def discovered_mask(R: torch.Tensor, top: int | None = PAPER_TOP) -> torch.Tensor:
    """[A] bool: attribute j is the largest response (normalised value == 1) of at least one of the
    first ``top`` directions; every attribute tied for a row's maximum counts (the authors' rule).
    Directions with no response are ignored."""
    N = normalized_responses(_first(R, top))
    return (N == 1.0).any(dim=0)


def discovered_attributes(R: torch.Tensor, top: int | None = PAPER_TOP) -> int:
    """Number of distinct attributes that are the largest response of at least one of the first
    ``top`` directions (the authors: 30; ties all count, see :func:`discovered_mask`)."""
    return int(discovered_mask(R, top).sum())


def summarize(R: torch.Tensor, names: Sequence[str], order: Sequence[int] | None = None, top: int | None = PAPER_TOP,
              per_direction: int = 3) -> dict:
    """The evaluation record: scores over the first ``top`` directions of ``order`` (the authors: 30),
    per-direction top attributes and the matrices (JSON-able)."""
    order = list(range(R.shape[0])) if order is None else list(order)
    Ro = R[order]
    N = normalized_responses(Ro)
    rows = []
    for i, k in enumerate(order):
        idx = torch.argsort(N[i], descending=True)[:per_direction]
        rows.append({"direction": int(k),
                     "top": [{"attribute": names[j], "normalized": float(N[i, j]), "response": float(Ro[i, j])}
                             for j in idx.tolist()]})
    return {"disentanglement_score": disentanglement_score(Ro, top),
            "discovered_attributes": discovered_attributes(Ro, top),
            "top": min(top, R.shape[0]) if top else R.shape[0], "order": order,
            "discovered": [names[j] for j in torch.nonzero(discovered_mask(Ro, top)).flatten().tolist()], "attributes": list(names),
            "responses": Ro.tolist(), "normalized": N.tolist(), "directions": rows}


# -- heat map without matplotlib -------------------------------------------------------------------

_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB (a 5-stop viridis approximation)."""
    v = np.clip(np.nan_to_num(values), 0, 1) * (len(_VIRIDIS) - 1)
    i = np.minimum(v.astype(int), len(_VIRIDIS) - 2)
    t = (v - i)[..., None]
    return (_VIRIDIS[i] * (1 - t) + _VIRIDIS[i + 1] * t).round().astype(np.uint8)


def heatmap_image(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], cell: int = 22,
                  title: str | None = None) -> np.ndarray:
    """A labelled heat map (rows × columns, values in [0, 1]) as a uint8 RGB array."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default()
    m = np.asarray(matrix, dtype=np.float64)
    R, C = m.shape
    left = 8 + 7 * max((len(s) for s in row_labels), default=1)
    top_h = 8 + 7 * max((len(s) for s in col_labels), default=1) + (16 if title else 0)
    W, H = left + C * cell + 8, top_h + R * cell + 8
    img = Image.new("RGB", (W, H), "white")
    cells = colormap(m).repeat(cell, 0).repeat(cell, 1)
    img.paste(Image.fromarray(cells), (left, top_h))
    d = ImageDraw.Draw(img)
    if title:
        d.text((4, 2), title, fill="black", font=font)
    for r, s in enumerate(row_labels):
        d.text((4, top_h + r * cell + cell // 2 - 5), s, fill="black", font=font)
    for c, s in enumerate(col_labels):
        lab = Image.new("RGB", (7 * len(s) + 6, 12), "white")
        ImageDraw.Draw(lab).text((2, 0), s, fill="black", font=font)
        lab = lab.rotate(90, expand=True)
        img.paste(lab, (left + c * cell + (cell - lab.width) // 2, top_h - lab.height - 4))
    for r in range(R):
        for c in range(C):
            d.text((left + c * cell + 3, top_h + r * cell + cell // 2 - 5), f"{m[r, c]:.1f}"[-3:],
                   fill="white" if m[r, c] < 0.6 else "black", font=font)
    return np.array(img)


def save_heatmap(path: str | Path, matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str],
                 title: str | None = None) -> Path:
    """Write :func:`heatmap_image` as a PNG, atomically."""
    from PIL import Image
    with atomic_path(path) as tmp:
        Image.fromarray(heatmap_image(matrix, row_labels, col_labels, title=title)).save(tmp, format="PNG")
    return Path(path)
