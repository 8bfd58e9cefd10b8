"""Image conversion, grids, GIF and MP4 writers (all atomic)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import atomic_path
from ..errors import BadInputError, UsageError


class RenderError(BadInputError):
    """A rendered image is not finite: nothing is written (the weights or the code are damaged)."""


VIDEO_SUFFIXES = (".gif", ".mp4")


def to_uint8(images) -> np.ndarray:
    """Generator output (torch tensor or array, N×3×H×W or 3×H×W, values ~[-1, 1]) -> N×H×W×3 / H×W×3 uint8."""
    try:
        import torch

        if isinstance(images, torch.Tensor):
            images = images.detach().float().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(images, dtype=np.float32)
    if not np.isfinite(a).all():  # NaN/inf would silently become a black face
        raise RenderError("the rendered image holds NaN/inf values (damaged weights or a non-finite code)")
    a = np.clip((a + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.moveaxis(a, -3, -1)


def make_grid(rows: Sequence[Sequence[np.ndarray]], pad: int = 2, fill: int = 255,
              row_labels: Sequence[str] | None = None) -> np.ndarray:
    """Tile a list of rows of H×W×3 uint8 images (same size) into one image, with optional row labels."""
    rows = [list(r) for r in rows if len(r)]
    if not rows:
        raise UsageError("nothing to put in a grid")
    h, w = rows[0][0].shape[:2]
    ncol = max(len(r) for r in rows)
    label_w = 0
    if row_labels:
        label_w = max(8 * max(len(s) for s in row_labels) + 6, 0)
    H = len(rows) * (h + pad) + pad
    W = label_w + ncol * (w + pad) + pad
    grid = np.full((H, W, 3), fill, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            img = np.asarray(img)
            if img.shape[:2] != (h, w):
                img = _resize(img, (w, h))
            y, x = pad + i * (h + pad), label_w + pad + j * (w + pad)
            grid[y:y + h, x:x + w] = img[..., :3]
    if row_labels:
        from PIL import Image, ImageDraw

        pil = Image.fromarray(grid)
        draw = ImageDraw.Draw(pil)
        for i, text in enumerate(row_labels):
            draw.text((3, pad + i * (h + pad) + h // 2 - 5), str(text), fill=(0, 0, 0))
        grid = np.asarray(pil)
    return grid


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize(size, Image.LANCZOS))


def side_by_side(*images: np.ndarray, pad: int = 2) -> np.ndarray:
    """Images next to each other (e.g. the aligned face before and after an edit)."""
    return make_grid([list(images)], pad=pad)


def save_gif(path: str | Path, frames: Sequence[np.ndarray], duration_ms: int = 100, loop: int = 0) -> Path:
    """A looping GIF (imageio v3: ``duration`` is in milliseconds)."""
    import imageio.v3 as iio

    frames = np.stack([np.asarray(f, dtype=np.uint8)[..., :3] for f in frames])
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=int(duration_ms), loop=loop)
    return Path(path)


def save_mp4(path: str | Path, frames: Sequence[np.ndarray], fps: float = 10.0) -> Path:
    """An MP4 through OpenCV's VideoWriter ('mp4v'); sizes are rounded down to even numbers."""
    import cv2

    frames = [np.asarray(f, dtype=np.uint8)[..., :3] for f in frames]
    if not frames:
        raise UsageError("no frames to write")
    h, w = frames[0].shape[:2]
    h2, w2 = h - h % 2, w - w % 2
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w2, h2))
        if not writer.isOpened():
            raise UsageError("OpenCV cannot write MP4 here", path)
        try:
            for f in frames:
                writer.write(cv2.cvtColor(np.ascontiguousarray(f[:h2, :w2]), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return Path(path)


def save_animation(path: str | Path, frames: Sequence[np.ndarray], duration_ms: int = 100) -> Path:
    """GIF or MP4 by the file suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return save_gif(path, frames, duration_ms)
    if suffix == ".mp4":
        return save_mp4(path, frames, fps=1000.0 / max(duration_ms, 1))
    raise UsageError(f"unsupported animation format '{suffix}' (use .gif or .mp4)", path)


def bounce(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Forward then back (without repeating the end frames), for a seamless loop."""
    frames = list(frames)
    return frames + frames[-2:0:-1]
