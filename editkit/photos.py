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
    xmp: bytes | None = None  # the XMP packet (JPEG APP1, PNG iTXt, WebP chunk or TIFF tag 700)
    iptc: bytes | None = None  # JPEG: the APP13 (Photoshop 3.0) payload; TIFF: tag 33723
    alpha: np.ndarray | None = None  # H×W uint8 transparency of RGBA/LA/transparent-palette photos, oriented
    grayscale: bool = False  # the photo was grayscale: saved back as grayscale
    text: dict = field(default_factory=dict)  # PNG text chunks (tEXt/iTXt), XMP excepted


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
            meta = _read_metadata(im)
            im = ImageOps.exif_transpose(im)
            meta["alpha"] = _alpha(im)
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
    return Photo(array=array, path=p, format=fmt, exif=exif_bytes, icc_profile=icc, **meta)


_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_XMP_PNG_KEY = "XML:com.adobe.xmp"


def _read_metadata(im: Image.Image) -> dict:
    """XMP, IPTC, PNG text chunks and whether the photo is grayscale (before any conversion)."""
    xmp = im.info.get("xmp") or im.info.get(_XMP_PNG_KEY)
    iptc = None
    if im.format == "JPEG":
        for marker, data in getattr(im, "applist", []):
            if marker == "APP13" and data.startswith(b"Photoshop 3.0\x00"):
                iptc = data
                break
    elif im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        xmp = xmp or tags.get(700)
        raw = tags.get(33723)
        if raw is not None:
            iptc = bytes(raw) if not isinstance(raw, (tuple, list)) else b"".join(
                v if isinstance(v, bytes) else bytes([v]) for v in raw)
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    text = {}
    if im.format == "PNG":
        text = {k: v for k, v in getattr(im, "text", {}).items() if k != _XMP_PNG_KEY and isinstance(v, str)}
    gray = im.mode in _GRAY_MODES or (im.mode == "P" and _palette_is_gray(im))
    return {"xmp": bytes(xmp) if xmp else None, "iptc": iptc, "grayscale": gray, "text": text}


def _palette_is_gray(im: Image.Image) -> bool:
    pal = im.getpalette() or []
    rgb = np.asarray(pal[: 3 * 256], dtype=np.int16).reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb.max(1) - rgb.min(1) <= 2).all())


def _alpha(im: Image.Image) -> np.ndarray | None:
    """The transparency channel (oriented like the pixels), or None when the photo is fully opaque."""
    has = im.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in im.info
    if not has:
        return None
    a = np.array(im.convert("RGBA"))[..., 3]
    return None if bool((a == 255).all()) else a


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
    kwargs: dict = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    if like is not None:
        im = _like_mode(im, like, fmt)
        kwargs.update(_metadata_kwargs(like, fmt))
    if fmt == "JPEG" and im.mode in ("RGBA", "LA"):
        im = im.convert("RGB" if im.mode == "RGBA" else "L")
    with atomic_path(p) as tmp:
        im.save(tmp, format=fmt, **kwargs)
        if like is not None and like.iptc and fmt == "JPEG":
            _insert_jpeg_app13(tmp, like.iptc)
    return p


_ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")


def _like_mode(im: Image.Image, like: Photo, fmt: str) -> Image.Image:
    """Grayscale photos come back grayscale; transparent ones keep their alpha where the format holds it."""
    if im.mode not in ("RGB", "RGBA"):
        return im
    alpha = like.alpha if like.alpha is not None and like.alpha.shape == (im.height, im.width) else None
    if like.grayscale:
        im = im.convert("RGB").convert("L")
    if alpha is not None and fmt in _ALPHA_FORMATS:
        im = im.copy()
        im.putalpha(Image.fromarray(alpha))
    return im


def _metadata_kwargs(like: Photo, fmt: str) -> dict:
    kw: dict = {}
    if like.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kw["exif"] = like.exif
    if like.icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kw["icc_profile"] = like.icc_profile
    if fmt in ("JPEG", "WEBP") and like.xmp:
        kw["xmp"] = like.xmp
    if fmt == "PNG" and (like.xmp or like.text):
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        for k, v in like.text.items():
            info.add_itxt(k, v)
        if like.xmp:
            info.add_itxt(_XMP_PNG_KEY, like.xmp.decode("utf-8", "replace"), zip=False)
        kw["pnginfo"] = info
    if fmt == "TIFF" and (like.xmp or like.iptc):
        from PIL import TiffImagePlugin

        tags = TiffImagePlugin.ImageFileDirectory_v2()
        if like.xmp:
            tags[700] = like.xmp
            tags.tagtype[700] = 1  # BYTE
        if like.iptc and like.format == "TIFF":
            tags[33723] = like.iptc
            tags.tagtype[33723] = 7  # UNDEFINED
        kw["tiffinfo"] = tags
    return kw


def _insert_jpeg_app13(path: Path, payload: bytes) -> None:
    """Put an APP13 (IPTC) segment into a JPEG file after its SOI and APPn header segments."""
    data = Path(path).read_bytes()
    if len(payload) > 65533 or data[:2] != b"\xff\xd8":
        return
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF and 0xE0 <= data[pos + 1] <= 0xEF:
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    seg = b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload
    Path(path).write_bytes(data[:pos] + seg + data[pos:])
