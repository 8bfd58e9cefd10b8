"""Alignment templates: how a face's landmarks become an oriented square crop.

A template holds the constants of the FFHQ recipe (NVlabs/ffhq-dataset ``recreate_aligned_images``):
with ``e`` the mean of the two eye centres, ``d_eye`` the eye-to-eye vector and ``d_mouth`` the
vector from ``e`` to the mouth-corner midpoint, the crop is the square with half-side
``max(eye_scale·|d_eye|, mouth_scale·|d_mouth|)``, centred at ``e + centre_shift·d_mouth``, turned
so that its x axis is ``d_eye - rot90(d_mouth)`` (level eyes). ``supersample`` sets the size of the
intermediate high-resolution QUAD transform (``size × supersample``) that is then downsampled.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from editkit.errors import UsageError


@dataclass(frozen=True)
class AlignmentTemplate:
    """Constants of the oriented-square crop recipe (see the module docstring)."""

    name: str
    size: int
    eye_scale: float = 2.0
    mouth_scale: float = 1.8
    centre_shift: float = 0.1
    supersample: int = 4
    rotate: bool = True
    padding: bool = True
    description: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


FFHQ = AlignmentTemplate(
    name="ffhq",
    size=1024,
    description="FFHQ framing (NVlabs/ffhq-dataset recreate_aligned_images): eyes at ~0.47 H, "
    "eye distance ~0.25 W; transform at 4x the output size, then LANCZOS.",
)

#: UTKFace "Aligned & Cropped" framing (the 200×200 crops in shared/data/faces), measured, not guessed:
#: dlib's HOG detector + 68-point predictor were run on 400 crops of ``utkface_aligned_200.zip``
#: (every 58th file; each crop edge-padded by 50 % and upsampled ×2 so that the detector fires;
#: landmarks mapped back to crop pixels; 389 of 400 detected). For each crop the FFHQ quantities
#: ``e``, ``d_eye``, ``d_mouth`` were computed and the crop square (its centre (99.5, 99.5), half-side
#: 100) expressed in them: half-side / max(2.0·|d_eye|, 1.8·|d_mouth|) gave the scale factor
#: ``k`` (median 0.558, IQR 0.540–0.580), so eye_scale = 2.0·k and mouth_scale = 1.8·k; the crop
#: centre minus ``e``, projected on the face's up/down axis and divided by |d_mouth|, gave
#: centre_shift (median 0.554, IQR 0.51–0.60; the sideways offset has median ~0). Re-aligning
#: the measured crops with these constants returns the crop with a median corner error of
#: ~4 % of the side (scripts: ``benchmarks/align.py --measure-utkface ZIP``).
UTKFACE = AlignmentTemplate(
    name="utkface",
    size=200,
    eye_scale=1.116,
    mouth_scale=1.0044,
    centre_shift=0.554,
    supersample=4,
    description="UTKFace aligned & cropped framing (tight: eyes at ~0.35 H, eye distance ~0.4 W); "
    "constants measured with dlib landmarks on 400 UTKFace crops.",
)

TEMPLATES: dict[str, AlignmentTemplate] = {t.name: t for t in (FFHQ, UTKFACE)}


def get_template(template: str | AlignmentTemplate) -> AlignmentTemplate:
    """Look up a template by name (or pass one through)."""
    if isinstance(template, AlignmentTemplate):
        return template
    try:
        return TEMPLATES[template]
    except KeyError:
        raise UsageError(f"unknown alignment template {template!r} (choose from {', '.join(TEMPLATES)})") from None
