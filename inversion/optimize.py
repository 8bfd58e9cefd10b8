"""Latent optimisation: fit W or W+ codes (and optionally noise maps) to target images with Adam.

The default schedule is NVIDIA's projector extended to W+ (``contrafeat.md`` section 6):
1000 steps, lr 0.1 with a 5 % linear ramp-up and a 25 % cosine ramp-down, Gaussian noise on w of
0.05 * w_std decaying quadratically to 0 at 75 % of the steps, noise regularisation 1e5.
Each face in a batch is fitted independently (per-image losses are summed; Adam is per-element).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from .metrics import psnr

PRECISIONS = ("float32", "bfloat16")


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


#: Schedule for refining an encoder's output (hybrid): no w-noise (it would undo the good start) and no
#: ramp-up. 140 steps at lr 0.2 replaced 250 at lr 0.05: on 8 held-out real faces (bundled 64-px model,
#: fallback loss) PSNR 24.24 vs 24.34 dB at 56 % of the steps (250 at lr 0.2: 24.90; 120 at 0.3: 23.90).
REFINE_SCHEDULE = ProjectorSchedule(steps=140, lr=0.2, lr_rampup=0.0, lr_rampdown=0.25, w_noise=0.0)


@dataclass
class OptimizationOutcome:
    ws: torch.Tensor  # [N, num_ws, w_dim]
    steps: int  # optimisation steps actually run
    noise: dict = field(default_factory=dict)  # buffer name -> [N, 1, H, W] when noise was optimised
    history: list = field(default_factory=list)  # mean loss per step (over the faces still optimised)
    face_steps: list = field(default_factory=list)  # steps each face was optimised for


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


@dataclass(frozen=True)
class Convergence:
    """Early stopping per face: a face is done once its loss improved by less than ``rel_tol``
    (relative) over the last ``patience`` steps, but not before ``min_fraction`` of the schedule.
    Its code is frozen there and it leaves the batch, so the others' steps get cheaper."""

    patience: int = 20
    rel_tol: float = 2e-3
    min_fraction: float = 0.2

    def converged(self, losses: list[float], step: int, total: int, not_before: float = 0.0) -> bool:
        """Whether the loss history ``losses`` (one per step so far) has stopped improving at ``step``;
        never before ``max(min_fraction, not_before)`` of ``total`` steps."""
        earliest = max(self.patience + 1, int(max(self.min_fraction, not_before) * total))
        if step + 1 < earliest or len(losses) <= self.patience:
            return False
        old, new = min(losses[:-self.patience]), min(losses[-self.patience:])
        return (old - new) <= self.rel_tol * abs(old)


