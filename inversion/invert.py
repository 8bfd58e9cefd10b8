"""``invert``: images -> W+ codes by encoder, by optimisation, or both (hybrid, the default).

* ``encoder``: one forward pass (fast, least faithful).
* ``optimize``: the projector schedule from the average code (slow, faithful).
* ``hybrid``: the encoder's codes refined by a short optimisation (:data:`REFINE_SCHEDULE`).
* ``pti``: the hybrid code (encoder code without optimisation steps when ``steps=0``) as the pivot of
  a per-face tuned copy of the generator (:mod:`inversion.pti`); ``InversionResult.generators``
  holds the copies, which the caller discards after the photo.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from editkit.errors import UsageError

from .losses import ReconstructionLoss
from .metrics import QualityMeter, psnr
from .optimize import (PRECISIONS, REFINE_SCHEDULE, Convergence, ProjectorSchedule, optimize_latents,
                       schedule_with_steps, w_statistics)

log = logging.getLogger(__name__)
METHODS = ("hybrid", "encoder", "optimize", "pti")
#: Weight of the identity loss by method. Measured on 8 held-out real faces (bundled model, hybrid,
#: benchmarks/inversion.py --id-sweep): weight 0.1 lowers identity distance 0.485 -> 0.446 (similarity
#: 0.943 -> 0.953) for -0.11 dB PSNR but doubles the time per step, and it is scored by the same network
#: it optimises; so it is off by default and 0.1 is the recommended ``identity_weight`` / ``--id-weight``.
DEFAULT_IDENTITY_WEIGHT = {"hybrid": 0.0, "optimize": 0.0}
RECOMMENDED_IDENTITY_WEIGHT = 0.1
#: Early stopping used unless ``early_stop=False`` (see :class:`inversion.optimize.Convergence`).
DEFAULT_CONVERGENCE = Convergence()


def auto_batch_size(resolution: int) -> int:
    """Faces optimised together by default: every face of a photo at small sizes, fewer at large ones."""
    return 32 if resolution <= 128 else 8 if resolution <= 256 else 2


def bf16_supported(device: torch.device | str) -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (oneDNN: AVX-512 BF16 or AMX); False on GPUs."""
    if torch.device(device).type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """'auto' -> 'bfloat16' where the CPU supports it natively, else 'float32'."""
    if precision == "auto":
        return "bfloat16" if bf16_supported(device) else "float32"
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r} (choose from auto, {', '.join(PRECISIONS)})")
    return precision


@dataclass
class InversionResult:
    """W+ codes ``ws`` [N, num_ws, w_dim], their renderings ``images`` [N, 3, R, R] in [-1, 1],
    quality ``metrics`` (per-face lists psnr, ssim, lpips, identity_distance, identity_similarity,
    steps, plus ``*_mean``), and how they were obtained (``steps``: the most any face took)."""

    ws: torch.Tensor
    images: torch.Tensor
    metrics: dict
    method: str
    steps: int = 0
    seconds: float = 0.0
    loss: str = ""
    noise: dict = field(default_factory=dict)
    generators: list = field(default_factory=list)  # pti: one tuned generator copy per face
    precision: str = ""  # of the optimisation's forward/backward ('float32' or 'bfloat16')


