"""Latent optimisation: fit W or W+ codes (and optionally noise maps) to target images with Adam.

The default schedule is NVIDIA's projector extended to W+ (``contrafeat.md`` section 6):
1000 steps, lr 0.1 with a 5 % linear ramp-up and a 25 % cosine ramp-down, Gaussian noise on w of
0.05 * w_std decaying quadratically to 0 at 75 % of the steps, noise regularisation 1e5.
Each face in a batch is fitted independently (per-image losses are summed; Adam is per-element).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from .metrics import psnr


@dataclass(frozen=True)
class ProjectorSchedule:
    """Step count, learning-rate ramps and w-noise ramp of the projector (fractions of ``steps``)."""

    steps: int = 1000
    lr: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    w_noise: float = 0.05
    w_noise_ramp: float = 0.75
    noise_reg: float = 1e5

    def lr_at(self, step: int) -> float:
        t = step / self.steps
        ramp = min(1.0, (1.0 - t) / self.lr_rampdown) if self.lr_rampdown > 0 else 1.0
        ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
        if self.lr_rampup > 0:
            ramp *= min(1.0, t / self.lr_rampup)
        return self.lr * ramp

    def w_noise_at(self, step: int, w_std: float) -> float:
        if self.w_noise <= 0 or self.w_noise_ramp <= 0:
            return 0.0
        t = step / self.steps
        return w_std * self.w_noise * max(0.0, 1.0 - t / self.w_noise_ramp) ** 2


#: Schedule for refining an encoder's output (hybrid): no w-noise (it would undo the good start),
#: a smaller lr and no ramp-up.
REFINE_SCHEDULE = ProjectorSchedule(steps=250, lr=0.05, lr_rampup=0.0, lr_rampdown=0.25, w_noise=0.0)


@dataclass
class OptimizationOutcome:
    ws: torch.Tensor  # [N, num_ws, w_dim]
    steps: int  # optimisation steps actually run
    noise: dict = field(default_factory=dict)  # buffer name -> [N, 1, H, W] when noise was optimised
    history: list = field(default_factory=list)  # mean loss per step


@torch.no_grad()
def w_statistics(G, samples: int = 10000, seed: int = 123) -> tuple[torch.Tensor, float]:
    """``(w_avg [w_dim], w_std)`` from ``samples`` mapped z's (w_std = RMS distance to the mean, as NVIDIA)."""
    device = G.w_avg.device
    z = torch.randn(samples, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    w = torch.cat([G.mapping(zc)[:, 0] for zc in z.split(2000)])
    w_avg = w.mean(0)
    w_std = float(((w - w_avg).pow(2).sum() / samples).sqrt())
    return w_avg, w_std


def noise_buffers(G) -> dict[str, torch.Tensor]:
    """The synthesis network's constant noise maps, by buffer name."""
    return {n: b for n, b in G.synthesis.named_buffers() if n.endswith("noise_const")}


def noise_regularization(noises: list[torch.Tensor]) -> torch.Tensor:
    """NVIDIA's multiscale autocorrelation penalty on noise maps ``[N, 1, H, W]`` (summed over the batch)."""
    reg = 0.0
    for v in noises:
        while True:
            reg = reg + (v * torch.roll(v, shifts=1, dims=3)).mean((1, 2, 3)).pow(2).sum()
            reg = reg + (v * torch.roll(v, shifts=1, dims=2)).mean((1, 2, 3)).pow(2).sum()
            if v.shape[-1] <= 8:
                break
            v = F.avg_pool2d(v, kernel_size=2)
    return reg


def _synthesize(G, ws: torch.Tensor, noise: dict[str, torch.Tensor] | None) -> torch.Tensor:
    if not noise:
        return G.synthesis(ws, noise_mode="const")
    return torch.func.functional_call(G.synthesis, noise, (ws,), {"noise_mode": "const"}, strict=False)


def optimize_latents(G, target: torch.Tensor, loss_fn, init_ws: torch.Tensor | None = None,
                     w_space: str = "w+", schedule: ProjectorSchedule | None = None,
                     optimize_noise: bool = False, stop_psnr: float | None = None,
                     w_std: float | None = None, seed: int = 0, progress=None) -> OptimizationOutcome:
    """Fit codes so that ``G.synthesis(ws)`` reproduces ``target`` ``[N, 3, R, R]`` in [-1, 1].

    ``loss_fn(pred, target) -> [N]`` per-image losses. ``init_ws`` ``[N, num_ws, w_dim]`` (default:
    the generator's average w). ``w_space='w'`` fits one w per face broadcast to every layer.
    ``stop_psnr``: stop as soon as every face's reconstruction reaches this PSNR (dB).
    ``progress``: optional callable ``progress(step, total, mean_loss)``.
    """
    if w_space not in ("w", "w+"):
        raise ValueError(f"w_space must be 'w' or 'w+', got {w_space!r}")
    schedule = schedule or ProjectorSchedule()
    n = target.shape[0]
    target = target.detach()
    if init_ws is None:
        init_ws = G.w_avg.detach().view(1, 1, -1).expand(n, G.num_ws, -1)
    init_ws = init_ws.detach().to(target.device, torch.float32)
    if w_space == "w":
        init_ws = init_ws.mean(1, keepdim=True)
    if w_std is None:
        w_std = w_statistics(G)[1] if schedule.w_noise > 0 else 0.0
    w_opt = init_ws.clone().requires_grad_(True)
    params = [w_opt]
    noise: dict[str, torch.Tensor] = {}
    if optimize_noise:
        gen = torch.Generator().manual_seed(seed)
        for name, buf in noise_buffers(G).items():
            noise[name] = torch.randn((n, 1, *buf.shape[-2:]), generator=gen).to(target.device).requires_grad_(True)
        params += list(noise.values())
    opt = torch.optim.Adam(params, betas=(0.9, 0.999), lr=schedule.lr)
    if hasattr(loss_fn, "set_target"):
        loss_fn.set_target(target)
    gen = torch.Generator().manual_seed(seed + 1)
    history: list[float] = []
    steps_run = schedule.steps
    for step in range(schedule.steps):
        for g in opt.param_groups:
            g["lr"] = schedule.lr_at(step)
        sigma = schedule.w_noise_at(step, w_std)
        ws = w_opt + (sigma * torch.randn(w_opt.shape, generator=gen).to(w_opt) if sigma > 0 else 0)
        ws = ws.expand(-1, G.num_ws, -1) if w_space == "w" else ws
        pred = _synthesize(G, ws, noise)
        per_image = loss_fn(pred, target)
        loss = per_image.sum()
        if noise:
            loss = loss + schedule.noise_reg * noise_regularization(list(noise.values()))
        history.append(float(per_image.detach().mean()))
        if stop_psnr is not None and bool((psnr(pred.detach(), target) >= stop_psnr).all()):
            w_opt = ws.detach() if w_space == "w+" else ws[:, :1].detach()
            steps_run = step
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if noise:
            with torch.no_grad():
                for v in noise.values():
                    v -= v.mean((1, 2, 3), keepdim=True)
                    v *= v.pow(2).mean((1, 2, 3), keepdim=True).rsqrt()
        if progress is not None:
            progress(step + 1, schedule.steps, history[-1])
    ws = w_opt.detach()
    if w_space == "w":
        ws = ws.expand(-1, G.num_ws, -1).contiguous()
    return OptimizationOutcome(ws=ws, steps=steps_run, noise={k: v.detach() for k, v in noise.items()},
                               history=history)


def schedule_with_steps(schedule: ProjectorSchedule, steps: int | None) -> ProjectorSchedule:
    return schedule if steps is None else replace(schedule, steps=int(steps))
