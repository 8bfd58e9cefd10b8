"""The pretrained-network attribute probe: editkit.facenets (face-api's age/gender, expression,
68-landmark and recognition networks) on generated or aligned faces.

Attributes (:data:`ATTRIBUTES`): age (years), female (P), the 7 expression probabilities, head
yaw / pitch / roll (degrees, solvePnP on the network's 68 landmarks), mouth and eye opening, smile
width, face size and position, the skin / hair / background brightness and hue (same regions as
the landmark probe, from the network's landmarks), and ``identity_change``: the face-api
descriptor distance between the two edited images of a pair (0 for one image alone, see
:meth:`FaceNetProbe.difference`; being non-negative it suits standardised mean responses, not
t-statistics, which any consistent small distance inflates: use ``identity=False`` there). The face is located by the landmark network itself
(``locate`` passes, see :func:`editkit.facenets.analyze`), so no detector is needed.
"""
from __future__ import annotations

import numpy as np
import torch

from editkit import facenets

from .probe import eye_openness, face_geometry, head_pose, mouth_openness, region_color, region_masks, smile_width

IMAGE_ATTRIBUTES = ("age", "female", *facenets.EXPRESSIONS, "yaw", "pitch", "roll", "mouth_open", "smile_width",
                    "eye_open", "face_size", "face_x", "face_y", "skin_brightness", "skin_hue", "hair_brightness",
                    "hair_hue", "background_brightness", "background_hue")
ATTRIBUTES = IMAGE_ATTRIBUTES + ("identity_change",)
DESCRIPTOR = 128


class FaceNetProbe:
    """Callable: images [N, 3, H, W] in [-1, 1] -> raw [N, len(IMAGE_ATTRIBUTES) + 128] (the
    attributes, then the identity descriptor). :func:`navigator.metrics.attribute_responses` turns
    raw outputs of an edited pair into the [N, len(ATTRIBUTES)] differences with :meth:`difference`."""

    def __init__(self, locate: int = 2, device: str | torch.device = "cpu", batch_size: int = 32,
                 identity: bool = True):
        self.locate, self.device, self.batch_size, self.identity = locate, device, batch_size, identity
        self.names = ATTRIBUTES if identity else IMAGE_ATTRIBUTES

    def analyze(self, images: torch.Tensor) -> tuple[facenets.FaceAnalysis, list[np.ndarray]]:
        x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        arr = list(x.permute(0, 2, 3, 1).cpu().numpy())
        return facenets.analyze(arr, locate=self.locate, device=self.device, batch_size=self.batch_size), arr

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        res, arr = self.analyze(images)
        rows = []
        for i, img in enumerate(arr):
            h, w = img.shape[:2]
            lm = res.landmarks[i]
            yaw, pitch, roll = head_pose(lm, w, h)
            size, fx, fy = face_geometry(lm, w, h)
            masks = region_masks(lm, w, h)
            colours = [v for name in ("skin", "hair", "background") for v in region_color(img, masks[name])]
            rows.append([res.age[i], 1.0 - res.p_male[i], *res.expression[i], yaw, pitch, roll, mouth_openness(lm),
                         smile_width(lm), eye_openness(lm), size, fx, fy, *colours])
        attrs = torch.tensor(np.asarray(rows, dtype=np.float64))
        return torch.cat([attrs, torch.from_numpy(res.descriptor.astype(np.float64))], dim=1)

    def difference(self, plus: torch.Tensor, minus: torch.Tensor) -> torch.Tensor:
        """Attribute differences of an edited pair, plus their identity distance (always >= 0)."""
        a = len(IMAGE_ATTRIBUTES)
        if not self.identity:
            return plus[:, :a] - minus[:, :a]
        dist = torch.linalg.vector_norm(plus[:, a:] - minus[:, a:], dim=1, keepdim=True)
        return torch.cat([plus[:, :a] - minus[:, :a], dist], dim=1)

    def values(self, raw: torch.Tensor) -> torch.Tensor:
        """Per-image attribute values (for standardising); identity: distance to the batch's mean face."""
        a = len(IMAGE_ATTRIBUTES)
        if not self.identity:
            return raw[:, :a]
        desc = raw[:, a:]
        spread = torch.linalg.vector_norm(desc - desc.mean(0, keepdim=True), dim=1, keepdim=True)
        return torch.cat([raw[:, :a], spread], dim=1)
