"""An age and gender predictor trained on UTKFace labels, used to name discovered directions.

UTKFace file names are ``age_gender_race_datetime.jpg.chip.jpg`` (gender 0 male, 1 female).
The network is a small CNN on 64×64 crops; it is an attribute *probe* for labelling and
evaluation, not a product feature, and its held-out accuracy is reported with it.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from editkit.atomic import atomic_path
from editkit.errors import BadInputError, CheckpointError

INPUT_SIZE = 64
AGE_SCALE = 100.0
ATTRIBUTES = ("age", "female")
_NAME = re.compile(r"(?:^|/)(\d+)_([01])_")


def parse_utkface_name(name: str) -> tuple[int, int] | None:
    """(age, gender) from a UTKFace file name, or None when the name carries no labels."""
    m = _NAME.search(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


class AgeGenderNet(nn.Module):
    """Four strided conv blocks, global pooling, two outputs: age/100 and a female logit."""

    def __init__(self, width: int = 32):
        super().__init__()
        chans = [3, width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        for a, b in zip(chans, chans[1:]):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.BatchNorm2d(b), nn.ReLU(inplace=True),
                       nn.Conv2d(b, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], 2)
        self.width = width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != INPUT_SIZE:
            images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                                   antialias=True)
        return self.head(self.features(images).mean(dim=[2, 3]))


@dataclass
class AgeGenderPredictor:
    """Callable attribute predictor: images in [-1, 1] [N,3,H,W] -> [N, 2] = (age in years, P(female))."""

    net: AgeGenderNet
    metrics: dict
    names: tuple[str, ...] = ATTRIBUTES

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        out = self.net(images.float())
        return torch.stack([out[:, 0] * AGE_SCALE, torch.sigmoid(out[:, 1])], dim=1)

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(tmp),
                      metadata={"format": "editkit.age_gender", "width": str(self.net.width),
                                "metrics": json.dumps(self.metrics)})
        return Path(path)


def load_age_gender(path: str | Path) -> AgeGenderPredictor:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read age/gender predictor ({exc})", path) from None
    if md.get("format") != "editkit.age_gender":
        raise CheckpointError("not an editkit age/gender predictor", path)
    net = AgeGenderNet(int(md["width"]))
    net.load_state_dict(state)
    return AgeGenderPredictor(net.eval(), json.loads(md.get("metrics", "{}")))


def train_age_gender(images: torch.Tensor, names: list[str], steps: int = 600, batch: int = 128,
                     holdout: float = 0.1, seed: int = 0, lr: float = 2e-3, progress: bool = True,
                     width: int = 32) -> AgeGenderPredictor:
    """Train on uint8 images [N,3,H,W] whose names carry UTKFace labels; report held-out MAE/accuracy."""
    labels = [parse_utkface_name(n) for n in names]
    keep = [i for i, lab in enumerate(labels) if lab is not None]
    if len(keep) < 10:
        raise BadInputError("too few images with UTKFace labels (age_gender_race_*.jpg) to train on")
    g = torch.Generator().manual_seed(seed)
    perm = torch.tensor(keep)[torch.randperm(len(keep), generator=g)]
    n_val = max(1, int(len(perm) * holdout))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    ages = torch.tensor([labels[i][0] if labels[i] else 0 for i in range(len(names))], dtype=torch.float32)
    fem = torch.tensor([labels[i][1] if labels[i] else 0 for i in range(len(names))], dtype=torch.float32)
    torch.manual_seed(seed)
    net = AgeGenderNet(width)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)

    def prep(idx: torch.Tensor, augment: bool) -> torch.Tensor:
        x = images[idx].float() / 127.5 - 1
        if augment:
            flip = torch.rand(len(idx), generator=g) < 0.5
            x[flip] = x[flip].flip(-1)
        return x

    from rich.progress import Progress

    net.train()
    with Progress(disable=not progress) as bar:
        task = bar.add_task("age/gender predictor", total=steps)
        for step in range(steps):
            idx = train_idx[torch.randint(len(train_idx), (batch,), generator=g)]
            out = net(prep(idx, True))
            loss = (F.smooth_l1_loss(out[:, 0], ages[idx] / AGE_SCALE, beta=0.05)
                    + F.binary_cross_entropy_with_logits(out[:, 1], fem[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(task, advance=1, description=f"age/gender predictor loss {loss.item():.3f}")
    pred = AgeGenderPredictor(net.eval(), {})
    outs = torch.cat([pred(prep(val_idx[i:i + 512], False)) for i in range(0, len(val_idx), 512)])
    mae = (outs[:, 0] - ages[val_idx]).abs().mean().item()
    acc = ((outs[:, 1] > 0.5).float() == fem[val_idx]).float().mean().item()
    base_mae = (ages[train_idx].median() - ages[val_idx]).abs().mean().item()
    pred.metrics = {"val_images": int(n_val), "train_images": int(len(train_idx)), "age_mae_years": round(mae, 2),
                    "age_mae_median_baseline": round(base_mae, 2), "gender_accuracy": round(acc, 4),
                    "steps": steps, "batch": batch, "seed": seed}
    if not math.isfinite(mae):
        raise RuntimeError("age/gender training diverged")
    return pred
