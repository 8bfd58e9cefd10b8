"""What the web editor does, independent of the web framework: uploads, previews, refine, downloads.

Every model call goes through the one :class:`editkit.Editor` of the process, under a
:class:`~editkit.web.state.ModelLock`. Each result comes from ``Editor.edit`` / ``Editor.traverse``
with the face's inversion cached in the session, so a slider move costs one generator pass and the
rendering (the transfer by default), and a download is byte for byte what ``editkit edit`` writes with the same settings.
"""
from __future__ import annotations

import io
import math
import shlex
import threading
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from ..errors import BadInputError, EditkitError, UsageError
from .state import ModelLock, RefineJob, Session, Sessions

#: Largest accepted upload, in bytes (``editkit serve --max-upload-mb``).
DEFAULT_MAX_UPLOAD = 25 * 2**20
#: The page shows photos larger than this (longest side, pixels) scaled down; downloads never are.
PREVIEW_MAX_SIDE = 2400
_MEDIA = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
          ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff", ".gif": "image/gif"}


class Cancelled(Exception):
    pass


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def preview_array(image: np.ndarray, max_side: int = PREVIEW_MAX_SIDE) -> np.ndarray:
    """The edited photo as the page shows it: itself, or scaled down (Lanczos) to ``max_side``."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    from PIL import Image

    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))


def safe_name(name: str | None) -> str:
    """The uploaded file's base name, for display and download names only (never a server path)."""
    base = PurePath(str(name or "").replace("\\", "/")).name
    cleaned = "".join(c if (c.isascii() and (c.isalnum() or c in "._- ")) else "_" for c in base).strip(" .")
    return cleaned[:120] or "photo"


