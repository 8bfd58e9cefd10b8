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

#: UTKFace "Aligned & Cropped" framing (the 200×200 crops in shared/data/faces), measured, not guessed
#: (``python benchmarks/align.py --measure-utkface ZIP`` repeats it): dlib's HOG detector and 68-point
#: predictor were run on 400 crops of ``utkface_aligned_200.zip`` (every 58th file; each crop
#: edge-padded by 50 px and upsampled ×2 so that the detector fires; landmarks mapped back to crop
#: pixels; 394 of 400 detected). In each crop the recipe's quantities were measured: eye level
#: 0.30 H and eye distance 0.387 W (medians), the level-eyes x axis at 0.09° (IQR −0.9°…1.0°),
#: i.e. UTKFace crops are upright similarity crops. The crop centre (99.5, 99.5) lies at
#: ``e + 0.507·d_mouth`` (median; IQR 0.483–0.529; sideways 0.02·|d_mouth|). A grid search of
#: half-side = max(eye_scale·|d_eye|, mouth_scale·|d_mouth|) and centre_shift minimising the median
#: corner error between the predicted square and the real crop gave eye_scale 1.25, mouth_scale
#: 1.22, centre_shift 0.51: median corner error 3.2 % of the side (mean 4.0 %, 90th pct 7.0 %);
#: keeping FFHQ's 2.0 : 1.8 ratio (scale ×0.639) gave 3.6 %. The residual is per-face: UTKFace's
#: own alignment is not this recipe, so no constants fit every crop exactly. Use ``size`` = the model's
#: resolution (e.g. 64): aligning at 64 px with 4× supersampling matches "200 px crop resized to 64".
UTKFACE = AlignmentTemplate(
    name="utkface",
    size=200,
    eye_scale=1.25,
    mouth_scale=1.22,
    centre_shift=0.51,
    supersample=4,
    description="UTKFace aligned & cropped framing (tight: eyes at 0.30 H, eye distance 0.39 W); "
    "constants measured with dlib landmarks on 394 UTKFace crops.",
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
