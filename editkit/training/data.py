"""Training images: an image folder or zip decoded once, resized, and held in RAM as uint8.

The decoded array is cached as ``.npz`` (uncompressed) in a cache folder, keyed by the
source's path, size, modification time and the target resolution, so later runs load it
in a second instead of decoding every JPEG again.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_path
from ..errors import BadInputError, UsageError
from ..paths import cache_dir

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
CACHE_VERSION = 1


@dataclass
class ImageDataset:
    """Decoded training images: ``images`` uint8 [N, 3, R, R] (RGB) and their source names."""

    images: torch.Tensor
    names: list[str]
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])


def _is_image(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and Path(base).suffix.lower() in IMAGE_SUFFIXES


def list_images(source: str | Path) -> list[str]:
    """Sorted image names in a folder (relative paths, recursive) or zip (member names)."""
    src = Path(source)
    if not src.exists():
        raise UsageError("training data not found (expected an image folder or .zip)", src)
    if src.is_dir():
        names = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file() and _is_image(p.name))
    elif zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as zf:
            names = sorted(n for n in zf.namelist() if not n.endswith("/") and _is_image(n))
    else:
        raise BadInputError("not an image folder or a zip archive", src)
    if not names:
        raise BadInputError("no images (.jpg/.png/...) found", src)
    return names


def decode_image(data: bytes, resolution: int, name: str = "image") -> np.ndarray:
    """Decode image bytes to RGB, centre-crop to a square, resize to ``resolution``; HWC uint8.

    JPEGs are decoded at a reduced DCT scale (``Image.draft``) that still leaves at least the
    target size, which makes decoding several times faster; the final resize is Lanczos.
    """
    try:
        im = Image.open(io.BytesIO(data))
        im.draft("RGB", (resolution, resolution))
        im = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadInputError(f"cannot decode image ({exc})", name) from exc
    w, h = im.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
    if im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), Image.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def _cache_file(source: Path, resolution: int, max_images: int | None, cache_dir: Path) -> Path:
    st = source.stat()
    key = json.dumps([str(source.resolve()), st.st_size, st.st_mtime_ns, resolution, max_images, CACHE_VERSION])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"{source.stem}-{resolution}px-{digest}.npz"


def load_dataset(source: str | Path, resolution: int, cache_dir: str | Path | None = None,
                 max_images: int | None = None, workers: int = 2,
                 progress: Callable[[int, int], None] | None = None) -> ImageDataset:
    """Load every image of a folder or zip as a uint8 tensor [N, 3, R, R], using the cache if given.

    ``progress(done, total)`` is called while decoding. ``max_images`` keeps the first N names
    (sorted), which makes small reproducible subsets.
    """
    if resolution < 4 or resolution & (resolution - 1):
        raise UsageError(f"resolution must be a power of two >= 4, got {resolution}")
    src = Path(source)
    names = list_images(src)
    if max_images is not None:
        names = names[:max_images]
    cache = _cache_file(src, resolution, max_images, Path(cache_dir)) if cache_dir is not None else None
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as npz:
            arr, cached_names = npz["images"], [str(n) for n in npz["names"]]
        if cached_names == names:
            return ImageDataset(torch.from_numpy(arr), names, str(src))

    arr = np.empty((len(names), resolution, resolution, 3), dtype=np.uint8)

    def read_all(read: Callable[[str], bytes], label: Callable[[str], str]) -> None:
        def work(i: int) -> int:
            arr[i] = decode_image(read(names[i]), resolution, label(names[i]))
            return i
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for done, _ in enumerate(pool.map(work, range(len(names))), 1):
                if progress is not None and (done % 256 == 0 or done == len(names)):
                    progress(done, len(names))

    if src.is_dir():
        read_all(lambda n: (src / n).read_bytes(), lambda n: str(src / n))
    else:
        with zipfile.ZipFile(src) as zf:
            blobs = {n: zf.read(n) for n in names}
        read_all(blobs.__getitem__, lambda n: f"{src}:{n}")
        del blobs
    chw = np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
    del arr
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, images=chw, names=np.array(names))
    return ImageDataset(torch.from_numpy(chw), names, str(src))


class BatchSampler:
    """Deterministic minibatches: step ``s`` always gives the same global batch (exact resume).

    Each epoch is a fresh permutation seeded by (seed, epoch); batches run across epoch
    boundaries. With ``mirror`` each image is flipped left-right with probability 1/2.
    Under DDP every rank computes the same global batch and takes its own slice.
    """

    def __init__(self, num_images: int, batch: int, seed: int = 0, mirror: bool = True):
        if num_images < 1:
            raise UsageError("the dataset is empty")
        self.n, self.batch, self.seed, self.mirror = num_images, batch, seed, mirror
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {k: v for k, v in self._perms.items() if k >= epoch - 1}
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def indices(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(image indices [batch], flip flags [batch] bool) of global step ``step``."""
        pos = torch.arange(step * self.batch, (step + 1) * self.batch)
        epochs, offsets = pos // self.n, pos % self.n
        idx = torch.empty(self.batch, dtype=torch.long)
        for e in epochs.unique().tolist():
            sel = epochs == e
            idx[sel] = self._perm(int(e))[offsets[sel]]
        if self.mirror:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + 7919 * step + 17)
            flips = torch.rand(self.batch, generator=g) < 0.5
        else:
            flips = torch.zeros(self.batch, dtype=torch.bool)
        return idx, flips


def batch_to_float(images: torch.Tensor, flips: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [N,3,R,R] + flip flags -> float32 in [-1, 1] on ``device``."""
    x = images.to(device, non_blocking=True).to(torch.float32)
    flips = flips.to(x.device)
    if bool(flips.any()):
        x = torch.where(flips[:, None, None, None], x.flip(3), x)
    return x / 127.5 - 1.0


def default_cache_dir() -> Path:
    """``datasets/`` in the user cache folder (:func:`editkit.paths.cache_dir`)."""
    return cache_dir() / "datasets"