class EditorService:
    """The web editor's operations on sessions; thread-safe (one model call at a time)."""

    def __init__(self, editor: Any, sessions: Sessions | None = None, max_upload: int = DEFAULT_MAX_UPLOAD,
                 model_name: str | None = None, cli_options: list[str] | None = None):
        self.editor = editor
        self.sessions = sessions if sessions is not None else Sessions()
        self.max_upload = int(max_upload)
        self.model_name = model_name
        self.cli_options = list(cli_options or [])  # model/detector options of `editkit serve`, for the CLI equivalent
        self.lock = ModelLock()
        self.fast_method = "encoder" if editor.encoder is not None else None
        self.refine_method = "hybrid" if editor.encoder is not None else "optimize"
        self._directions = editor.directions()

    # ------------------------------------------------------------------------------------- model
    def warm_up(self) -> None:
        """Load the face detector and landmark model now (dlib's take seconds), not on the first upload."""
        from inversion.align.detection import hog_detector, shape_predictor

        with self.lock:
            hog_detector()
            shape_predictor()

    def info(self) -> dict:
        dirs = [{"index": d.index, "label": d.label, "name": d.name, "range": [float(v) for v in d.strength_range],
                 "layers": d.layers} for d in self._directions]
        return {"model": self.model_name or "bundled", "directions": dirs, "fast_method": self.fast_method,
                "refine_method": self.refine_method, "max_upload": self.max_upload,
                "resolution": int(self.editor.G.resolution)}

    # ------------------------------------------------------------------------------------- photo
    def upload(self, session: Session, name: str | None, data: bytes) -> dict:
        """Replace the session's photo with the uploaded bytes; detect and number its faces."""
        from ..photos import _SAVE_FORMATS, read_photo

        display = safe_name(name)
        if len(data) > self.max_upload:
            raise BadInputError(f"file too large ({len(data) / 2**20:.1f} MiB; the limit is "
                                f"{self.max_upload / 2**20:.0f} MiB)", display)
        suffix = Path(display).suffix.lower()
        suffix = suffix if suffix in _SAVE_FORMATS else ".img"
        incoming = session.folder / f"incoming-{threading.get_ident()}{suffix}"
        incoming.write_bytes(data)
        try:  # a bad file leaves the session's current photo as it was
            photo = read_photo(incoming)
            with self.lock:
                faces = self.editor.align(photo)
        except EditkitError as exc:
            incoming.unlink(missing_ok=True)
            raise type(exc)(_strip_path(exc), display) from None
        with session.lock:
            session.reset(keep=incoming)
            photo.path = incoming.rename(session.folder / f"upload{suffix}")
            session.photo, session.name, session.faces = photo, display, faces
        h, w = photo.array.shape[:2]
        return {"name": display, "width": w, "height": h,
                "faces": [_face_json(i, f) for i, f in enumerate(faces)], "chosen": 0}

    def original_png(self, session: Session) -> bytes:
        photo = self._photo(session)
        return png_bytes(preview_array(photo.array))

    # ------------------------------------------------------------------------------------- editing
    def edits(self, raw: Any) -> list[tuple[int, float]]:
        """Validated (direction, strength) pairs in direction order; zero strengths dropped."""
        if not isinstance(raw, list):
            raise UsageError("edits must be a list of [direction, strength] pairs")
        out: dict[int, float] = {}
        n = len(self._directions)
        for item in raw:
            try:
                k, s = int(item[0]), float(item[1])
            except (TypeError, ValueError, IndexError, KeyError):
                raise UsageError(f"bad edit {item!r}: expected [direction, strength]") from None
            if not 0 <= k < n:
                raise UsageError(f"direction {k} out of range 0..{n - 1}")
            if not math.isfinite(s) or abs(s) > 1000:
                raise UsageError(f"strength must be a finite number, got {s}")
            if k in out:
                raise UsageError(f"direction {k} given twice")
            if s != 0.0:
                out[k] = s
        return sorted(out.items())

    def inversion(self, session: Session, face: int, method: str):
        """The cached inversion of ``face`` by ``method``; the fast one is computed on first use."""
        photo = self._photo(session)
        self._check_face(session, face)
        key = (face, method)
        inv = session.inversions.get(key)
        if inv is None:
            if method != self.fast_method:
                raise UsageError(f"face {face} has not been refined yet")
            with self.lock:
                inv = self.editor.invert(photo, [face], method)[0]
            session.inversions[key] = inv
        return inv

    def result(self, session: Session, face: int, method: str, edits: list[tuple[int, float]]):
        """``Editor.edit`` of the session's photo with the cached inversion (an ``EditResult``)."""
        inv = self.inversion(session, face, method)
        attrs, strengths = _attr_lists(edits)
        with self.lock:
            return self.editor.edit(session.photo, attrs, strengths, inverted=[inv])

    def preview_patch(self, session: Session, face: int, method: str,
                      edits: list[tuple[int, float]]) -> tuple[bytes, tuple[int, int, int, int], list[str]]:
        """The part of the edited photo that differs from the photo: (PNG, (x, y, width, height), warnings).

        The page draws it over the photo it already has, so a move costs the same on a 2 MP or a
        20 MP photo. Only the region around the edited faces is compared (rendering changes nothing
        outside it); ``width == 0`` means nothing differs.
        """
        res = self.result(session, face, method, edits)
        img, src = res.image, session.photo.array
        h, w = src.shape[:2]
        pts = np.concatenate([np.asarray(f.face.quad, dtype=float) for f in res.faces])
        lo, hi = pts.min(0), pts.max(0)
        pad = 0.5 * (hi - lo)
        x0, y0 = np.maximum(np.floor(lo - pad).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(hi + pad).astype(int) + 1, [w, h])
        changed = np.any(img[y0:y1, x0:x1] != src[y0:y1, x0:x1], axis=2)
        rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
        notes = list(getattr(res, "warnings", []) or [])
        if not len(rows):
            return b"", (0, 0, 0, 0), notes
        ty0, ty1, tx0, tx1 = y0 + rows[0], y0 + rows[-1] + 1, x0 + cols[0], x0 + cols[-1] + 1
        return png_bytes(img[ty0:ty1, tx0:tx1]), (int(tx0), int(ty0), int(tx1 - tx0), int(ty1 - ty0)), notes

    def download(self, session: Session, face: int, method: str, edits: list[tuple[int, float]]) -> tuple[str, str, bytes]:
        """(file name, media type, bytes) of the whole edited photo, written by ``EditResult.save``."""
        from ..commands.edit import default_output

        res = self.result(session, face, method, edits)
        attrs, strengths = _attr_lists(edits)
        name = default_output(Path(session.name), [str(a) for a in attrs], strengths, False).name
        return name, _MEDIA.get(Path(name).suffix.lower(), "application/octet-stream"), \
            self._written(session, lambda p: res.save(p, inputs=(session.photo.path,)), Path(name).suffix)

    def gif(self, session: Session, face: int, method: str, direction: int, frames: int = 24) -> tuple[str, bytes]:
        """A traversal GIF of one direction over its recommended range (as ``editkit traverse``)."""
        if not 0 <= int(direction) < len(self._directions):
            raise UsageError(f"direction {direction} out of range 0..{len(self._directions) - 1}")
        if not 2 <= int(frames) <= 96:
            raise UsageError(f"frames must be 2..96, got {frames}")
        inv = self.inversion(session, face, method)
        with self.lock:
            trav = self.editor.traverse(session.photo, [int(direction)], None, frames=int(frames), face=face,
                                        inverted=inv)
        name = f"{Path(session.name).stem}.traverse-attr{int(direction)}.gif"
        return name, self._written(session, lambda p: trav.save(p), ".gif")

    def command(self, session: Session, face: int, method: str, edits: list[tuple[int, float]]) -> str:
        """The ``editkit edit`` command that writes the same file as the download."""
        attrs, strengths = _attr_lists(edits)
        parts = ["editkit", "edit", session.name or "photo.jpg", *self.cli_options, "--face", str(face), "--method", method]
        for a, s in zip(attrs, strengths):
            parts += ["--attr", str(a), "--strength", f"{s!r}"]
        return shlex.join(parts)

    # ------------------------------------------------------------------------------------- refine
    def start_refine(self, session: Session, face: int) -> RefineJob:
        """Start the faithful inversion of ``face`` in the background (one job per session)."""
        photo = self._photo(session)
        self._check_face(session, face)
        with session.lock:
            job = session.refine
            if job is not None and job.state == "running":
                if job.face == face:
                    return job
                job.cancel.set()
            if (face, self.refine_method) in session.inversions:
                job = RefineJob(face, state="done")
                session.refine = job
                return job
            job = session.refine = RefineJob(face)
            generation = session.generation
        threading.Thread(target=self._refine, args=(session, photo, job, generation), daemon=True,
                         name=f"editkit-refine-{session.id[:6]}").start()
        return job

    def _refine(self, session: Session, photo, job: RefineJob, generation: int) -> None:
        def progress(step: int, total: int, loss: float) -> None:
            job.step, job.total = int(step), int(total)
            if job.cancel.is_set():
                raise Cancelled()
            self.lock.pause()

        try:
            with self.lock:
                if job.cancel.is_set():
                    raise Cancelled()
                inv = self.editor.invert(photo, [job.face], self.refine_method, progress=progress)[0]
            with session.lock:
                if session.generation == generation and not job.cancel.is_set():
                    session.inversions[(job.face, self.refine_method)] = inv
                    job.state = "done"
                else:
                    job.state = "cancelled"
        except Cancelled:
            job.state = "cancelled"
        except EditkitError as exc:
            job.state, job.message = "failed", _strip_path(exc)
        except Exception as exc:  # noqa: BLE001 - reported on the page as one line
            job.state, job.message = "failed", f"internal error: {type(exc).__name__}: {exc}"

    def refine_status(self, session: Session) -> dict:
        job = session.refine
        if job is None:
            return {"state": "none"}
        return {"state": job.state, "face": job.face, "step": job.step, "total": job.total,
                "message": job.message, "method": self.refine_method}

    # ------------------------------------------------------------------------------------- helpers
    def _photo(self, session: Session):
        if session.photo is None:
            raise UsageError("open a photo first")
        return session.photo

    def _check_face(self, session: Session, face: int) -> None:
        if not 0 <= int(face) < len(session.faces):
            raise UsageError(f"face {face} out of range: the photo has {len(session.faces)} face(s)")

    def _written(self, session: Session, write, suffix: str) -> bytes:
        """Bytes of a file written by ``write(path)`` into the session folder, removed at once."""
        out = session.folder / f"out-{threading.get_ident()}{suffix}"
        try:
            write(out)
            return out.read_bytes()
        finally:
            out.unlink(missing_ok=True)


def _attr_lists(edits: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    if not edits:
        return [0], [0.0]  # no edit (as --attr 0 --strength 0): the photo itself with transfer
    return [k for k, _ in edits], [s for _, s in edits]


def _strip_path(exc: EditkitError) -> str:
    """The error's message without its (server-side) path prefix."""
    msg = str(exc)
    if exc.path and msg.startswith(exc.path + ": "):
        msg = msg[len(exc.path) + 2:]
    return msg


def _face_json(i: int, f) -> dict:
    quad = np.asarray(f.quad, dtype=float).round(1).tolist()
    box = [int(v) for v in f.box] if f.box is not None else None
    return {"index": i, "box": box, "quad": quad, "score": None if f.score is None else round(float(f.score), 3)}
