"""Photo input/output: load any common image as an EXIF-oriented RGB array, save results atomically.

Loading accepts JPEG, PNG, WebP, BMP, TIFF (and whatever else Pillow reads): the EXIF orientation
is applied; RGBA/LA/palette-with-transparency images are composited on white; grayscale, palette,
CMYK, 16-bit and float images are converted to 8-bit RGB. A pixel-count limit protects against
decompression bombs. Every failure is a one-line :class:`BadInputError` naming the file.
"""
from __future__ import annotations

import io
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .errors import BadInputError, UsageError

#: Largest accepted photo, in pixels (width × height); override with ``EDITKIT_MAX_PIXELS``.
DEFAULT_MAX_PIXELS = 100_000_000

_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF"}
_EXIF_ORIENTATION = 0x0112
_open_lock = threading.Lock()  # Image.MAX_IMAGE_PIXELS is global: swap it under a lock


def max_pixels() -> int:
    """The decompression-bomb limit in pixels (``EDITKIT_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`)."""
    value = os.environ.get("EDITKIT_MAX_PIXELS")
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        raise UsageError(f"EDITKIT_MAX_PIXELS must be an integer, got {value!r}") from None
    if limit <= 0:
        raise UsageError(f"EDITKIT_MAX_PIXELS must be positive, got {limit}")
    return limit


@dataclass
class Photo:
    """A decoded photo plus what is needed to save an edited version that looks the same.

    ``array`` is H×W×3 uint8 RGB, already EXIF-oriented; ``exif`` is the original EXIF block with
    the orientation reset to 1 (pixels are stored upright), ``icc_profile`` the colour profile.
    """

    array: np.ndarray
    path: Path | None = None
    format: str | None = None
    exif: bytes | None = None
    icc_profile: bytes | None = None
    info: dict = field(default_factory=dict)


def read_photo(path: str | Path, limit: int | None = None) -> Photo:
    """Decode ``path`` into a :class:`Photo` (array + EXIF/ICC metadata); see :func:`load_photo`."""
    p = Path(path)
    limit = max_pixels() if limit is None else limit
    try:
        if p.is_dir():
            raise BadInputError("is a folder, not an image file", p)
        data = p.read_bytes()
    except FileNotFoundError:
        raise BadInputError("no such file", p) from None
    except PermissionError:
        raise BadInputError("permission denied (cannot read the file)", p) from None
    except IsADirectoryError:
        raise BadInputError("is a folder, not an image file", p) from None
    except OSError as exc:
        raise BadInputError(f"cannot read the file ({exc.strerror or exc})", p) from None
    if not data:
        raise BadInputError("empty file (0 bytes)", p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _open_lock:
                old_limit = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None  # our own limit below, checked before decoding pixels
                try:
                    im = Image.open(io.BytesIO(data))
                finally:
                    Image.MAX_IMAGE_PIXELS = old_limit
            w, h = im.size
            if w <= 0 or h <= 0:
                raise BadInputError(f"image has no pixels ({w}x{h})", p)
            if w * h > limit:
                raise BadInputError(
                    f"image too large: {w}x{h} = {w * h:,} pixels exceeds the limit of {limit:,} "
                    "(possible decompression bomb; raise EDITKIT_MAX_PIXELS if it is genuine)", p)
            fmt = im.format
            im.load()
            exif = im.getexif()
            icc = im.info.get("icc_profile")
            im = ImageOps.exif_transpose(im)
            array = to_rgb_array(im)
    except BadInputError:
        raise
    except UnidentifiedImageError:
        raise BadInputError("not an image file (unrecognised format)", p) from None
    except Image.DecompressionBombError as exc:
        raise BadInputError(f"image too large ({exc})", p) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        if "truncated" in reason.lower() or isinstance(exc, EOFError):
            reason = f"truncated or corrupt image ({reason})"
        else:
            reason = f"corrupt or unreadable image ({reason})"
        raise BadInputError(reason.replace("\n", " "), p) from None
    exif_bytes = None
    if exif:
        if _EXIF_ORIENTATION in exif:
            exif[_EXIF_ORIENTATION] = 1
        try:
            exif_bytes = exif.tobytes()
        except Exception:  # noqa: BLE001 - odd EXIF blocks are dropped, never fatal
            exif_bytes = None
    return Photo(array=array, path=p, format=fmt, exif=exif_bytes, icc_profile=icc)


def load_photo(path: str | Path) -> np.ndarray:
    """Load a photo as an H×W×3 uint8 RGB array with the EXIF orientation applied.

    Raises :class:`BadInputError` (one line, naming the file) for missing, empty, truncated,
    non-image, unreadable or too-large files.
    """
    return read_photo(path).array


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert any Pillow image mode to an H×W×3 uint8 RGB array (alpha composited on white)."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im).astype(np.float64)
        scale = 65535.0 if (mode.startswith("I;16") or a.max(initial=0) > 255) else 255.0
        gray = np.clip(np.rint(a / scale * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im).astype(np.float64)
        if a.max(initial=0) <= 1.0:
            a = a * 255.0
        gray = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("LA", "La", "RGBa", "PA") or (mode == "L" and "transparency" in im.info):
        im = im.convert("RGBA")
    elif mode == "RGB" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    if im.mode != "RGB":
        im = im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return np.array(im, dtype=np.uint8)


def save_image(path: str | Path, array: np.ndarray, like: Photo | None = None, quality: int = 95) -> Path:
    """Write an H×W×3 (or H×W) uint8 array atomically; the format follows the file suffix.

    ``like``: the :class:`Photo` the array came from; its EXIF (orientation reset) and colour
    profile are kept so the result looks like the original in any viewer.
    """
    p = Path(path)
    fmt = _SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise UsageError(f"unsupported output format {p.suffix!r} (use one of {', '.join(sorted(_SAVE_FORMATS))})", p)
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise UsageError(f"save_image expects uint8 pixels, got {arr.dtype}", p)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise UsageError(f"save_image expects H×W×3 pixels, got shape {arr.shape}", p)
    im = Image.fromarray(arr)
    if fmt == "JPEG" and im.mode == "RGBA":
        im = im.convert("RGB")
    kwargs: dict = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    if like is not None:
        if like.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
            kwargs["exif"] = like.exif
        if like.icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
            kwargs["icc_profile"] = like.icc_profile
    with atomic_path(p) as tmp:
        im.save(tmp, format=fmt, **kwargs)
    return p
