"""``editkit.Editor``: the whole pipeline on real photos (align → invert → edit → render → paste back).

    import editkit
    ed = editkit.Editor()                       # the bundled model
    res = ed.edit("me.jpg", attr=3, strength=2)  # or attr=[3, "smile"], strength=[2, -1]
    res.save("me.edited.jpg")

Models are loaded once, when the Editor is created, and reused by every call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .atomic import check_writable
from .errors import NoFaceError, UsageError
from .render import bounce, make_grid, save_animation, side_by_side, to_uint8

METHODS = ("hybrid", "encoder", "optimize")
#: dlib HOG detections below this score are not edited. On the 20 photos of shared/data/photos
#: (unaligned + no_face), every real face scored >= 0.34 and the one false detection 0.12.
from .defaults import DEFAULT_MIN_FACE_SCORE  # noqa: F401 (re-exported)


@dataclass
class Direction:
    """One navigator direction as users see it."""

    index: int
    label: str | None
    strength_range: tuple[float, float]
    layers: list[int]  # the W+ layers it mostly acts on (attention >= half its peak)

    @property
    def name(self) -> str:
        return self.label or f"attr{self.index}"


@dataclass
class FaceEdit:
    """One face: its alignment, the aligned crop before/after, and its W+ codes."""

    index: int
    face: Any  # inversion.align.AlignedFace
    before: np.ndarray  # aligned input crop, H×W×3 uint8 at the generator's resolution
    reconstruction: np.ndarray  # G(ws) before the edit
    after: np.ndarray  # G(ws_edited)
    ws: torch.Tensor  # [num_ws, w_dim]
    ws_edited: torch.Tensor
    metrics: dict = field(default_factory=dict)


@dataclass
class EditResult:
    """The result of :meth:`Editor.edit`; ``image`` is the full photo with the edited faces pasted back."""

    photo: np.ndarray
    image: np.ndarray
    faces: list[FaceEdit]
    edits: list[tuple[int, float]]
    source: Any = None  # editkit.photos.Photo (EXIF/ICC kept when saving)

    def crops(self) -> np.ndarray:
        """Every edited face's aligned crop: one row of [before | after] pairs."""
        return make_grid([[f.before, f.after] for f in self.faces])

    def save(self, path: str | Path, crop_only: bool = False, crops: bool = False, overwrite: bool = False,
             inputs: Sequence[str | Path] = ()) -> list[Path]:
        """Write the edited photo (or only the edited aligned crops with ``crop_only``).

        ``crops``: also write ``<stem>.crops.png`` with the aligned faces before and after.
        Refuses to overwrite ``inputs`` or an existing file unless ``overwrite``. Atomic.
        """
        from .photos import save_image

        p = Path(path)
        written: list[Path] = []
        srcs = tuple(inputs) + ((self.source.path,) if getattr(self.source, "path", None) else ())
        check_writable(p, overwrite, srcs)
        crops_path = p.with_name(p.stem + ".crops.png")
        if crops:
            check_writable(crops_path, overwrite, srcs)
        if crop_only:
            arr = self.faces[0].after if len(self.faces) == 1 else make_grid([[f.after for f in self.faces]])
            written.append(save_image(p, arr))
        else:
            written.append(save_image(p, self.image, like=self.source))
        if crops:
            written.append(save_image(crops_path, self.crops()))
        return written


@dataclass
class Traversal:
    """Frames of one or several directions across a strength range (rows = directions)."""

    rows: list[list[np.ndarray]]
    strengths: list[float]
    directions: list[int]
    labels: list[str]

    @property
    def frames(self) -> list[np.ndarray]:
        """The animation frames: with several directions, each frame shows them side by side."""
        if len(self.rows) == 1:
            return list(self.rows[0])
        return [make_grid([[row[i] for row in self.rows]], pad=2) for i in range(len(self.strengths))]

    def grid(self) -> np.ndarray:
        return make_grid(self.rows, row_labels=self.labels)

    def save(self, path: str | Path, duration_ms: int = 100, loop_back: bool = True, overwrite: bool = False,
             inputs: Sequence[str | Path] = ()) -> Path:
        """``.gif``/``.mp4``: an animation (forward then back with ``loop_back``); ``.png``/``.jpg``: the grid."""
        from .photos import save_image

        p = check_writable(path, overwrite, tuple(inputs))
        if p.suffix.lower() in (".gif", ".mp4"):
            frames = bounce(self.frames) if loop_back else self.frames
            return save_animation(p, frames, duration_ms)
        return save_image(p, self.grid())


@dataclass
class FaceInversion:
    index: int
    face: Any
    before: np.ndarray
    reconstruction: np.ndarray
    ws: torch.Tensor
    metrics: dict = field(default_factory=dict)