def prepare_targets(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Check ``[N, 3, H, W]`` images in [-1, 1] and resize them to the generator's resolution."""
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3:
        raise UsageError(f"images must be a [N, 3, H, W] tensor, got {getattr(images, 'shape', type(images))}")
    images = images.float()
    if images.shape[-2:] != (resolution, resolution):
        big = images.shape[-1] > resolution
        images = F.interpolate(images, size=(resolution, resolution), mode="area" if big else "bilinear",
                               **({} if big else {"align_corners": False}))
    return images


def invert(G, images: torch.Tensor, method: str = "hybrid", encoder=None, steps: int | None = None,
           w_space: str = "w+", vgg16: str | Path | None = None, discriminator=None,
           pixel_weight: float = 1.0, optimize_noise: bool = False, stop_psnr: float | None = None,
           batch_size: int | None = None, schedule: ProjectorSchedule | None = None, loss_fn=None,
           measure: bool = True, progress=None, seed: int = 0, identity_weight: float | None = None,
           early_stop: bool | Convergence = True, precision: str = "auto", pti=None,
           offsets: torch.Tensor | None = None, identity=None) -> InversionResult:
    """Invert aligned face images ``[N, 3, H, W]`` in [-1, 1] into ``G``'s W+ space.

    ``encoder``: a :class:`inversion.encoders.LatentEncoder` (needed by 'encoder' and 'hybrid').
    ``steps``: optimisation steps (default 1000 for 'optimize', 140 for 'hybrid'): an upper bound,
    since each face stops on convergence (``early_stop``: True, False or a
    :class:`~inversion.optimize.Convergence`). ``vgg16``: local VGG16 file for LPIPS (else looked
    up; without one the documented fallback loss is used: pixel MSE + ``discriminator`` or encoder
    features). ``identity_weight``: weight of the face-identity loss (default
    :data:`DEFAULT_IDENTITY_WEIGHT`). ``stop_psnr``: a face stops once it reaches that PSNR (this
    replaces the convergence rule unless ``early_stop`` is a :class:`Convergence`).
    ``batch_size``: faces optimised together (default :func:`auto_batch_size`: all faces of a photo
    at small sizes). ``precision``: 'auto' (bfloat16 autocast where the CPU supports it, else
    float32), 'float32' or 'bfloat16'. ``progress(step, total, loss)``: called after every
    optimisation step, counted over all batches (``total`` = steps x batches; it reaches ``total``
    also when faces stop early). ``measure``: PSNR/SSIM/LPIPS and identity distance/similarity.
    'pti' only: ``pti`` (:class:`inversion.pti.PTISettings`), ``offsets`` [K, L, D] (W+ edits whose
    strength the tuning must keep) and ``identity`` (images -> embeddings, optional identity loss).
    """
    if method not in METHODS:
        raise UsageError(f"unknown inversion method {method!r} (choose from {', '.join(METHODS)})")
    if method == "pti":
        return _invert_pti(G, images, encoder, steps, pti, offsets, identity, loss_fn, progress, seed,
                           measure=measure, w_space=w_space, vgg16=vgg16, discriminator=discriminator,
                           pixel_weight=pixel_weight, batch_size=batch_size, schedule=schedule)
    if method in ("encoder", "hybrid") and encoder is None:
        raise UsageError(f"method {method!r} needs an encoder (pass one, or use method='optimize')")
    if encoder is not None and (encoder.num_ws, encoder.w_dim) != (G.num_ws, G.w_dim):
        raise UsageError(f"encoder produces {encoder.num_ws}x{encoder.w_dim} codes but the generator expects "
                         f"{G.num_ws}x{G.w_dim}")
    device = G.w_avg.device
    G.eval().requires_grad_(False)
    if encoder is not None:
        encoder.eval().requires_grad_(False).to(device)
    targets = prepare_targets(images, G.resolution).to(device)
    start = time.perf_counter()
    if method != "encoder" and loss_fn is None:
        if discriminator is not None:
            discriminator.eval().requires_grad_(False).to(device)
            feature_fn, name = discriminator.features, "discriminator"
        elif encoder is not None:
            feature_fn, name = encoder.features, "encoder"
        else:
            feature_fn, name = None, ""
        if identity_weight is None:
            identity_weight = DEFAULT_IDENTITY_WEIGHT.get(method, 0.0)
        loss_fn = ReconstructionLoss(vgg16, feature_fn=feature_fn, feature_name=f"{name} features",
                                     pixel_weight=pixel_weight, identity_weight=identity_weight)
    if isinstance(loss_fn, torch.nn.Module):
        loss_fn.to(device)
    if schedule is None:
        schedule = REFINE_SCHEDULE if method == "hybrid" else ProjectorSchedule()
    schedule = schedule_with_steps(schedule, steps)
    w_std = w_statistics(G)[1] if method == "optimize" and schedule.w_noise > 0 else 0.0
    precision = resolve_precision(precision, device)
    # a PSNR target is a stopping rule of its own: convergence then applies only when asked for explicitly
    convergence = (None if stop_psnr is not None else DEFAULT_CONVERGENCE) if early_stop is True else (early_stop or None)
    batch_size = int(batch_size or auto_batch_size(G.resolution))
    n_batches = -(-targets.shape[0] // batch_size)
    ws_out, steps_max, noise_out, face_steps = [], 0, {}, []
    for b, lo in enumerate(range(0, targets.shape[0], batch_size)):
        target = targets[lo:lo + batch_size]
        init = None
        if encoder is not None:
            with torch.no_grad():
                init = encoder(target)
        if method == "encoder":
            ws_out.append(init)
            continue
        batch_progress = None
        if progress is not None:
            def batch_progress(step, total, loss, _done=b * schedule.steps):
                progress(_done + step, n_batches * total, loss)
        outcome = optimize_latents(G, target, loss_fn, init_ws=init, w_space=w_space, schedule=schedule,
                                   optimize_noise=optimize_noise, stop_psnr=stop_psnr, w_std=w_std,
                                   seed=seed + lo, progress=batch_progress, convergence=convergence,
                                   precision=precision)
        ws_out.append(outcome.ws)
        steps_max = max(steps_max, outcome.steps)
        face_steps.extend(outcome.face_steps)
        for k, v in outcome.noise.items():
            noise_out.setdefault(k, []).append(v)
    ws = torch.cat(ws_out)
    noise = {k: torch.cat(v) for k, v in noise_out.items()}
    with torch.no_grad():
        if noise:
            recon = torch.func.functional_call(G.synthesis, noise, (ws,), {"noise_mode": "const"}, strict=False)
        else:
            recon = torch.cat([G.synthesis(w, noise_mode="const") for w in ws.split(batch_size)])
    seconds = time.perf_counter() - start
    metrics = {}
    if measure:
        meter = QualityMeter(lpips_model=getattr(loss_fn, "lpips", None)) if loss_fn is not None else QualityMeter()
        metrics = meter(recon.clamp(-1, 1), targets)
    kind = "" if method == "encoder" else getattr(loss_fn, "kind", type(loss_fn).__name__)
    if method != "encoder":
        metrics["steps"] = face_steps
    return InversionResult(ws=ws, images=recon, metrics=metrics, method=method, steps=steps_max,
                           seconds=seconds, loss=kind, noise=noise, precision=precision if method != "encoder" else "")


def _invert_pti(G, images, encoder, steps, settings, offsets, identity, loss_fn, progress, seed, measure,
                **pivot_options) -> InversionResult:
    """Pivot (hybrid with an encoder, else optimisation), then one tuned generator copy per face."""
    from .pti import PTISettings, tune_generator

    settings = settings or PTISettings()
    start = time.perf_counter()
    if loss_fn is None:
        disc = pivot_options.get("discriminator")
        feature_fn, name = ((disc.eval().requires_grad_(False).to(G.w_avg.device).features, "discriminator")
                            if disc is not None else (encoder.features, "encoder") if encoder is not None else (None, ""))
        loss_fn = ReconstructionLoss(pivot_options.get("vgg16"), feature_fn=feature_fn,
                                     feature_name=f"{name} features", pixel_weight=pivot_options["pixel_weight"])
    if isinstance(loss_fn, torch.nn.Module):
        loss_fn.to(G.w_avg.device)
    pivot_method = "hybrid" if encoder is not None else "optimize"
    if encoder is not None and steps == 0:
        pivot_method = "encoder"
    piv = invert(G, images, method=pivot_method, encoder=encoder, steps=steps or None, loss_fn=loss_fn,
                 measure=False, seed=seed, **pivot_options)
    targets = prepare_targets(images, G.resolution).to(G.w_avg.device)
    gens, recon, identity_used = [], [], "missing"
    for i in range(targets.shape[0]):
        out = tune_generator(G, targets[i:i + 1], piv.ws[i:i + 1], loss_fn, settings, offsets=offsets,
                             identity=identity, seed=seed + i, progress=progress)
        gens.append(out.generator)
        recon.append(out.image)
        identity_used = out.identity
    recon_t = torch.cat(recon)
    metrics = {}
    if measure:
        meter = QualityMeter(lpips_model=getattr(loss_fn, "lpips", None))
        metrics = meter(recon_t.clamp(-1, 1), targets)
        metrics["pivot_psnr"] = [float(v) for v in psnr(piv.images.clamp(-1, 1), targets)]
    metrics["identity_loss"] = identity_used
    return InversionResult(ws=piv.ws, images=recon_t, metrics=metrics, method="pti",
                           steps=settings.steps,
                           seconds=time.perf_counter() - start, loss=getattr(loss_fn, "kind", ""), generators=gens)

