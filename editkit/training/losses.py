"""StyleGAN2 losses: non-saturating logistic GAN loss, R1 penalty, path-length regulariser."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic loss of the generator: mean softplus(-D(G(z)))."""
    return F.softplus(-fake_logits.float()).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Logistic loss of the discriminator: mean softplus(D(fake)) + mean softplus(-D(real))."""
    return F.softplus(fake_logits.float()).mean() + F.softplus(-real_logits.float()).mean()


def r1_penalty(real_images: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||dD(x)/dx||² at real images (``real_images`` must require grad).

    The graph is kept (``create_graph``) so the penalty can be back-propagated into D.
    """
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True, only_inputs=True)
    return grad.float().square().sum(dim=(1, 2, 3)).mean()


def path_length_penalty(images: torch.Tensor, ws: torch.Tensor, pl_mean: torch.Tensor,
                        decay: float = 0.01, gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """StyleGAN2 path-length regulariser: (penalty, updated running mean of the lengths).

    ``ws`` [N, num_ws, w_dim] must be the tensor ``images`` were synthesised from. The caller
    stores the returned mean (detached) and averages it across DDP ranks if needed.
    """
    h, w = images.shape[2], images.shape[3]
    noise = torch.randn(images.shape, generator=gen).to(images.device, images.dtype) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True, only_inputs=True)
    lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()
    new_mean = pl_mean.lerp(lengths.mean().detach(), decay)
    return (lengths - new_mean).square().mean(), new_mean