class Editor:
    """Loads a generator, an optional encoder and a navigator once; edits photos with them.

    ``model``: a bundle folder, a registered bundle name, or None for the bundled model (a generator
    file or registered generator name also works, with ``navigator`` given separately).
    ``invert_options`` go to ``inversion.invert`` (e.g. ``steps``), ``align_options`` to
    ``inversion.align.align_faces`` (e.g. ``detector='cnn'``, ``upsample=2``). Official files instead: ``Editor(generator="ffhq.pkl", encoder="e4e_ffhq_encode.pt",
    navigator="nav.safetensors", alignment="ffhq")``. ``generator``/``encoder``/``navigator`` also
    override the bundle's files when given with ``model``. ``precision``: the generator's inference mode,
    'auto' (bfloat16 where the CPU runs it natively, else float32), 'float32' (exact) or 'bf16'
    (see ``editkit.precision``); inversion with gradients always runs in float32.
    """

    def __init__(self, model: str | Path | None = None, *, generator: str | Path | None = None,
                 encoder: str | Path | None = None, navigator: str | Path | None = None,
                 navigator_name: str | None = None, alignment: str | dict | None = None,
                 device: str | torch.device = "cpu", method: str = "hybrid", invert_options: dict | None = None,
                 align_options: dict | None = None, precision: str = "auto"):
        import editkit
        import inversion
        from inversion.align import get_template
        from navigator import load_navigator

        from . import registry
        from .precision import PRECISIONS, apply_precision

        if precision not in PRECISIONS:  # before any model is loaded
            raise UsageError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
        self.device = _device(device)
        self.bundle = None
        if generator is None and model is not None and registry.is_generator_spec(model):
            generator, model = model, None  # --model ffhq.pkl / a registered generator name
        if generator is None:
            self.bundle = registry.resolve_bundle(model)
            gen_path = self.bundle.generator_path
            enc_path = self.bundle.encoder_path
            nav_path = self.bundle.navigator_path(navigator_name) if self.bundle.navigators else None
            align = self.bundle.alignment
        else:
            gen_path, enc_path, nav_path, align = registry.resolve_weights(generator, "generator"), None, None, "ffhq"
        if encoder is not None:
            enc_path = registry.resolve_weights(encoder, "encoder")
        if navigator is not None:
            nav_path = registry.resolve_weights(navigator, "navigator")
        if alignment is not None:
            align = alignment
        self.paths = {"generator": gen_path, "encoder": enc_path, "navigator": nav_path}
        self.G = editkit.load_generator(gen_path, device=self.device).eval().requires_grad_(False)
        self.precision = apply_precision(self.G, precision)  # the mode used: 'float32' or 'bf16'
        self.encoder = None
        if enc_path is not None:
            self.encoder = inversion.load_encoder(enc_path).to(self.device).eval().requires_grad_(False)
        self.navigator = None
        if nav_path is not None:
            self.navigator = load_navigator(nav_path, device=self.device).eval().requires_grad_(False)
            if (self.navigator.num_ws, self.navigator.w_dim) != (self.G.num_ws, self.G.w_dim):
                raise UsageError(f"navigator is for W+ {self.navigator.num_ws}x{self.navigator.w_dim}, generator has "
                                 f"{self.G.num_ws}x{self.G.w_dim}", nav_path)
        self.template = _template(align, get_template)
        if method not in METHODS:
            raise UsageError(f"unknown inversion method '{method}' (choose from {', '.join(METHODS)})")
        self.method = method
        self.invert_options = dict(invert_options or {})
        # e.g. detector='cnn', upsample=2 (inversion.align.align_faces)
        self.align_options = {"min_score": DEFAULT_MIN_FACE_SCORE, **(align_options or {})}

    # ------------------------------------------------------------------------------------- directions
    def directions(self) -> list[Direction]:
        nav = self._nav()
        with torch.no_grad():
            att = nav.attention().cpu()
        out = []
        for k in range(nav.num_directions):
            a = att[k]
            layers = [int(i) for i in torch.nonzero(a >= 0.5 * a.max()).flatten()]
            out.append(Direction(k, nav.labels[k], tuple(nav.strength_range[k]), layers))
        return out

    def resolve_attr(self, attr: int | str) -> int:
        """A direction index from an index (int or digits) or a label (case-insensitive, unique prefix)."""
        nav = self._nav()
        if isinstance(attr, (int, np.integer)) or (isinstance(attr, str) and attr.strip().lstrip("-").isdigit()):
            k = int(attr)
            if not 0 <= k < nav.num_directions:
                raise UsageError(f"direction {k} out of range 0..{nav.num_directions - 1}")
            return k
        name = str(attr).strip().lower()
        labels = [(i, (lab or "").lower()) for i, lab in enumerate(nav.labels)]
        exact = [i for i, lab in labels if lab == name or f"attr{i}" == name]
        if len(exact) == 1:
            return exact[0]
        prefix = [i for i, lab in labels if lab and lab.startswith(name)]
        if len(prefix) == 1:
            return prefix[0]
        known = ", ".join(f"{i}={lab}" for i, lab in labels if lab) or "none (use an index)"
        what = "ambiguous" if len(exact) + len(prefix) > 1 else "unknown"
        raise UsageError(f"{what} direction '{attr}' (labels: {known})")

    def _edits(self, attr, strength) -> list[tuple[int, float]]:
        attrs = list(attr) if isinstance(attr, (list, tuple)) else [attr]
        strengths = list(strength) if isinstance(strength, (list, tuple)) else [strength]
        if len(strengths) == 1 and len(attrs) > 1:
            strengths = strengths * len(attrs)
        if len(attrs) != len(strengths) or not attrs:
            raise UsageError(f"{len(attrs)} directions but {len(strengths)} strengths (give one strength, or one per direction)")
        out = []
        for a, s in zip(attrs, strengths):
            try:
                s = float(s)
            except (TypeError, ValueError):
                raise UsageError(f"strength must be a number, got {s!r}") from None
            if not np.isfinite(s):
                raise UsageError(f"strength must be finite, got {s}")
            out.append((self.resolve_attr(a), s))
        return out

    # ------------------------------------------------------------------------------------- pipeline
    def _read(self, photo):
        from .photos import Photo, read_photo

        if isinstance(photo, Photo):
            return photo
        if isinstance(photo, (str, Path)):
            return read_photo(photo)
        arr = np.asarray(photo)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise UsageError(f"photo arrays must be H×W×3 uint8, got {arr.shape} {arr.dtype}")
        return Photo(array=arr)

    def align(self, photo) -> list:
        """Every face in the photo, aligned with the model's template at the generator's resolution."""
        from inversion.align import align_faces

        src = self._read(photo)
        try:
            faces = align_faces(src.array, template=self.template, size=self.G.resolution, **self.align_options)
        except NoFaceError as exc:
            if exc.path is None and src.path is not None:
                raise NoFaceError(str(exc), src.path) from None
            raise
        if not faces:
            raise NoFaceError("no face found", src.path)
        return faces

    def _select(self, faces: list, which, path=None) -> list[tuple[int, Any]]:
        if which is None or which == "all":
            return list(enumerate(faces))
        idx = [which] if isinstance(which, (int, np.integer)) else list(which)
        for i in idx:
            if not 0 <= int(i) < len(faces):
                raise UsageError(f"face {i} out of range: the photo has {len(faces)} face(s) (0..{len(faces) - 1})")
        return [(int(i), faces[int(i)]) for i in idx]

    def _crops_tensor(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2).float()
        return x / 127.5 - 1.0

    def invert_crops(self, crops: Sequence[np.ndarray], method: str | None = None, **options) -> Any:
        """Aligned crops (H×W×3 uint8 at G's resolution) -> ``inversion.InversionResult`` (batched)."""
        import inversion

        method = method or self.method
        if method not in METHODS:
            raise UsageError(f"unknown inversion method '{method}' (choose from {', '.join(METHODS)})")
        if self.encoder is None:
            if method == "encoder":
                raise UsageError("this model has no encoder: use --method optimize (or pass --encoder FILE)")
            method = "optimize"  # hybrid without an encoder starts from the average code
        opts = {**self.invert_options, **options}
        return inversion.invert(self.G, self._crops_tensor(crops), method=method, encoder=self.encoder, **opts)

    def synthesize(self, ws: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return to_uint8(self.G.synthesis(ws.to(self.device), noise_mode="const"))

    def invert(self, photo, faces="all", method: str | None = None, **options) -> list[FaceInversion]:
        """Align and invert the chosen faces; each result has the W+ code and its reconstruction."""
        src = self._read(photo)
        chosen = self._select(self.align(src), faces)
        inv = self.invert_crops([f.image for _, f in chosen], method, **options)
        ws = inv.ws.detach()
        recon = to_uint8(inv.images) if getattr(inv, "images", None) is not None else self.synthesize(ws)
        metrics = _split_metrics(getattr(inv, "metrics", {}) or {}, len(chosen))
        return [FaceInversion(i, f, f.image, recon[j], ws[j].cpu(), metrics[j]) for j, (i, f) in enumerate(chosen)]

    def edit(self, photo, attr, strength, faces="all", method: str | None = None, **options) -> EditResult:
        """Edit every chosen face of ``photo`` with one or several (direction, strength) pairs.

        ``photo``: a path, an H×W×3 uint8 array or an ``editkit.photos.Photo``; ``attr``: index, label or a
        list of them; ``strength``: a number or one per direction; ``faces``: 'all', an index or indices.
        """
        from inversion.align import paste_back

        edits = self._edits(attr, strength)
        src = self._read(photo)
        inverted = self.invert(src, faces, method, **options)
        ws = torch.stack([fi.ws for fi in inverted]).to(self.device)
        ws_e = ws
        with torch.no_grad():
            for k, s in edits:
                ws_e = self.navigator.edit(ws_e, k, s)
        after = self.synthesize(ws_e)
        image = paste_back(src.array, [(fi.face, after[j]) for j, fi in enumerate(inverted)])
        out_faces = [FaceEdit(fi.index, fi.face, fi.before, fi.reconstruction, after[j], fi.ws, ws_e[j].cpu(), fi.metrics)
                     for j, fi in enumerate(inverted)]
        return EditResult(photo=src.array, image=np.asarray(image, dtype=np.uint8), faces=out_faces, edits=edits,
                          source=src)

    def traverse(self, photo, attr, strength: float | tuple[float, float] | None = None, frames: int = 24,
                 face: int = 0, method: str | None = None, ws: torch.Tensor | None = None, **options) -> Traversal:
        """Frames of the chosen face as direction(s) ``attr`` move across a strength range.

        ``strength``: s for [-s, +s], a (lo, hi) pair, or None for each direction's recommended range.
        ``ws`` ([num_ws, w_dim]) skips the photo and traverses that code instead.
        """
        if frames < 2:
            raise UsageError(f"--frames must be at least 2, got {frames}")
        attrs = list(attr) if isinstance(attr, (list, tuple)) else [attr]
        ks = [self.resolve_attr(a) for a in attrs]
        if ws is None:
            ws = self.invert(photo, [face], method, **options)[0].ws
        ws = ws.to(self.device)
        from navigator.traverse import traversal_frames

        rows, labels = [], []
        nav = self._nav()
        for k in ks:
            rows.append(list(traversal_frames(self.G, nav, ws, k, _range(strength, nav.strength_range[k]), frames)))
            labels.append(nav.labels[k] or f"attr{k}")
        lo, hi = _range(strength, nav.strength_range[ks[0]])
        return Traversal(rows=rows, strengths=[float(v) for v in np.linspace(lo, hi, frames)], directions=ks, labels=labels)

    def preview(self, samples: int = 3, strength: float | None = None, seed: int = 0,
                directions: Sequence[int] | None = None, truncation_psi: float = 0.7) -> np.ndarray:
        """A grid: one row per direction, for each random sample the image at -s, 0, +s."""
        nav = self._nav()
        ks = list(range(nav.num_directions)) if directions is None else list(directions)
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(samples, self.G.z_dim, generator=g).to(self.device)
        with torch.no_grad():
            ws = self.G.mapping(z, truncation_psi=truncation_psi)
        from navigator.traverse import traversal_frames

        rows = []
        for k in ks:
            rng = _range(strength, nav.strength_range[k])
            rows.append([img for w in ws for img in traversal_frames(self.G, nav, w, k, rng, 3)])
        return make_grid(rows, row_labels=[nav.labels[k] or f"attr{k}" for k in ks])

    def _nav(self):
        if self.navigator is None:
            raise UsageError("this model has no navigator: pass one (--navigator FILE) or train one with "
                             "`editkit train navigator`")
        return self.navigator


def _range(strength, default: tuple[float, float]) -> tuple[float, float]:
    if strength is None:
        return float(default[0]), float(default[1])
    if isinstance(strength, (tuple, list)):
        if len(strength) != 2:
            raise UsageError(f"a strength range is two numbers, got {strength!r}")
        return float(strength[0]), float(strength[1])
    s = abs(float(strength))
    return -s, s


def _split_metrics(metrics: dict, n: int) -> list[dict]:
    """Per-face metric dicts from the inversion's (per-face lists/tensors or scalars)."""
    out: list[dict] = [{} for _ in range(n)]
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().flatten().tolist() if value.numel() > 1 else float(value)
        if isinstance(value, (list, tuple)) and len(value) == n:
            for j in range(n):
                out[j][key] = value[j]
        elif isinstance(value, (int, float)):
            for j in range(n):
                out[j][key] = value
    return out


def _template(align, get_template):
    from inversion.align import AlignmentTemplate

    if isinstance(align, dict):
        try:
            return AlignmentTemplate(**align)
        except TypeError as exc:
            raise UsageError(f"bad alignment template parameters in the bundle ({exc})") from None
    return get_template(align)


def _device(device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("CUDA was requested but is not available here (use --device cpu)")
    return dev