def optimize_latents(G, target: torch.Tensor, loss_fn, init_ws: torch.Tensor | None = None,
                     w_space: str = "w+", schedule: ProjectorSchedule | None = None,
                     optimize_noise: bool = False, stop_psnr: float | None = None,
                     w_std: float | None = None, seed: int = 0, progress=None,
                     convergence: Convergence | None = None, precision: str = "float32") -> OptimizationOutcome:
    """Fit codes so that ``G.synthesis(ws)`` reproduces ``target`` ``[N, 3, R, R]`` in [-1, 1].

    ``loss_fn(pred, target) -> [N]`` per-image losses. ``init_ws`` ``[N, num_ws, w_dim]`` (default:
    the generator's average w). ``w_space='w'`` fits one w per face broadcast to every layer.
    Every face has its own parameters (Adam is per element, so this equals one batched tensor), which
    lets a face stop early: at ``stop_psnr`` (dB) or at ``convergence``; finished faces leave the batch.
    ``precision``: 'float32' or 'bfloat16' (CPU autocast for the forward/backward; codes, Adam and
    the returned codes stay float32). ``progress``: optional ``progress(step, total, mean_loss)``,
    called after every step and once more with ``step == total`` when all faces stopped early.
    """
    if w_space not in ("w", "w+"):
        raise ValueError(f"w_space must be 'w' or 'w+', got {w_space!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
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
    w_faces = [init_ws[i:i + 1].clone().requires_grad_(True) for i in range(n)]
    params = list(w_faces)
    noise_faces: list[dict[str, torch.Tensor]] = [{} for _ in range(n)]
    if optimize_noise:
        gen = torch.Generator().manual_seed(seed)
        for name, buf in noise_buffers(G).items():
            maps = torch.randn((n, 1, *buf.shape[-2:]), generator=gen).to(target.device)
            for i in range(n):
                noise_faces[i][name] = maps[i:i + 1].clone().requires_grad_(True)
                params.append(noise_faces[i][name])
    opt = torch.optim.Adam(params, betas=(0.9, 0.999), lr=schedule.lr)
    if hasattr(loss_fn, "set_target"):
        loss_fn.set_target(target)
    gen = torch.Generator().manual_seed(seed + 1)
    history: list[float] = []
    face_losses: list[list[float]] = [[] for _ in range(n)]
    stopped_at = [schedule.steps] * n
    final_ws: list[torch.Tensor | None] = [None] * n
    active = list(range(n))
    autocast = (torch.autocast(target.device.type, dtype=torch.bfloat16) if precision == "bfloat16"
                else contextlib.nullcontext())
    # while w-noise is injected the loss is noisy by design: no face is judged converged before it ends
    not_before = schedule.w_noise_ramp if schedule.w_noise > 0 and w_std > 0 else 0.0
    for step in range(schedule.steps):
        for g in opt.param_groups:
            g["lr"] = schedule.lr_at(step)
        sigma = schedule.w_noise_at(step, w_std)
        w_act = torch.cat([w_faces[i] for i in active])
        ws = w_act + (sigma * torch.randn(w_act.shape, generator=gen).to(w_act) if sigma > 0 else 0)
        ws = ws.expand(-1, G.num_ws, -1) if w_space == "w" else ws
        noise = {k: torch.cat([noise_faces[i][k] for i in active]) for k in noise_faces[0]}
        sub = target if len(active) == n else target[active]
        if hasattr(loss_fn, "select"):
            loss_fn.select(active)
        with autocast:
            pred = _synthesize(G, ws, noise)
            per_image = loss_fn(pred, sub).float()
        loss = per_image.sum()
        if noise:
            loss = loss + schedule.noise_reg * noise_regularization([v.float() for v in noise.values()])
        values = per_image.detach().tolist()
        history.append(sum(values) / len(values))
        for j, i in enumerate(active):
            face_losses[i].append(values[j])
        done = []
        if stop_psnr is not None:
            reached = psnr(pred.detach().float(), sub) >= stop_psnr
            for j, i in enumerate(active):
                if bool(reached[j]):  # keep the code that was just rendered (with its w-noise)
                    final_ws[i] = (ws[j:j + 1] if w_space == "w+" else ws[j:j + 1, :1]).detach()
                    stopped_at[i] = step
                    done.append(i)
        opt.zero_grad(set_to_none=True)
        if len(done) < len(active):
            loss.backward()
            for i in done:  # their gradients must not move them
                w_faces[i].grad = None
                for v in noise_faces[i].values():
                    v.grad = None
            opt.step()
            if noise:
                with torch.no_grad():
                    for i in active:
                        for v in noise_faces[i].values():
                            v -= v.mean((1, 2, 3), keepdim=True)
                            v *= v.pow(2).mean((1, 2, 3), keepdim=True).rsqrt()
        if convergence is not None:
            for i in active:
                if i not in done and convergence.converged(face_losses[i], step, schedule.steps, not_before):
                    stopped_at[i] = step + 1
                    done.append(i)
        active = [i for i in active if i not in done]
        if progress is not None:
            progress(step + 1 if active else schedule.steps, schedule.steps, history[-1])
        if not active:
            break
    ws = torch.cat([final_ws[i] if final_ws[i] is not None else w_faces[i].detach() for i in range(n)])
    if w_space == "w":
        ws = ws.expand(-1, G.num_ws, -1).contiguous()
    noise_out = {k: torch.cat([noise_faces[i][k].detach() for i in range(n)]) for k in noise_faces[0]}
    return OptimizationOutcome(ws=ws, steps=max(stopped_at), noise=noise_out, history=history,
                               face_steps=stopped_at)


def schedule_with_steps(schedule: ProjectorSchedule, steps: int | None) -> ProjectorSchedule:
    return schedule if steps is None else replace(schedule, steps=int(steps))
